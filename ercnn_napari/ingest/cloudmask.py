"""The S2 validity mask as the authors had it: valid = dataMask AND CLM != 1.

Sentinel Hub's CLM is ``s2cloudless`` run at 160 m (0 clear, 1 cloud, 255 no data); the authors
merged it with ``dataMask`` and nothing else (no dilation of their own, no shadow mask,
ercnn_facts §8.1). A source that delivers CLM uses :func:`merge_clm`. A source without a mask (raw
L1C files, an L1C STAC item) gets the same kind of mask computed locally by :func:`s2cloudless_valid`:
the ten L1C bands s2cloudless was trained on are averaged down to 160 m, classified there, and the
mask is upsampled (nearest) back to the grid, so a cloud is flagged at CLM's coarse granularity
rather than at 10 m (which would be a different, sharper mask than the network saw).

Needs the ``cloudmask`` extra (``s2cloudless``, which brings LightGBM and its model).
"""

from __future__ import annotations

import math

import numpy as np
from affine import Affine

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ingest.scene import S2_BANDS, TargetGrid

#: Sentinel Hub computes CLM at 160 m.
CLM_RESOLUTION_M = 160.0
#: s2cloudless' default probability threshold (also the one CLM uses).
THRESHOLD = 0.4
#: Smoothing and dilation at 160 m pixels (s2cloudless' parameters are in pixels of the input).
AVERAGE_OVER = 4
DILATION_SIZE = 2
#: CLM's codes.
CLM_CLOUD = 1
CLM_NO_DATA = 255


def merge_clm(data_mask: np.ndarray, clm: np.ndarray) -> np.ndarray:
    """The authors' merge: a pixel is valid where ``dataMask`` is set and CLM is not "cloud".

    CLM's 255 (no data) is not 1, so only ``data_mask`` removes those pixels, exactly as the
    authors' expression did."""
    return np.asarray(data_mask).astype(bool) & (np.asarray(clm) != CLM_CLOUD)


def pixel_size_m(grid: TargetGrid) -> tuple[float, float]:
    """Ground size of a grid pixel in metres (degrees converted at the grid's centre latitude)."""
    from rasterio.crs import CRS

    crs = CRS.from_user_input(grid.crs)
    width, height = abs(grid.transform.a), abs(grid.transform.e)
    if crs.is_geographic:
        _, lat = grid.transform @ (grid.width / 2, grid.height / 2)
        metres_per_degree = 111_320.0
        return width * metres_per_degree * math.cos(math.radians(lat)), height * metres_per_degree
    factor = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
    return width * factor, height * factor


def coarse_grid(grid: TargetGrid, resolution_m: float = CLM_RESOLUTION_M) -> TargetGrid:
    """The grid over the same extent with pixels of ``resolution_m`` (at least one pixel)."""
    size_x, size_y = pixel_size_m(grid)
    fx, fy = resolution_m / size_x, resolution_m / size_y
    width = max(1, math.ceil(grid.width / fx))
    height = max(1, math.ceil(grid.height / fy))
    transform = grid.transform @ Affine.scale(fx, fy)
    return TargetGrid(grid.crs, transform, height, width)


def cloud_probability(reflectance: np.ndarray, grid: TargetGrid,
                      resolution_m: float = CLM_RESOLUTION_M) -> tuple[np.ndarray, TargetGrid]:
    """s2cloudless' cloud probability of a scene at ``resolution_m``, and the coarse grid it is on.

    ``reflectance`` is L1C TOA reflectance [H, W, 13] in :data:`S2_BANDS` order on ``grid``.
    """
    probabilities, _, coarse = _classify(reflectance, grid, resolution_m)
    return probabilities, coarse


def s2cloudless_valid(reflectance: np.ndarray, grid: TargetGrid, resolution_m: float = CLM_RESOLUTION_M,
                      threshold: float = THRESHOLD) -> np.ndarray:
    """True where s2cloudless at ``resolution_m`` sees no cloud, on ``grid`` (bool [H, W])."""
    from rasterio.warp import Resampling, reproject

    _, clouds, coarse = _classify(reflectance, grid, resolution_m, threshold)
    fine = np.zeros((grid.height, grid.width), np.uint8)
    reproject(clouds.astype(np.uint8), fine, src_transform=coarse.transform, src_crs=coarse.crs,
              dst_transform=grid.transform, dst_crs=grid.crs, resampling=Resampling.nearest)
    return fine == 0


def _classify(reflectance: np.ndarray, grid: TargetGrid, resolution_m: float,
              threshold: float = THRESHOLD) -> tuple[np.ndarray, np.ndarray, TargetGrid]:
    from rasterio.warp import Resampling, reproject

    if reflectance.ndim != 3 or reflectance.shape[-1] != len(S2_BANDS):
        raise InputDataError(f"s2cloudless needs the 13 L1C bands {','.join(S2_BANDS)}, "
                             f"got an array of shape {reflectance.shape}")
    try:
        from s2cloudless import S2PixelCloudDetector
    except ImportError as exc:
        raise InputDataError("the local S2 cloud mask needs s2cloudless: pip install 'ercnn-napari[cloudmask]'") from exc
    coarse = coarse_grid(grid, resolution_m)
    bands = np.moveaxis(reflectance.astype(np.float32), -1, 0)
    small = np.zeros((len(S2_BANDS), coarse.height, coarse.width), np.float32)
    # average, as a 160 m detector pixel integrates its 10 m pixels
    reproject(bands, small, src_transform=grid.transform, src_crs=grid.crs, dst_transform=coarse.transform,
              dst_crs=coarse.crs, resampling=Resampling.average)
    detector = S2PixelCloudDetector(threshold=threshold, all_bands=True, average_over=AVERAGE_OVER,
                                    dilation_size=DILATION_SIZE)
    stack = np.moveaxis(small, 0, -1)[None, ...]
    probabilities = detector.get_cloud_probability_maps(stack)[0]
    clouds = detector.get_mask_from_prob(probabilities[None, ...])[0].astype(bool)
    return probabilities, clouds, coarse
