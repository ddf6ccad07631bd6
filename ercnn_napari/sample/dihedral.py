"""The wall-ground double bounce of buildings: the bright, heavy-tailed part of urban backscatter.

Why this exists: the published network's SAR block normalises its first convolution by batch-norm
statistics learnt on real Liège data, and their variances (5.7-92 per filter) are about a
thousand times what a sample made of area-weighted cover levels gives (0.01-0.03). In linear
power only a heavy tail produces that: a few pixels in tens to hundreds, the dihedral returns of
walls that face the radar. Without it the network's SAR path sees a flat signal and a new building
is invisible to it.

The model: Sentinel-1 looks to the right of its track, so an ascending pass (flying north) sees the
walls that face west and a descending pass those that face east. Where a building's 1 m cell
has open ground on the sensor side, its wall and the ground form a dihedral. Its strength grows
with the wall's length and height and falls steeply with the wall's angle to the track (the
"cardinal effect"): aligned walls return +20 dB and more, oblique ones little more than the roof.
Each 10 m pixel gets the metres of sensor-facing wall it contains (per orbit direction), and a
static per-pixel misalignment draws how much of the peak it keeps. The double bounce is a
co-polarised mechanism: VH gets it ``CROSS_POL_DB`` weaker.
"""

from __future__ import annotations

import numpy as np

from ercnn_napari.sample.landcover import Cover, LandCover
from ercnn_napari.sample.site import FINE_PER_PIXEL

#: Gamma-nought of a 10 m pixel holding 10 m of wall, 6 m high, aligned with the track (dB).
PEAK_DB = 24.0
#: Loss per degree between the wall and the track (the cardinal effect; within a few degrees
#: of alignment the return drops by an order of magnitude).
FALLOFF_DB_PER_DEG = 1.2
#: Largest misalignment drawn (degrees); beyond ~20 degrees the dihedral is no brighter than a roof.
MAX_MISALIGNMENT_DEG = 30.0
#: VH relative to VV for a dihedral.
CROSS_POL_DB = -13.0
#: Wall height at which the gain is the peak; lower walls return less, taller ones more (up to 2x).
REFERENCE_HEIGHT_M = 6.0


def facing_walls(state: LandCover, inner: tuple[slice, slice]) -> np.ndarray:
    """float32 [32, 32, 2]: height-weighted metres of wall per 10 m pixel / 10, facing (west, east).

    ``state`` covers the tile with a margin (so walls on the tile's border see their neighbour
    cells and tiles agree at their borders); ``inner`` cuts the tile out of it.
    """
    building = state.cover == Cover.BUILDING
    height = np.clip(state.height / REFERENCE_HEIGHT_M, 0.0, 2.0) * building
    west = np.zeros(building.shape, np.float32)      # building cell with open ground to its west
    east = np.zeros(building.shape, np.float32)
    west[:, 1:] = height[:, 1:] * ~building[:, :-1]
    east[:, :-1] = height[:, :-1] * ~building[:, 1:]
    out = []
    for face in (west, east):
        tile = face[inner]
        n = tile.shape[0] // FINE_PER_PIXEL
        out.append(tile.reshape(n, FINE_PER_PIXEL, n, FINE_PER_PIXEL).sum(axis=(1, 3)) / FINE_PER_PIXEL)
    return np.stack(out, axis=-1).astype(np.float32)


def static_gain(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """float32 [H, W, 2]: linear (VV, VH) gamma-nought per unit of facing wall, one draw per pixel.

    Static from pass to pass: a wall's angle to the track does not change.
    """
    misalignment = rng.uniform(0.0, MAX_MISALIGNMENT_DEG, size=(*shape, 1))
    vv_db = PEAK_DB - FALLOFF_DB_PER_DEG * misalignment
    return (10.0 ** (np.concatenate([vv_db, vv_db + CROSS_POL_DB], axis=-1) / 10.0)).astype(np.float32)
