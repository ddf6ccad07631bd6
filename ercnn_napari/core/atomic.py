"""Atomic file writes: write beside the target, flush to disk, verify, then rename over it.

A crash, a kill or a full disk while writing leaves the previous good file untouched and at most
a stray temporary file next to it, never a half-written label, model or prediction.

Why the verification: some writers do not report a full disk. GDAL, for one, returns success
when ``write()`` fails with ENOSPC, leaving an empty or truncated temporary file; renaming that
over the previous GeoTIFF destroyed a good label while the save reported success. So before the
rename the temporary file must be non-empty, survive ``fsync`` (which reports delayed write
errors) and, when the caller gives a ``verify`` callback, read back as what was meant.

Temporary files are named ``.<target stem>.<8 random chars>.tmp<ext>``; :func:`remove_stale_temps`
removes only files of exactly that form, and only when they are old enough that no save can
still be writing them (a kill -9 between create and rename leaves them behind).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

#: A temporary file older than this (seconds) belongs to no running save (a label save takes ms).
STALE_AFTER_S = 600.0

#: ``.{stem}.{mkstemp's 8 characters}.tmp{ext}``: what :func:`atomic_path` creates, nothing else.
_TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.(?P<rand>[a-z0-9_]{8})\.tmp(?P<ext>\.[A-Za-z0-9]+)?$")


class WriteVerificationError(OSError):
    """The temporary file is not what was written (e.g. a full disk the writer did not report)."""


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None,
                verify: Callable[[Path], None] | None = None, allow_empty: bool = False,
                checked: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success.

    The temporary name keeps the target's extension (``suffix`` overrides it) because some
    writers (numpy, GDAL) choose the format from it. Before the rename the file must be
    non-empty (unless ``allow_empty``) and fsync cleanly; ``verify(tmp)`` (if given) may raise to refuse it. On any
    exception the temporary file is removed and the target is left as it was. OS errors
    propagate as they are; callers that know what the file means turn them into a message.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    ext = target.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{ext}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not checked:  # callers that ran check_written themselves say so (one fsync, not two)
            check_written(tmp, target, verify, allow_empty)
        _copy_mode(target, tmp)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def check_written(tmp: Path, target: str | os.PathLike, verify: Callable[[Path], None] | None = None,
                  allow_empty: bool = False) -> None:
    """fsync, size and ``verify`` checks of a temporary file; raises an OSError naming ``target``.

    :func:`atomic_path` runs it before its rename; a caller renaming several files together
    (a label's .npy and GeoTIFF) runs it on each one first, so no rename happens unless all pass.
    """
    _fsync_file(tmp)
    if not allow_empty and tmp.stat().st_size == 0:
        raise WriteVerificationError(28, "the written file is empty (is the disk full?)", str(target))
    if verify is not None:
        verify(tmp)


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (the size on disk is checked before the rename)."""

    def same_bytes(tmp: Path) -> None:
        if tmp.read_bytes() != data:
            raise WriteVerificationError(5, "the written file does not read back as written", str(target))

    with atomic_path(target, verify=same_bytes, allow_empty=not data) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def is_temp_name(name: str) -> bool:
    """True for names :func:`atomic_path` creates (``.<stem>.<8 chars>.tmp<ext>``)."""
    return _TEMP_NAME.match(name) is not None


def stale_temp_files(folders: Iterable[str | os.PathLike], older_than_s: float = STALE_AFTER_S,
                     now: float | None = None) -> list[Path]:
    """Our temporary files directly in ``folders`` whose last change is older than ``older_than_s``."""
    now = time.time() if now is None else now
    found = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not is_temp_name(entry.name):
                continue
            try:
                if entry.is_file(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > older_than_s:
                    found.append(Path(entry.path))
            except OSError:
                continue
    return sorted(found)


def remove_stale_temps(folders: Iterable[str | os.PathLike], older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete stale temporary files of interrupted saves; returns what was removed.

    Only names of our exact form, only files (never folders or links), only stale ones: a
    fresh temporary file may belong to a save running in another process right now. A file
    that cannot be removed (read-only folder) is left alone silently: it harms nothing.
    """
    removed = []
    for path in stale_temp_files(folders, older_than_s):
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def _copy_mode(target: Path, tmp: Path) -> None:
    # mkstemp makes 0600 files; keep the target's mode, or give a new file the umask's default
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _fsync_file(path: Path) -> None:
    # opened for writing: on some systems fsync of a read-only descriptor does not report errors
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
