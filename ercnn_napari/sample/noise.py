"""Smooth random fields: the raw material of land-cover zoning, textures and clouds.

Real landscapes and cloud decks are spatially coherent at many scales. A sum of a few octaves of
random lattices, each smoothly (cubic) interpolated to the target grid, gives that coherence at a
cost proportional to the output size, so the whole 1 m AoI can be textured in well under a second.
"""

from __future__ import annotations

import numpy as np


def smooth_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    cell: float,
    octaves: int = 3,
    persistence: float = 0.5,
) -> np.ndarray:
    """A zero-mean, unit-variance field of ``shape`` whose coarsest features are ``cell`` pixels wide.

    Each octave halves the feature size and multiplies the amplitude by ``persistence``. The
    result is normalised so that thresholds (e.g. a cloud cover fraction) mean the same thing at
    any size.
    """
    out = np.zeros(shape, dtype=np.float64)
    amp = 1.0
    for octave in range(octaves):
        size = max(cell / (2**octave), 1.0)
        out += amp * lattice_field(rng, shape, size)
        amp *= persistence
    out -= out.mean()
    std = out.std()
    return out / std if std > 0 else out


def lattice_field(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Gaussian values on a lattice of spacing ``cell`` pixels, cubic-interpolated onto ``shape``."""
    rows, cols = shape
    lat_rows = int(np.ceil(rows / cell)) + 4
    lat_cols = int(np.ceil(cols / cell)) + 4
    lattice = rng.standard_normal((lat_rows, lat_cols))
    return sample_lattice(lattice, np.arange(rows) / cell + 1.5, np.arange(cols) / cell + 1.5)


def sample_lattice(lattice: np.ndarray, row_pos: np.ndarray, col_pos: np.ndarray) -> np.ndarray:
    """Cubic B-spline blend of ``lattice`` at the outer product of fractional positions.

    Separable, so it is two small matrix products (over the lattice cells the positions touch)
    instead of a per-pixel interpolation. Positions must keep two cells away from the edges.
    """
    r_lo, r_w = bspline_weights(row_pos)
    c_lo, c_w = bspline_weights(col_pos)
    part = lattice[r_lo:r_lo + r_w.shape[1], c_lo:c_lo + c_w.shape[1]]
    return r_w @ part @ c_w.T


def bspline_weights(positions: np.ndarray) -> tuple[int, np.ndarray]:
    """(first lattice index, [len(positions), n] weights) of the cubic B-spline kernel."""
    positions = np.asarray(positions, np.float64)
    base = np.floor(positions).astype(np.int64)
    t = positions - base
    taps = np.stack([(1 - t) ** 3 / 6, (3 * t**3 - 6 * t**2 + 4) / 6, (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6,
                     t**3 / 6], axis=1)
    lo = int(base.min()) - 1
    weights = np.zeros((positions.size, int(base.max()) + 3 - lo))
    rows = np.arange(positions.size)
    for k in range(4):
        weights[rows, base - 1 + k - lo] += taps[:, k]
    return lo, weights


def block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Mean over non-overlapping ``factor`` x ``factor`` blocks (1 m cells -> 10 m pixels)."""
    rows, cols = array.shape[:2]
    shaped = array.reshape(rows // factor, factor, cols // factor, factor, *array.shape[2:])
    return shaped.mean(axis=(1, 3))
