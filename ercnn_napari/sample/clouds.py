"""Clouds over the AoI for one Sentinel-2 acquisition: opacity, the cloud mask, and cloud shadows.

A cloud deck is one smooth random field over the whole AoI per acquisition (octaves from a few
kilometres down to ~150 m, so clouds have coherent cores and ragged edges); the day's weather
shifts its threshold, so a cloudy spell covers many consecutive acquisitions. Because the field is
defined by a small lattice, any pixel of any tile can be evaluated on its own, which lets tiles be
generated in parallel and still share the same clouds.
The mask imitates a cloud detector (thick cloud flagged, grown by a pixel); thin cloud edges and
cloud shadows are not flagged and leak into the stacked series, as they do in real data.
Parameters are calibrated against a real Sentinel-2 cloud mask series (``calibration.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ercnn_napari.core.constants import PIXEL_SIZE_M
from ercnn_napari.sample.noise import sample_lattice
from ercnn_napari.sample.scene import STREAM_CLOUDS, stream

#: Lattice spacings (m) and amplitudes of the cloud field's octaves.
OCTAVES_M = ((3000.0, 1.0), (900.0, 0.45), (250.0, 0.2), (120.0, 0.1))
#: Mean threshold and weather weight: cloudy where field < MEAN + WEIGHT * cloudiness (+ jitter).
THRESHOLD_MEAN = -0.12
THRESHOLD_WEATHER = 1.6
THRESHOLD_JITTER = 0.35
#: Field units over which a cloud goes from invisible to opaque.
EDGE_WIDTH = 0.35
#: Opacity above which the detector flags a pixel.
MASK_OPACITY = 0.25
LATITUDE_DEG = 50.6
BSPLINE_VARIANCE = 0.22
#: The lattices start this far (m) north-west of the AoI origin and reach this far past the AoI,
#: enough for the longest cloud-shadow offset (``MAX_REACH_M``) plus the spline's support.
LATTICE_BEFORE_M = 1500.0
MAX_REACH_M = 6000.0
LATTICE_AFTER_M = MAX_REACH_M + 1500.0


@dataclass(frozen=True)
class CloudLattices:
    """The random lattices of one acquisition plus its threshold and cloud height."""

    lattices: tuple[np.ndarray, ...]
    threshold: float
    cloud_height_m: float
    aoi_m: float


def cloud_lattices(seed: int, index: int, cloudiness: float, aoi_m: float) -> CloudLattices:
    """Lattices of acquisition number ``index`` (same for every tile), threshold from the weather.

    ``aoi_m`` is the AoI's larger side in metres; the lattices cover it plus the shadow reach.
    """
    rng = stream(seed, STREAM_CLOUDS, index)
    span = LATTICE_BEFORE_M + aoi_m + LATTICE_AFTER_M
    lattices = tuple(rng.standard_normal((int(span / cell) + 8,) * 2) for cell, _ in OCTAVES_M)
    threshold = THRESHOLD_MEAN + THRESHOLD_WEATHER * cloudiness + THRESHOLD_JITTER * rng.standard_normal()
    return CloudLattices(lattices, float(threshold), float(rng.uniform(800, 2500)), float(aoi_m))


def field_at(lat: CloudLattices, south_m: np.ndarray, east_m: np.ndarray) -> np.ndarray:
    """The cloud field on the grid of rows ``south_m`` x columns ``east_m`` (metres from the origin).

    B-spline blending of white noise has a variance of about 0.22 per octave; dividing by it keeps
    the field near unit variance, so the thresholds read as quantiles of a normal variable.
    """
    south_m, east_m = np.asarray(south_m, np.float64), np.asarray(east_m, np.float64)
    limit = lat.aoi_m + LATTICE_AFTER_M - 500.0
    if min(south_m.min(), east_m.min()) < 500.0 - LATTICE_BEFORE_M or max(south_m.max(), east_m.max()) > limit:
        raise ValueError(f"cloud field asked outside its lattice (AoI of {lat.aoi_m:g} m)")
    total = np.zeros((south_m.size, east_m.size))
    norm = np.sqrt(sum(a * a for _, a in OCTAVES_M) * BSPLINE_VARIANCE)
    for (cell, amp), lattice in zip(OCTAVES_M, lat.lattices, strict=True):
        rows = (south_m + LATTICE_BEFORE_M) / cell + 2.0
        cols = (east_m + LATTICE_BEFORE_M) / cell + 2.0
        total += amp * sample_lattice(lattice, rows, cols)
    return total / norm


def sun_elevation_deg(seconds: float) -> float:
    """Approximate sun elevation over Liège at the late-morning Sentinel-2 overpass."""
    day = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).timetuple().tm_yday
    declination = 23.44 * np.sin(2 * np.pi * (284 + day) / 365.0)
    return float(90.0 - LATITUDE_DEG + declination - 3.0)


def tile_clouds(lat: CloudLattices, seconds: float, row0: int, col0: int, size: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(opacity, mask, shadow) float/bool/float arrays [size, size] for pixels of a tile.

    ``row0, col0`` is the tile's first pixel on the AoI's 10 m grid. The detector's one-pixel
    growth is computed on a one-pixel margin so neighbouring tiles agree at their edges.
    """
    south = (np.arange(row0 - 1, row0 + size + 1) + 0.5) * PIXEL_SIZE_M
    east = (np.arange(col0 - 1, col0 + size + 1) + 0.5) * PIXEL_SIZE_M
    opacity = _opacity(lat, field_at(lat, south, east))
    mask = ndimage.binary_dilation(opacity > MASK_OPACITY)[1:-1, 1:-1]
    opacity = opacity[1:-1, 1:-1]
    elevation = max(sun_elevation_deg(seconds), 12.0)
    # the cloud that shades a pixel floats toward the sun (south-south-east) of it
    reach = min(lat.cloud_height_m / np.tan(np.radians(elevation)), MAX_REACH_M)
    shade = _opacity(lat, field_at(lat, south[1:-1] + 0.94 * reach, east[1:-1] + 0.34 * reach))
    return opacity.astype(np.float32), mask, shade.astype(np.float32)


def clear_anywhere(lat: CloudLattices, rows: int, cols: int) -> bool:
    """Whether the detector leaves any pixel of an AoI of ``rows`` x ``cols`` pixels unflagged.

    The authors' retrieval drops scenes without a valid pixel, so a fully cloudy acquisition has no
    record at all. Same field, threshold and one-pixel growth (a cross) as :func:`tile_clouds`.
    Every 8th pixel is tried first with its four neighbours only (a seventh of the work); the
    whole AoI is evaluated only when none of those is clear.
    """
    cross = ((1, 1), (0, 1), (2, 1), (1, 0), (1, 2))
    r, c = np.arange(4, rows, 8), np.arange(4, cols, 8)
    south = ((r[:, None] + np.arange(-1, 2)).ravel() + 0.5) * PIXEL_SIZE_M
    east = ((c[:, None] + np.arange(-1, 2)).ravel() + 0.5) * PIXEL_SIZE_M
    opaque = (_opacity(lat, field_at(lat, south, east)) > MASK_OPACITY).reshape(r.size, 3, c.size, 3)
    if not np.logical_or.reduce([opaque[:, a, :, b] for a, b in cross]).all():
        return True
    south = (np.arange(-1, rows + 1) + 0.5) * PIXEL_SIZE_M
    east = (np.arange(-1, cols + 1) + 0.5) * PIXEL_SIZE_M
    mask = ndimage.binary_dilation(_opacity(lat, field_at(lat, south, east)) > MASK_OPACITY)[1:-1, 1:-1]
    return not bool(mask.all())


def _opacity(lat: CloudLattices, field: np.ndarray) -> np.ndarray:
    return np.clip((lat.threshold - field) / EDGE_WIDTH, 0.0, 1.0) ** 0.8
