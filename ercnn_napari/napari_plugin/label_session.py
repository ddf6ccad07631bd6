"""The labels being edited in the viewer and what of them has reached disk (no Qt here).

The viewer shows ONE labels layer: a mosaic of every tile of the grid (0 no change, 1 change,
2 unsure). This class owns that array, a copy of what was last saved, and the file signatures
(content hashes) seen at the last read or write. Saving writes only the tiles that differ from
the saved copy, each through :class:`LabelStore` as a compare-and-swap under the tile's file
lock: if someone changed the file outside the viewer meanwhile (another viewer, a script), the
tile is *not* overwritten but reported as a conflict naming the file that changed, for the
analyst to resolve (reload theirs, or keep the viewer's). A tile that fails to save (full disk,
read-only folder) stays dirty and is reported; the other tiles are still saved.

Comparing with the saved copy, rather than tracking paint events, also catches undo/redo and any
other edit path napari has, so "saved" on screen always means "on disk". A tile that was
unlabelled before the analyst's first stroke and is back to empty (undo, or everything erased)
becomes unlabelled again, not "labelled, no change".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.label_geotiff import UNSURE
from ercnn_napari.core.labels import NO_LABEL, LabelConflictError
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
        #: tiles unlabelled on disk before this session's strokes labelled them (undo -> unlabelled)
        self.painted_from_unlabelled: set[TileId] = set()
        #: tiles whose .npy and GeoTIFF disagreed on loading and were rewritten to agree
        self.healed: list[TileId] = []
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
        try:
            with self.store.read_lock(tile):  # no half-renamed pair from another writer
                self.signatures[tile] = self.store.signature(tile)
                result = self.store.read_detailed(tile)
        except ErcnnError as exc:
            self.load_errors[tile] = str(exc)
            return
        array = None if result is None else result.values
        if result is not None and result.warning:
            self._heal(tile)
        self.painted_from_unlabelled.discard(tile)
        self.load_errors.pop(tile, None)
        values = np.zeros((self.tile_size, self.tile_size), np.uint8) if array is None else array
        self.mosaic[rows, cols] = values
        self.saved[rows, cols] = values
        if array is None:
            self.labelled.discard(tile)
        else:
            self.labelled.add(tile)

    def _heal(self, tile: TileId) -> None:
        """A save interrupted between its two renames left the files disagreeing: write the newer back."""
        try:
            if self.store.heal(tile):
                self.signatures[tile] = self.store.signature(tile)
                self.healed.append(tile)
        except ErcnnError as exc:  # read-only project: the newer file is still what is shown
            self.load_errors[tile] = f"{exc} (the label reads fine; its two files could not be made to agree)"

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
            if self.store.signature(tile) != self.signatures.get(tile, NO_LABEL):
                changed.append(tile)
        return changed

    def unsure_count(self) -> int:
        """Pixels marked unsure in the viewer (shown in the dock; excluded from training and metrics)."""
        return int(np.count_nonzero(self.mosaic == UNSURE))

    # -- saving --------------------------------------------------------------------------------
    def save(self, tiles: list[TileId] | None = None) -> SaveReport:
        """Write the changed tiles (or ``tiles``) that nobody edited outside meanwhile; try every one."""
        report = SaveReport()
        for tile in self.changed_tiles() if tiles is None else tiles:
            if tile in self.conflicts:
                report.conflicts.append(tile)
                continue
            try:
                self._save_tile(tile)
            except LabelConflictError as exc:
                self.conflicts[tile] = str(exc)
                report.conflicts.append(tile)
                continue
            except (ErcnnError, OSError) as exc:
                report.errors[tile] = str(exc)
                continue
            report.saved.append(tile)
        return report

    def _save_tile(self, tile: TileId) -> None:
        values = self.tile_array(tile).copy()
        expect = self.signatures.get(tile, NO_LABEL)
        if tile in self.painted_from_unlabelled and not values.any():
            # every stroke undone (or erased): back to "not looked at", as before the first stroke
            self.signatures[tile] = self.store.delete(tile, expect=expect)
            self._set_saved(tile, values, labelled=False)
            return
        if tile not in self.labelled:
            self.painted_from_unlabelled.add(tile)
        self._write(tile, values, expect)

    def _write(self, tile: TileId, values: np.ndarray, expect: Any = None) -> None:
        self.signatures[tile] = self.store.write(tile, values, expect=expect)
        self._set_saved(tile, values, labelled=True)

    def _set_saved(self, tile: TileId, values: np.ndarray, labelled: bool) -> None:
        rows, cols = self.grid.tile_slices(tile)
        self.saved[rows, cols] = values
        if labelled:
            self.labelled.add(tile)
        else:
            self.labelled.discard(tile)
            self.painted_from_unlabelled.discard(tile)

    def mark_labelled(self, tile: TileId) -> None:
        """Save the tile as it is now, even if it shows no change: "I looked, nothing changed here"."""
        if tile in self.conflicts:
            raise ErcnnError(self.conflicts[tile], self.store.tif_path(tile))
        try:
            self._write(tile, self.tile_array(tile).copy(), self.signatures.get(tile, NO_LABEL))
        except LabelConflictError as exc:
            self.conflicts[tile] = str(exc)
            raise
        self.painted_from_unlabelled.discard(tile)  # a deliberate "labelled", undo keeps it

    def unlabel(self, tile: TileId) -> None:
        """Delete a tile's label files: it goes back to "not looked at" (not the same as "no change")."""
        rows, cols = self.grid.tile_slices(tile)
        self.signatures[tile] = self.store.delete(tile, expect=None if tile in self.conflicts else
                                                  self.signatures.get(tile, NO_LABEL))
        self.mosaic[rows, cols] = 0
        self._set_saved(tile, self.mosaic[rows, cols].copy(), labelled=False)
        self.conflicts.pop(tile, None)

    # -- conflicts -----------------------------------------------------------------------------
    def take_theirs(self, tile: TileId) -> None:
        """Resolve a conflict by reloading the file from disk (the viewer's edits of that tile are dropped)."""
        self.conflicts.pop(tile, None)
        self._load_tile(tile)

    def keep_mine(self, tile: TileId) -> None:
        """Resolve a conflict by writing the viewer's version over the outside edit (a deliberate overwrite)."""
        self._write(tile, self.tile_array(tile).copy(), expect=None)
        self.conflicts.pop(tile, None)

    def refresh_unedited(self) -> list[TileId]:
        """Reload tiles changed outside that the viewer has not touched (nothing of the analyst's is lost)."""
        changed_here = set(self.changed_tiles())
        reloaded = []
        for tile in self.edited_outside():
            if tile not in changed_here and tile not in self.conflicts:
                self._load_tile(tile)
                reloaded.append(tile)
        return reloaded


def status_html(session: LabelSession, save_errors: dict[TileId, str]) -> str:
    """The Label dock's status line: failed saves first (red, with the reason), then unsaved, then saved."""
    unsaved = session.changed_tiles()
    failed = sorted(t for t in save_errors if t in unsaved)
    if failed:
        names = ", ".join(format_tile_id(t) for t in failed[:4]) + (" …" if len(failed) > 4 else "")
        return (f"<b style='color:#ff5050'>● not saved: {len(failed)} tile(s) ({names}): "
                f"{save_errors[failed[0]]}</b>")
    if unsaved:
        return f"<b style='color:#ffa040'>● unsaved: {len(unsaved)} tile(s)</b>"
    unsure = session.unsure_count()
    unsure_text = f", {unsure} unsure pixel(s)" if unsure else ""
    return (f"<span style='color:#39d353'>✓ all labels saved</span> "
            f"({len(session.labelled)} labelled tile(s){unsure_text})")
