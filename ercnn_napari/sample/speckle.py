"""Sentinel-1 speckle that is spatially correlated like a GRD product's and continuous across tiles.

IW GRD high-resolution products have 10 m pixels but a resolution of about 20 x 22 m, so the
speckle of neighbouring pixels is correlated; their equivalent number of looks is 4.4 (ESA
Sentinel-1 User Handbook, 2013). Independent gamma noise per pixel is rougher than that at the
pixel scale, which is the scale of the network's 3x3 SAR convolution. Here each pixel draws a
gamma variate with fewer looks, keyed by the pixel's own tile (so every tile that needs it draws
the same value), and a [1/4, 1/2, 1/4] blur in both directions brings it back to 4.4 looks with a
neighbour correlation of 2/3. A tile borrows a one-pixel ring from its eight neighbours, so the
speckle field runs through tile borders as if the AoI had been filtered in one piece.
"""

from __future__ import annotations

import numpy as np

from ercnn_napari.core.constants import TILE_SIZE
from ercnn_napari.sample.scene import STREAM_SPECKLE, stream

#: Blur (per axis) of the raw per-pixel draws: a 20 m resolution on a 10 m grid.
KERNEL = np.array([0.25, 0.5, 0.25], np.float32)
#: Variance of a blurred unit-variance white field relative to the raw one (both axes).
_VARIANCE_KEPT = float((KERNEL ** 2).sum() ** 2)


def raw_looks(looks: float) -> float:
    """Looks of the raw draws so that the blurred field has ``looks`` (var = kept / raw looks)."""
    return looks * _VARIANCE_KEPT


def _perimeter_first(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each raw draw of a tile, its perimeter first (top, bottom, left, right).

    A neighbour only needs a tile's outermost ring, so it draws only the first ``4 n - 4``
    values of that tile's stream (a generator's first k draws do not depend on how many follow).
    """
    top = [(0, c) for c in range(n)]
    bottom = [(n - 1, c) for c in range(n)]
    left = [(r, 0) for r in range(1, n - 1)]
    right = [(r, n - 1) for r in range(1, n - 1)]
    inner = [(r, c) for r in range(1, n - 1) for c in range(1, n - 1)]
    order = np.array(top + bottom + left + right + inner)
    return order[:, 0], order[:, 1]


_ORDER = _perimeter_first(TILE_SIZE)
_PERIMETER = 4 * TILE_SIZE - 4


def _draws(seed: int, key: int, tile: tuple[int, int], count: int, looks: float, channels: int) -> np.ndarray:
    """float32 [32, 32, channels] raw draws of ``tile`` (NaN beyond the first ``count`` pixels)."""
    n = TILE_SIZE
    # keys must be non-negative: tiles are numbered from 1 here (a neighbour may be -1)
    values = stream(seed, STREAM_SPECKLE, key, tile[0] + 1, tile[1] + 1).gamma(
        looks, 1.0 / looks, size=(count, channels))
    out = np.full((n, n, channels), np.nan, np.float32)
    out[_ORDER[0][:count], _ORDER[1][:count]] = values
    return out


def tile_speckle(seed: int, tile: tuple[int, int], key: int, looks: float, channels: int = 2) -> np.ndarray:
    """float32 [32, 32, channels] multiplicative speckle (mean 1) of one tile for one pass.

    ``key`` names the pass (orbit direction and number): the same key gives the same field.
    """
    n = TILE_SIZE
    shape_looks = raw_looks(looks)
    raw = np.empty((n + 2, n + 2, channels), np.float32)
    y, x = tile
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            own = dy == 0 and dx == 0
            draws = _draws(seed, key, (y + dy, x + dx), n * n if own else _PERIMETER, shape_looks, channels)
            rows = slice(n - 1, n) if dy < 0 else (slice(0, n) if dy == 0 else slice(0, 1))
            cols = slice(n - 1, n) if dx < 0 else (slice(0, n) if dx == 0 else slice(0, 1))
            r0 = 0 if dy < 0 else (1 if dy == 0 else n + 1)
            c0 = 0 if dx < 0 else (1 if dx == 0 else n + 1)
            part = draws[rows, cols]
            raw[r0:r0 + part.shape[0], c0:c0 + part.shape[1]] = part
    k = KERNEL
    rows_blurred = k[0] * raw[:-2] + k[1] * raw[1:-1] + k[2] * raw[2:]
    return (k[0] * rows_blurred[:, :-2] + k[1] * rows_blurred[:, 1:-1] + k[2] * rows_blurred[:, 2:]).astype(np.float32)
