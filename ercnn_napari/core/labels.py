"""Per-tile change labels, kept in the authors' two places at once.

The authors' trainer reads ``training/numpy_ground_truth/<Site>_{y}_{x}.npy``; GIS tools and
people read ``ground_truth/{y}:{x}/{y}:{x}.tif``. The :class:`LabelStore` writes both on every
save (each through a temporary file and a rename, so a crash keeps the previous good files), and
on reading checks that they agree. When they do not (someone edited one file outside the viewer,
or a crash fell between the two renames) the newer file wins and the disagreement is reported,
never silently resolved. A label that does not fit its tile (shape, CRS, position) is refused with
a :class:`LabelError` naming the file.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.errors import LabelError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.label_geotiff import read_label_geotiff, write_label_geotiff
from ercnn_napari.core.project_file import GROUND_TRUTH_DIR, NPY_DIR, label_tif_tiles, npy_tiles
from ercnn_napari.core.tiles import TileId, format_tile_id, tile_stem


class LabelConflictWarning(UserWarning):
    """The .npy and the GeoTIFF of a tile disagree; the newer one was used."""


class FileStamp(NamedTuple):
    """What changes when a file is rewritten: modification time (ns) and size."""

    mtime_ns: int
    size: int


class LabelSignature(NamedTuple):
    """Stamps of a tile's two label files (None where a file is absent); compare to detect outside edits."""

    npy: FileStamp | None
    tif: FileStamp | None


@dataclass(frozen=True)
class LabelRead:
    """A label as read, where it came from, and what was wrong with the pair if anything."""

    array: np.ndarray
    source: str  # "both" (they agree), "npy", "tif"
    warning: str | None = None


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

    def _check_tile(self, tile: TileId, path: Path) -> TileId:
        tile = (int(tile[0]), int(tile[1]))
        if not self.grid.contains(tile):
            raise LabelError(
                f"tile {format_tile_id(tile)} is outside the project grid of "
                f"{self.grid.rows} rows x {self.grid.cols} columns",
                path,
            )
        return tile

    # ----------------------------------------------------------------- queries
    def exists(self, tile: TileId) -> bool:
        """True if either label file of the tile exists."""
        return self.npy_path(tile).is_file() or self.tif_path(tile).is_file()

    def tiles(self) -> list[TileId]:
        """Every tile with a label in either place, sorted (a .npy of another site is ignored)."""
        from_npy = {t for t, (site, _) in npy_tiles(self.root).items() if site == self.site}
        return sorted(from_npy | set(label_tif_tiles(self.root)))

    def signature(self, tile: TileId) -> LabelSignature:
        """mtime_ns and size of both files; a different value means someone changed the label."""
        return LabelSignature(_stamp(self.npy_path(tile)), _stamp(self.tif_path(tile)))

    def sha256(self, tile: TileId) -> str | None:
        """Hash of the label's content (uint8 32x32, row-major), independent of file format and mtime.

        Training runs record it so a result can be traced to the exact labels it learned from.
        """
        label = self.read(tile)
        if label is None:
            return None
        return hashlib.sha256(np.ascontiguousarray(label, dtype=np.uint8).tobytes()).hexdigest()

    # ----------------------------------------------------------------- read
    def read(self, tile: TileId) -> np.ndarray | None:
        """The tile's label as uint8 0/1 [32, 32], or None if it has none.

        A disagreement between the two files is reported as a :class:`LabelConflictWarning`.
        """
        result = self.read_detailed(tile)
        if result is None:
            return None
        if result.warning:
            warnings.warn(result.warning, LabelConflictWarning, stacklevel=2)
        return result.array

    def read_detailed(self, tile: TileId) -> LabelRead | None:
        """Like :meth:`read` but returns where the label came from and any conflict message."""
        npy, tif = self.npy_path(tile), self.tif_path(tile)
        has_npy, has_tif = npy.is_file(), tif.is_file()
        if not has_npy and not has_tif:
            return None
        tile = self._check_tile(tile, npy if has_npy else tif)
        size = self.grid.tile_size
        from_npy = read_label_npy(npy, size) if has_npy else None
        from_tif = read_label_geotiff(tif, tile, self.grid) if has_tif else None
        if from_npy is None:
            return LabelRead(from_tif, "tif")
        if from_tif is None:
            return LabelRead(from_npy, "npy")
        if np.array_equal(from_npy, from_tif):
            return LabelRead(from_npy, "both")
        differing = int(np.count_nonzero(from_npy != from_tif))
        npy_newer = npy.stat().st_mtime_ns >= tif.stat().st_mtime_ns
        newer, older = (npy, tif) if npy_newer else (tif, npy)
        message = (
            f"tile {format_tile_id(tile)}: {npy.name} and {tif.name} disagree on {differing} pixel(s); "
            f"using the newer {newer} (over {older}); saving the label again makes them agree"
        )
        return LabelRead(from_npy if npy_newer else from_tif, "npy" if npy_newer else "tif", message)

    # ----------------------------------------------------------------- write
    def write(self, tile: TileId, array: np.ndarray) -> None:
        """Save a label to both files atomically; refused (LabelError) if it does not fit the tile.

        Both temporary files are complete before either is renamed, so a failure while writing
        leaves both previous files untouched. The GeoTIFF is renamed first; should the process die
        between the two renames, the pair disagrees and the newer GeoTIFF wins on the next read.
        """
        npy, tif = self.npy_path(tile), self.tif_path(tile)
        tile = self._check_tile(tile, tif)
        label = normalize_label(array, self.grid.tile_size, npy)
        with atomic_path(npy) as tmp_npy, atomic_path(tif) as tmp_tif:
            with open(tmp_npy, "wb") as fh:
                np.save(fh, label, allow_pickle=False)
            write_label_geotiff(tmp_tif, label, self.grid, tile)

    def delete(self, tile: TileId) -> None:
        """Remove both label files of a tile (the tile becomes unlabelled, not 'no change')."""
        for path in (self.npy_path(tile), self.tif_path(tile)):
            path.unlink(missing_ok=True)


def _stamp(path: Path) -> FileStamp | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return FileStamp(stat.st_mtime_ns, stat.st_size)
