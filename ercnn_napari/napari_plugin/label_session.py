"""The labels being edited in the viewer and what of them has reached disk (no Qt here).

The viewer shows ONE labels layer: a mosaic of every tile of the grid. This class owns that array,
a copy of what was last saved, and the file signatures seen at the last read or write. Saving
writes only the tiles that differ from the saved copy, each through :class:`LabelStore` (atomic,
both the .npy and the GeoTIFF). Before writing a tile it compares the file signature with the one
it knows: if someone changed the file outside the viewer meanwhile, the tile is *not* overwritten
but reported as a conflict, for the analyst to resolve (reload theirs, or keep the viewer's).

Comparing with the saved copy, rather than tracking paint events, also catches undo/redo and any
other edit path napari has, so "saved" on screen always means "on disk".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.tiles import TileId, format_tile_id


@dataclass
class SaveReport:
    """What one save did: tiles written, tiles held back by an outside edit, tiles that failed."""

    saved: list[TileId] = field(default_factory=list)
    conflicts: list[TileId] = field(default_factory=list)
    errors: dict[TileId, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.conflicts and not self.errors


class LabelSession:
    """Mosaic of all tile labels of a project, with change tracking against disk."""

    def __init__(self, project: Any) -> None:
        self.project = project
        self.store = project.labels
        self.grid = project.grid
        self.tile_size = int(self.grid.tile_size)
        self.mosaic = np.zeros(self.grid.shape_pixels, dtype=np.uint8)
        self.saved = np.zeros_like(self.mosaic)
        self.signatures: dict[TileId, Any] = {}
        self.labelled: set[TileId] = set()
        self.conflicts: dict[TileId, str] = {}
        self.load_errors: dict[TileId, str] = {}
        self.load_all()

    # -- reading -------------------------------------------------------------------------------
    def load_all(self) -> None:
        """Read every labelled tile into the mosaic (a broken file is reported, the rest still load)."""
        self.mosaic[:] = 0
        self.saved[:] = 0
        self.labelled.clear()
        self.signatures.clear()
        for tile in self.store.tiles():
            if not self.grid.contains(tile):
                self.load_errors[tile] = f"tile {format_tile_id(tile)} lies outside the project grid"
                continue
            self._load_tile(tile)

    def _load_tile(self, tile: TileId) -> None:
        rows, cols = self.grid.tile_slices(tile)
        self.signatures[tile] = self.store.signature(tile)
        try:
            array = self.store.read(tile)
        except ErcnnError as exc:
            self.load_errors[tile] = str(exc)
            return
        self.load_errors.pop(tile, None)
        values = np.zeros((self.tile_size, self.tile_size), np.uint8) if array is None else array
        self.mosaic[rows, cols] = values
        self.saved[rows, cols] = values
        if array is None:
            self.labelled.discard(tile)
        else:
            self.labelled.add(tile)

    def tile_array(self, tile: TileId) -> np.ndarray:
        rows, cols = self.grid.tile_slices(tile)
        return self.mosaic[rows, cols]

    # -- change tracking -----------------------------------------------------------------------
    def changed_tiles(self) -> list[TileId]:
        """Tiles whose pixels in the viewer differ from what was last read or saved."""
        ts = self.tile_size
        rows, cols = self.grid.rows, self.grid.cols
        diff = (self.mosaic != self.saved).reshape(rows, ts, cols, ts).any(axis=(1, 3))
        return [(int(y), int(x)) for y, x in zip(*np.nonzero(diff), strict=True)]

    @property
    def dirty(self) -> bool:
        return bool(np.any(self.mosaic != self.saved))

    def edited_outside(self) -> list[TileId]:
        """Tiles whose files changed on disk since the viewer last read or wrote them."""
        on_disk = set(self.store.tiles())
        candidates = on_disk | set(self.signatures)
        changed = []
        for tile in sorted(candidates):
            if not self.grid.contains(tile):
                continue
            if self.store.signature(tile) != self.signatures.get(tile, _ABSENT):
                changed.append(tile)
        return changed

    # -- saving --------------------------------------------------------------------------------
    def save(self, tiles: list[TileId] | None = None) -> SaveReport:
        """Write the changed tiles (or ``tiles``) that nobody edited outside meanwhile."""
        report = SaveReport()
        for tile in self.changed_tiles() if tiles is None else tiles:
            if tile in self.conflicts:
                report.conflicts.append(tile)
                continue
            if self.store.signature(tile) != self.signatures.get(tile, _ABSENT):
                self.conflicts[tile] = (
                    f"the label of tile {format_tile_id(tile)} was changed outside the viewer "
                    f"({self.store.tif_path(tile)}); the viewer's version was not saved over it")
                report.conflicts.append(tile)
                continue
            try:
                self._write(tile, self.tile_array(tile))
            except ErcnnError as exc:
                report.errors[tile] = str(exc)
                continue
            report.saved.append(tile)
        return report

    def _write(self, tile: TileId, values: np.ndarray) -> None:
        rows, cols = self.grid.tile_slices(tile)
        self.store.write(tile, values)
        self.saved[rows, cols] = values
        self.signatures[tile] = self.store.signature(tile)
        self.labelled.add(tile)

    def mark_labelled(self, tile: TileId) -> None:
        """Save the tile as it is now, even if it shows no change: "I looked, nothing changed here"."""
        if tile in self.conflicts:
            raise ErcnnError(self.conflicts[tile], self.store.tif_path(tile))
        self._write(tile, self.tile_array(tile).copy())

    def unlabel(self, tile: TileId) -> None:
        """Delete a tile's label files: it goes back to "not looked at" (not the same as "no change")."""
        rows, cols = self.grid.tile_slices(tile)
        self.store.delete(tile)
        self.mosaic[rows, cols] = 0
        self.saved[rows, cols] = 0
        self.signatures[tile] = self.store.signature(tile)
        self.labelled.discard(tile)
        self.conflicts.pop(tile, None)

    # -- conflicts -----------------------------------------------------------------------------
    def take_theirs(self, tile: TileId) -> None:
        """Resolve a conflict by reloading the file from disk (the viewer's edits of that tile are dropped)."""
        self.conflicts.pop(tile, None)
        self._load_tile(tile)

    def keep_mine(self, tile: TileId) -> None:
        """Resolve a conflict by writing the viewer's version over the outside edit."""
        self.conflicts.pop(tile, None)
        self._write(tile, self.tile_array(tile).copy())

    def refresh_unedited(self) -> list[TileId]:
        """Reload tiles changed outside that the viewer has not touched (nothing of the analyst's is lost)."""
        changed_here = set(self.changed_tiles())
        reloaded = []
        for tile in self.edited_outside():
            if tile not in changed_here and tile not in self.conflicts:
                self._load_tile(tile)
                reloaded.append(tile)
        return reloaded


class _Absent:
    """Signature of a tile the viewer never saw on disk: equal to a signature with neither file."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, tuple) and all(part is None for part in other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:  # pragma: no cover - never used as a key
        return 0


_ABSENT = _Absent()
