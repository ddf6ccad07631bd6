"""Small I/O pieces of the label store: byte hashes, verified bytes, and errors a person can act on.

Kept apart from :mod:`.labels` so that the store reads as what it promises (compare-and-swap,
two files, unsure pixels) and these mechanics can be tested on their own.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.atomic import WriteVerificationError, is_temp_name
from ercnn_napari.core.errors import LabelError


def normalize_label(array: np.ndarray, tile_size: int = 32, path: str | os.PathLike | None = None) -> np.ndarray:
    """Any numeric array of ``tile_size`` x ``tile_size`` -> uint8 0/1 (> 0 means change, as the authors' trainer reads it).

    Singleton axes (``[32, 32, 1]``, ``[1, 32, 32]``) are accepted because the trainer reshapes
    anyway; NaN or another shape is a :class:`LabelError` rather than a silently wrong label.
    """
    data = np.asarray(array)
    if data.ndim > 2:
        data = np.squeeze(data)
    if data.shape != (tile_size, tile_size):
        raise LabelError(f"label has shape {tuple(np.shape(array))}, expected ({tile_size}, {tile_size})", path)
    if data.dtype.kind not in "biuf":
        raise LabelError(f"label has non-numeric dtype {data.dtype}", path)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise LabelError("label contains NaN or infinite values", path)
    return (data > 0).astype(np.uint8)


def read_label_npy(path: Path, tile_size: int = 32) -> np.ndarray:
    """Read one ``.npy`` label (never unpickling: a label file must not be able to run code)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise LabelError(f"not a readable numpy label file: {exc}", path) from exc
    return normalize_label(data, tile_size, path)


def io_error_message(exc: BaseException) -> str:
    """A sentence for an I/O error that a person can act on (the caller names the label file)."""
    number = getattr(exc, "errno", None)
    if number == errno.ENOSPC or isinstance(exc, WriteVerificationError):
        return f"could not be saved: the disk is full or the write was incomplete ({reason(exc)})"
    if number in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "could not be saved: the folder is read-only or not writable by you"
    text = reason(exc)
    if "No space left" in text or "disk full" in text.lower():
        return f"could not be saved: the disk is full ({text})"
    return f"could not be saved: {text}"


def reason(exc: BaseException) -> str:
    """The OS's words for an error, without the temporary file name it may carry."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def file_named_by(exc: BaseException, targets: Iterable[Path]) -> Path | None:
    """The target an OS error is about, also when it names the target's temporary file."""
    filename = getattr(exc, "filename", None)
    if not filename:
        return None
    name = Path(filename)
    for target in targets:
        if name == target or (name.parent == target.parent and is_temp_name(name.name)
                              and name.name.startswith(f".{target.stem}.") and name.name.endswith(target.suffix)):
            return target
    return None


def npy_bytes(array: np.ndarray) -> bytes:
    """The exact bytes ``np.save`` writes for a uint8 array (written, verified and hashed as such)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.uint8), allow_pickle=False)
    return buffer.getvalue()


def same_bytes(data: bytes, target: Path) -> Callable[[Path], None]:
    """A verify callback for :func:`atomic_path`: the temporary file must hold exactly ``data``."""
    def verify(tmp: Path) -> None:
        if tmp.read_bytes() != data:
            raise WriteVerificationError(errno.EIO, "the written file does not read back as written", str(target))
    return verify


def hash_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def digest_file(path: Path) -> str | None:
    """Hash of a file's bytes; None when absent; a distinct marker when it cannot be read."""
    try:
        return hash_bytes(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable: {reason(exc)}"


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def on_success(action: Callable[..., Any], *args: Any) -> Iterator[None]:
    """Run ``action(*args)`` when the block ends without an exception (unlike ExitStack.callback)."""
    yield
    action(*args)
