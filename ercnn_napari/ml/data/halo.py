"""A tile's stacked series with a context halo read from its neighbours' series.

Why: a 32x32 tile predicted alone is zero-padded by every convolution, and the published
weights flag unchanged pixels on the tile's 1-pixel ring ~10x more often than inside (the
tile-border seams of a stitched map). The network is fully convolutional, so a tile can be
predicted with ``halo`` extra pixels on each side, taken from the neighbouring tiles' series,
and only its centre kept: the zero padding then falls on the halo, away from the kept pixels.
(The authors' Mariupol monitoring overlapped 93x93 tiles by 8 pixels for the same reason.)

Rules:

- Neighbours' series are aligned to the centre tile's time axis. On one stacking grid they are
  the same axis; if not (another stacking run), each centre step takes the neighbour's latest
  step at or before it, which is what the stacked state held at that time.
- The AoI's outer edge (or a neighbour without observations): ``edge="reflect"`` mirrors the
  available image across the edge (a smooth continuation, no artificial zero border);
  ``edge="none"`` leaves the halo off on that side, so the tile's edge there is predicted as
  today (zero padding).
- The time-step mask keeps the rule of the tile itself: in "quirk" mode the tile's own top-left
  pixel decides which steps count (see ``mask_region`` in :mod:`ercnn_napari.ml.model.shared_steps`),
  not the halo's corner, so a halo changes the spatial context only.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.tiles import TileId, format_tile_id
from ercnn_napari.ml.data.observations import StackedSource

EDGE_MODES = ("reflect", "none")


@dataclass
class HaloBlock:
    """A tile's series with its halo: ``series`` [N, h0+S+h1, w0+S+w1, 17], centre at ``centre``."""

    series: np.ndarray
    centre: tuple[slice, slice]
    timestamps: np.ndarray


def align_steps(stamps: np.ndarray, observations: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``observations`` (on time axis ``stamps``) resampled to ``target``: the latest step at or before each."""
    if len(stamps) == len(target) and np.array_equal(stamps, target):
        return observations
    index = np.searchsorted(stamps, target, side="right") - 1
    return observations[np.clip(index, 0, len(stamps) - 1)]


class HaloReader:
    """Builds halo blocks for the tiles of a stacked source; keeps the last ``cache_tiles`` series.

    Traverse tiles row by row and a cache of 3 * (row length + 2) series reads each file once.
    """

    def __init__(self, source: StackedSource, halo: int, edge: str = "reflect", cache_tiles: int = 12) -> None:
        if not isinstance(source, StackedSource):
            raise InputDataError("a context halo needs stacked (stage-2) observations; stage-3 windows have "
                                 "no neighbours", getattr(source, "folder", None))
        if edge not in EDGE_MODES:
            raise ValueError(f"edge must be one of {EDGE_MODES}, not {edge!r}")
        self.source = source
        self.halo = int(halo)
        self.edge = edge
        self.available = set(source.tiles())
        self._cache: OrderedDict[TileId, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_tiles = max(1, int(cache_tiles))

    def _series(self, tile: TileId) -> tuple[np.ndarray, np.ndarray]:
        if tile in self._cache:
            self._cache.move_to_end(tile)
            return self._cache[tile]
        series, _table = self.source.series(tile)
        self._cache[tile] = (series.timestamps, series.observations)
        while len(self._cache) > self._cache_tiles:
            self._cache.popitem(last=False)
        return self._cache[tile]

    def block(self, tile: TileId) -> HaloBlock:
        """The tile's series with up to ``halo`` pixels of neighbours' series on every side."""
        tile = (int(tile[0]), int(tile[1]))
        stamps, centre = self._series(tile)
        n, size, size_x, channels = centre.shape
        h = self.halo
        if h == 0:
            return HaloBlock(centre, (slice(0, size), slice(0, size_x)), stamps)
        if h > min(size, size_x):
            raise ValueError(f"halo {h} is larger than the tile ({size}x{size_x}); neighbours are one tile away")
        has = {(dy, dx): (tile[0] + dy, tile[1] + dx) in self.available
               for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
        top, bottom = (h if has[(-1, 0)] else 0), (h if has[(1, 0)] else 0)
        left, right = (h if has[(0, -1)] else 0), (h if has[(0, 1)] else 0)
        out = np.empty((n, top + size + bottom, left + size_x + right, channels), np.float32)
        rows = {-1: (slice(size - top, size), slice(0, top)), 0: (slice(0, size), slice(top, top + size)),
                1: (slice(0, bottom), slice(top + size, top + size + bottom))}
        cols = {-1: (slice(size_x - left, size_x), slice(0, left)), 0: (slice(0, size_x), slice(left, left + size_x)),
                1: (slice(0, right), slice(left + size_x, left + size_x + right))}
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                (src_r, dst_r), (src_c, dst_c) = rows[dy], cols[dx]
                if dst_r.stop == dst_r.start or dst_c.stop == dst_c.start:
                    continue
                if (dy, dx) == (0, 0):
                    out[:, dst_r, dst_c] = centre
                elif has[(dy, dx)]:
                    n_stamps, n_obs = self._series((tile[0] + dy, tile[1] + dx))
                    if n_obs.shape[1:] != centre.shape[1:]:
                        raise InputDataError(f"tile {format_tile_id((tile[0] + dy, tile[1] + dx))} has observations "
                                             f"of shape {n_obs.shape[1:]}, its neighbour {format_tile_id(tile)} "
                                             f"{centre.shape[1:]}", self.source.path((tile[0] + dy, tile[1] + dx)))
                    out[:, dst_r, dst_c] = align_steps(n_stamps, n_obs[:, src_r, src_c], stamps)
                else:  # a missing corner between two present sides: the centre's corner, mirrored
                    corner_r = slice(0, top) if dy < 0 else slice(size - bottom, size)
                    corner_c = slice(0, left) if dx < 0 else slice(size_x - right, size_x)
                    out[:, dst_r, dst_c] = centre[:, corner_r, corner_c][:, ::-1, ::-1]
        centre_slices = (slice(top, top + size), slice(left, left + size_x))
        if self.edge == "none" or (top, bottom, left, right) == (h, h, h, h):
            return HaloBlock(out, centre_slices, stamps)
        pad = ((0, 0), (h - top, h - bottom), (h - left, h - right), (0, 0))
        padded = np.pad(out, pad, mode="reflect")
        return HaloBlock(padded, (slice(h, h + size), slice(h, h + size_x)), stamps)



def pin_corners(block: HaloBlock) -> np.ndarray:
    """The block's series with its four outer corner pixels replaced by the tile's own corners.

    Why: the Keras network's "quirk" time-step mask is decided by the INPUT's top-left pixel. A
    model fed a tile with context must keep the rule of the tile itself (as the shared-step path
    does with ``mask_region``), also after a rotation or flip of training augmentation: with the
    tile's four corners copied to the input's four corners, whichever corner a symmetry of the
    square brings to the top left holds the tile's corner that it brings there. Only those four
    halo pixels change (at least ``halo`` pixels from every kept pixel); without a halo nothing does.
    """
    rows, cols = block.centre
    series = block.series
    if (rows.start, cols.start) == (0, 0) and (rows.stop, cols.stop) == series.shape[1:3]:
        return series
    out = series.copy()
    for out_r, in_r in ((0, rows.start), (-1, rows.stop - 1)):
        for out_c, in_c in ((0, cols.start), (-1, cols.stop - 1)):
            out[:, out_r, out_c] = series[:, in_r, in_c]
    return out


def crop_centre(maps: np.ndarray, context: int) -> np.ndarray:
    """``maps`` [..., H + 2c, W + 2c] -> the centre [..., H, W] (no-op for ``context`` 0)."""
    c = int(context)
    return maps if c == 0 else maps[..., c:-c, c:-c]


def context_windows(reader: HaloReader, tile: TileId, table: object, indices: np.ndarray,
                    time_steps: int) -> np.ndarray:
    """Windows ``indices`` of ``table`` cut from the tile's halo block, corners pinned, padded with -1.

    float32 [k, time_steps, H + 2h, W + 2h, 17]: what the Keras network sees when a model trained
    with context is trained, validated or evaluated (the map and ``predict`` use the shared-step
    path with the same block instead). The AoI's edge is mirrored (``edge="reflect"``) so every
    input has the same size; the quirk mask keeps the tile's own corner (:func:`pin_corners`).
    """
    block = reader.block(tile)
    series = pin_corners(block)
    out = np.full((len(indices), int(time_steps), *series.shape[1:]), -1.0, np.float32)
    for k, row in enumerate(indices):
        start, count = int(table.start_index[row]), min(int(table.n_obs[row]), int(time_steps))
        out[k, :count] = series[start:start + count]
    return out
