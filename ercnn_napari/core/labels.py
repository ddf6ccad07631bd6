"""Per-tile change labels, kept in the authors' two places at once.

The authors' trainer reads ``training/numpy_ground_truth/<Site>_{y}_{x}.npy``; GIS tools and
people read ``ground_truth/{y}:{x}/{y}:{x}.tif``. The :class:`LabelStore` writes both on every
save (each through a temporary file that is verified before a rename, so a crash or a full disk
keeps the previous good files), and on reading checks that they agree. When they do not (someone
edited one file outside the viewer, or a crash fell between the two renames) the newer file wins
and the disagreement is reported, never silently resolved. A label that does not fit its tile
(shape, CRS, position) is refused with a :class:`LabelError` naming the file.

Several writers (two viewers, a viewer and a script) may share a project. Every write takes an
advisory lock on its tile (``filelock``: ``fcntl`` on POSIX) and, when given the signature the
writer last saw, compares it with the files on disk inside that lock: compare-and-swap. The one
who lost the race gets a :class:`LabelConflictError` naming the file that changed; tiles are
locked one by one, so different tiles still save in parallel. Signatures are hashes of the
files' bytes, because the ``.npy`` of a tile is always 1152 bytes and an edit may keep its time.

"Unsure" pixels (the imagery does not tell) are value :data:`UNSURE` in the arrays of
:meth:`LabelStore.read_values`. The ``.npy`` keeps 0 there (the authors' trainer reads it as
before: unsure is not change); the pixels are recorded in a sidecar mask
``ground_truth/{y}:{x}/{y}:{x}.unsure.npy`` and as the GeoTIFF's nodata value.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from rasterio.errors import RasterioError

from ercnn_napari.core.atomic import WriteVerificationError, atomic_path, check_written
from ercnn_napari.core.errors import LabelError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.label_geotiff import (
    UNSURE,
    geotiff_band,
    read_geotiff_band,
    read_label_geotiff,
    write_label_geotiff,
)
from ercnn_napari.core.label_io import (
    digest_file,
    file_named_by,
    hash_bytes,
    io_error_message,
    normalize_label,
    npy_bytes,
    on_success,
    read_label_npy,
    reason,
    same_bytes,
    unlink_quietly,
)
from ercnn_napari.core.project_file import GROUND_TRUTH_DIR, NPY_DIR, label_tif_tiles, npy_tiles
from ercnn_napari.core.tiles import TileId, format_tile_id, tile_stem

#: Folder (in the project root) of the per-tile lock files.
LOCK_DIR = ".ercnn_locks"
#: How long a save waits for another writer of the same tile before giving up (seconds).
LOCK_TIMEOUT_S = 10.0


class LabelConflictWarning(UserWarning):
    """The .npy and the GeoTIFF of a tile disagree; the newer one was used."""


class LabelConflictError(LabelError):
    """The label changed on disk since the writer last read it; nothing was overwritten."""

    kind = "label_conflict"


class LabelSignature(NamedTuple):
    """Content hashes of a tile's label files (None where a file is absent).

    Equal signatures mean equal bytes; compare them to detect edits made outside this writer.
    """

    npy: str | None
    tif: str | None
    unsure: str | None = None

    def changed_files(self, other: LabelSignature, store: LabelStore, tile: TileId) -> list[Path]:
        """The files that differ between two signatures (the .npy, the trainer's copy, first)."""
        paths = (store.npy_path(tile), store.tif_path(tile), store.unsure_path(tile))
        return [path for path, mine, theirs in zip(paths, self, other, strict=True) if mine != theirs]


#: Signature of a tile without any label file.
NO_LABEL = LabelSignature(None, None, None)


@dataclass(frozen=True)
class LabelRead:
    """A label as read, where it came from, and what was wrong with the pair if anything.

    ``array`` is uint8 0/1 (unsure pixels read 0, as the authors' trainer reads them);
    ``unsure`` is the bool mask of unsure pixels or None when there are none.
    """

    array: np.ndarray
    source: str  # "both" (they agree), "npy", "tif"
    warning: str | None = None
    unsure: np.ndarray | None = None

    @property
    def values(self) -> np.ndarray:
        """0 no change, 1 change, :data:`UNSURE` unsure."""
        values = self.array.copy()
        if self.unsure is not None:
            values[self.unsure] = UNSURE
        return values


class LabelStore:
    """Reads and writes the labels of one project (its root, site name and grid)."""

    def __init__(self, root: str | os.PathLike, site: str, grid: TileGrid) -> None:
        self.root = Path(root)
        self.site = site
        self.grid = grid

    # ----------------------------------------------------------------- paths
    def npy_path(self, tile: TileId) -> Path:
        return self.root / NPY_DIR / f"{self.site}_{tile_stem(tile)}.npy"

    def tif_path(self, tile: TileId) -> Path:
        name = format_tile_id(tile)
        return self.root / GROUND_TRUTH_DIR / name / f"{name}.tif"

    def unsure_path(self, tile: TileId) -> Path:
        """Sidecar mask of unsure pixels (absent when the tile has none)."""
        name = format_tile_id(tile)
        return self.root / GROUND_TRUTH_DIR / name / f"{name}.unsure.npy"

    def lock_path(self, tile: TileId) -> Path:
        return self.root / LOCK_DIR / f"{tile_stem(tile)}.lock"

    def label_folders(self) -> list[Path]:
        """Folders that hold label files (where interrupted saves leave temporary files)."""
        folders = [self.root / NPY_DIR]
        base = self.root / GROUND_TRUTH_DIR
        with contextlib.suppress(OSError):
            folders += [p for p in base.iterdir() if p.is_dir()]
        return folders

    def _check_tile(self, tile: TileId, path: Path) -> TileId:
        tile = (int(tile[0]), int(tile[1]))
        if not self.grid.contains(tile):
            raise LabelError(
                f"tile {format_tile_id(tile)} is outside the project grid of "
                f"{self.grid.rows} rows x {self.grid.cols} columns",
                path,
            )
        return tile

    # ----------------------------------------------------------------- locking
    @contextlib.contextmanager
    def lock(self, tile: TileId, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the tile's advisory lock (other writers of this tile wait; other tiles do not)."""
        from filelock import FileLock, Timeout

        path = self.lock_path(tile)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(path), timeout=timeout)
            lock.acquire()
        except Timeout as exc:
            raise LabelError(f"another program has been saving this tile for over {timeout:g} s; "
                             "try again", self.npy_path(tile)) from exc
        except OSError as exc:
            raise LabelError(f"label {io_error_message(exc)}", self.npy_path(tile)) from exc
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def read_lock(self, tile: TileId) -> Iterator[None]:
        """The tile's lock when it can be taken (a read-only project is still readable without it)."""
        with contextlib.ExitStack() as stack:
            with contextlib.suppress(LabelError):
                stack.enter_context(self.lock(tile))
            yield

    # ----------------------------------------------------------------- queries
    def exists(self, tile: TileId) -> bool:
        """True if either label file of the tile exists."""
        return self.npy_path(tile).is_file() or self.tif_path(tile).is_file()

    def tiles(self) -> list[TileId]:
        """Every tile with a label in either place, sorted (a .npy of another site is ignored)."""
        from_npy = {t for t, (site, _) in npy_tiles(self.root).items() if site == self.site}
        return sorted(from_npy | set(label_tif_tiles(self.root)))

    def signature(self, tile: TileId) -> LabelSignature:
        """Hashes of the tile's files' bytes; a different value means someone changed the label."""
        return LabelSignature(digest_file(self.npy_path(tile)), digest_file(self.tif_path(tile)),
                              digest_file(self.unsure_path(tile)))

    def sha256(self, tile: TileId) -> str | None:
        """Hash of the label's content (uint8 32x32, row-major), independent of file format and mtime.

        Training runs record it so a result can be traced to the exact labels it learned from.
        Unsure pixels (value 2) are part of it; a label without any hashes as it always did.
        """
        label = self.read_values(tile)
        if label is None:
            return None
        return hashlib.sha256(np.ascontiguousarray(label, dtype=np.uint8).tobytes()).hexdigest()

    # ----------------------------------------------------------------- read
    def read(self, tile: TileId) -> np.ndarray | None:
        """The tile's label as uint8 0/1 [32, 32], or None if it has none (unsure pixels read 0).

        A disagreement between the two files is reported as a :class:`LabelConflictWarning`.
        """
        result = self._read_warned(tile)
        return None if result is None else result.array

    def read_values(self, tile: TileId) -> np.ndarray | None:
        """Like :meth:`read`, with unsure pixels as :data:`UNSURE` (2)."""
        result = self._read_warned(tile)
        return None if result is None else result.values

    def _read_warned(self, tile: TileId) -> LabelRead | None:
        result = self.read_detailed(tile)
        if result is not None and result.warning:
            warnings.warn(result.warning, LabelConflictWarning, stacklevel=3)
        return result

    def read_detailed(self, tile: TileId) -> LabelRead | None:
        """Like :meth:`read` but returns where the label came from, any conflict message and the unsure mask."""
        npy, tif = self.npy_path(tile), self.tif_path(tile)
        has_npy, has_tif = npy.is_file(), tif.is_file()
        if not has_npy and not has_tif:
            return None
        tile = self._check_tile(tile, npy if has_npy else tif)
        from_npy = self._npy_values(tile) if has_npy else None
        from_tif = read_label_geotiff(tif, tile, self.grid, with_unsure=True) if has_tif else None
        if from_npy is None:
            return _label_read(from_tif, "tif")
        if from_tif is None:
            return _label_read(from_npy, "npy")
        if np.array_equal(from_npy, from_tif):
            return _label_read(from_npy, "both")
        differing = int(np.count_nonzero(from_npy != from_tif))
        try:
            npy_newer = npy.stat().st_mtime_ns >= tif.stat().st_mtime_ns
        except OSError as exc:
            raise LabelError(f"label file vanished while reading: {reason(exc)}", npy) from exc
        newer, older = (npy, tif) if npy_newer else (tif, npy)
        message = (
            f"tile {format_tile_id(tile)}: {npy.name} and {tif.name} disagree on {differing} pixel(s); "
            f"using the newer {newer} (over {older}); saving the label again makes them agree"
        )
        return _label_read(from_npy if npy_newer else from_tif, "npy" if npy_newer else "tif", message)

    def _npy_values(self, tile: TileId) -> np.ndarray:
        """The .npy label with the sidecar's unsure pixels set to :data:`UNSURE`."""
        values = read_label_npy(self.npy_path(tile), self.grid.tile_size)
        sidecar = self.unsure_path(tile)
        if sidecar.is_file():
            unsure = read_label_npy(sidecar, self.grid.tile_size).astype(bool)
            values[unsure] = UNSURE
        return values

    # ----------------------------------------------------------------- write
    def write(self, tile: TileId, array: np.ndarray, unsure: np.ndarray | None = None,
              expect: LabelSignature | None = None) -> LabelSignature:
        """Save a label to both files atomically; returns the signature of the bytes written.

        ``array`` > 0 is change; ``unsure`` (bool mask, or value :data:`UNSURE` in ``array`` when
        ``unsure`` is None and ``array`` is integer) marks pixels the analyst could not decide.
        With ``expect`` the save is a compare-and-swap: if the files on disk no longer have that
        signature, nothing is written and a :class:`LabelConflictError` names the changed file.

        Every temporary file is complete and verified (read back) before any rename, so a failure
        while writing, a full disk included, leaves the previous files untouched; any I/O error
        becomes a :class:`LabelError` naming the label file. The GeoTIFF is renamed first, the
        .npy last; should the process die in between, the newer GeoTIFF wins on the next read.
        """
        npy, tif = self.npy_path(tile), self.tif_path(tile)
        tile = self._check_tile(tile, tif)
        label, mask = self._split_values(array, unsure, npy)
        with self.lock(tile):
            if expect is not None:
                self._compare(tile, expect)
            return self._write_files(tile, label, mask)

    def _split_values(self, array: np.ndarray, unsure: np.ndarray | None, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        data = np.asarray(array)
        if unsure is None and data.dtype.kind in "iu":
            squeezed = np.squeeze(data) if data.ndim > 2 else data
            unsure = squeezed == UNSURE
        label = normalize_label(array, self.grid.tile_size, path)
        mask = None
        if unsure is not None:
            mask = normalize_label(unsure, self.grid.tile_size, path).astype(bool)
            label[mask] = 0  # unsure is not change, in every file the authors' tools read
            if not mask.any():
                mask = None
        return label, mask

    def _compare(self, tile: TileId, expect: LabelSignature) -> None:
        current = self.signature(tile)
        if current != expect:
            changed = current.changed_files(expect, self, tile)
            also = f" (also changed: {', '.join(p.name for p in changed[1:])})" if len(changed) > 1 else ""
            raise LabelConflictError(
                f"the label of tile {format_tile_id(tile)} was changed by another program since the viewer "
                f"read it{also}; the viewer's version was not saved over it", changed[0])

    def _write_files(self, tile: TileId, label: np.ndarray, mask: np.ndarray | None) -> LabelSignature:
        npy, tif, sidecar = self.npy_path(tile), self.tif_path(tile), self.unsure_path(tile)
        data = npy_bytes(label)
        band = geotiff_band(label, mask)
        digests: dict[str, str | None] = {"unsure": None}

        def check_tif(tmp: Path) -> None:
            if not np.array_equal(read_geotiff_band(tmp), band):
                raise WriteVerificationError(errno.EIO, "the written GeoTIFF does not read back as written", str(tif))
            digests["tif"] = digest_file(tmp)

        current = npy
        try:
            with contextlib.ExitStack() as stack:
                tmp_npy = stack.enter_context(atomic_path(npy, checked=True))
                tmp_npy.write_bytes(data)
                check_written(tmp_npy, npy, same_bytes(data, npy))  # all verified before any rename
                if mask is not None:
                    mask_bytes = npy_bytes(mask.astype(np.uint8))
                    current = sidecar
                    tmp_mask = stack.enter_context(atomic_path(sidecar, checked=True))
                    tmp_mask.write_bytes(mask_bytes)
                    check_written(tmp_mask, sidecar, same_bytes(mask_bytes, sidecar))
                    digests["unsure"] = hash_bytes(mask_bytes)
                else:
                    stack.enter_context(on_success(unlink_quietly, sidecar))  # after the GeoTIFF's rename
                current = tif
                tmp_tif = stack.enter_context(atomic_path(tif, checked=True))
                write_label_geotiff(tmp_tif, label, self.grid, tile, unsure=mask)
                check_written(tmp_tif, tif, check_tif)
                # leaving the stack renames: the GeoTIFF, the sidecar, the .npy
        except (OSError, RasterioError) as exc:
            named = file_named_by(exc, (npy, tif, sidecar))
            raise LabelError(f"label {io_error_message(exc)}", named or current) from exc
        return LabelSignature(hash_bytes(data), digests["tif"], digests["unsure"])

    def heal(self, tile: TileId) -> bool:
        """Rewrite a tile whose .npy and GeoTIFF disagree (a save interrupted between its renames).

        The newer file wins, as :meth:`read_detailed` reports; returns True if a split was healed.
        """
        tile = self._check_tile(tile, self.tif_path(tile))
        with self.lock(tile):
            result = self.read_detailed(tile)
            if result is None or result.warning is None:
                return False
            self._write_files(tile, result.array, result.unsure)
        return True

    def delete(self, tile: TileId, expect: LabelSignature | None = None) -> LabelSignature:
        """Remove the tile's label files (it becomes unlabelled, not 'no change'); compare-and-swap with ``expect``."""
        with self.lock(tile):
            if expect is not None:
                self._compare(tile, expect)
            for path in (self.tif_path(tile), self.unsure_path(tile), self.npy_path(tile)):
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    raise LabelError(f"label {io_error_message(exc).replace('saved', 'deleted')}", path) from exc
        return NO_LABEL


def _label_read(values: np.ndarray, source: str, warning: str | None = None) -> LabelRead:
    unsure = values == UNSURE
    array = np.where(unsure, 0, values).astype(np.uint8)
    return LabelRead(array, source, warning, unsure if unsure.any() else None)
