"""What one acquisition looks like over the whole AoI: haze, calibration gain, cloud tops, wind.

A satellite sees the whole AoI in one pass, so everything that belongs to the pass rather than to
the ground is one field over the AoI, never one draw per tile: a per-tile haze or gain puts a step
at every tile border that the network (which sees a tile with its neighbours' context) reads as
an edge -- the sample's former tile seams. Each acquisition gets its own random stream
(``STREAM_ATMOSPHERE`` keyed by the acquisition), and the spatial haze is a smooth lattice field
like the clouds' (``clouds.py``), so any tile can be evaluated on its own, in any worker, in any
order, and still agree with its neighbours at the border; nothing AoI-sized is held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ercnn_napari.core.constants import PIXEL_SIZE_M
from ercnn_napari.sample.noise import sample_lattice
from ercnn_napari.sample.scene import STREAM_ATMOSPHERE, stream

#: Lattice spacing (m) of the haze field: aerosol plumes kilometres wide.
HAZE_CELL_M = 2500.0
#: Spread of the haze within the AoI relative to its mean level.
HAZE_SPATIAL_SD = 0.25
#: Keys of the per-acquisition streams (do not reuse: it would change the sample).
KEY_S2, KEY_S1_ASC, KEY_S1_DESC = 1, 2, 3


@dataclass(frozen=True)
class S2Pass:
    """The AoI-wide atmosphere and radiometry of one Sentinel-2 acquisition."""

    haze: float                 # mean aerosol level (units of ``spectra.HAZE_S2``)
    haze_lattice: np.ndarray    # smooth spatial variation of the haze
    gain: float                 # radiometric gain of this acquisition
    cloud_brightness: float     # cloud-top brightness relative to ``spectra.CLOUD_S2``


def s2_pass(seed: int, acquisition: int, aoi_pixels: int) -> S2Pass:
    """Pass number ``acquisition`` (its index in the full S2 schedule) over an AoI of ``aoi_pixels``."""
    rng = stream(seed, STREAM_ATMOSPHERE, KEY_S2, acquisition)
    haze = float(rng.lognormal(0.0, 0.5) - 0.6)
    gain = float(1.0 + 0.02 * rng.standard_normal())
    brightness = float(0.8 + 0.3 * rng.uniform())
    cells = int(np.ceil(aoi_pixels * PIXEL_SIZE_M / HAZE_CELL_M)) + 5
    return S2Pass(haze, rng.standard_normal((cells, cells)), gain, brightness)


def haze_field(p: S2Pass, row0: int, col0: int, size: int) -> np.ndarray:
    """float32 [size, size]: the haze on the pixels of a tile whose first pixel is ``row0, col0``.

    The B-spline blend of unit white noise has a variance of about 0.22 (``clouds.BSPLINE_VARIANCE``);
    the spatial term is scaled to ``HAZE_SPATIAL_SD`` of the (absolute) mean level.
    """
    cell_px = HAZE_CELL_M / PIXEL_SIZE_M
    rows = (np.arange(row0, row0 + size) + 0.5) / cell_px + 1.5
    cols = (np.arange(col0, col0 + size) + 0.5) / cell_px + 1.5
    spatial = sample_lattice(p.haze_lattice, rows, cols) / np.sqrt(0.22)
    return (p.haze + HAZE_SPATIAL_SD * (abs(p.haze) + 0.1) * spatial).astype(np.float32)


def s1_wind(seed: int, acquisition: int, ascending: bool) -> float:
    """Wind on water (~N(0, 1)) during Sentinel-1 pass ``acquisition`` of one orbit direction."""
    rng = stream(seed, STREAM_ATMOSPHERE, KEY_S1_ASC if ascending else KEY_S1_DESC, acquisition)
    return float(rng.standard_normal())
