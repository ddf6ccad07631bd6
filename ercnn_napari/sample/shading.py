"""Shadows cast by buildings and trees on the 1 m raster.

Used twice: the reference images draw them, and the Sentinel-2 pixels of dense blocks get darker
for them (a 10 m pixel next to a tall building is partly in shade, which is why built-up areas
look darker and more varied in real imagery than their roof spectra alone suggest).
"""

from __future__ import annotations

import numpy as np

#: Sun of the reference imagery and of the shadow term of the S2 signal: south-south-east.
SUN_AZIMUTH_DEG = 160.0
SUN_ELEVATION_DEG = 40.0


def cast_shadow(height: np.ndarray, azimuth_deg: float = SUN_AZIMUTH_DEG,
                elevation_deg: float = SUN_ELEVATION_DEG) -> np.ndarray:
    """bool mask of cells in shadow of a taller neighbour (the casters themselves excluded).

    Marches away from the sun one metre at a time: a cell is shaded if some cell ``k`` metres
    toward the sun stands higher than ``k * tan(elevation)``.
    """
    rows, cols = height.shape
    az = np.radians(azimuth_deg)
    # direction toward the sun in raster steps (rows grow southward, columns eastward)
    d_row, d_col = -np.cos(az), np.sin(az)
    slope = np.tan(np.radians(elevation_deg))
    reach = int(np.ceil(float(height.max(initial=0.0)) / slope)) if height.size else 0
    shade = np.zeros(height.shape, bool)
    for k in range(1, reach + 1):
        dr, dc = int(round(d_row * k)), int(round(d_col * k))
        src = np.zeros_like(height)
        r_dst = slice(max(0, -dr), min(rows, rows - dr))
        c_dst = slice(max(0, -dc), min(cols, cols - dc))
        r_src = slice(max(0, dr), min(rows, rows + dr))
        c_src = slice(max(0, dc), min(cols, cols + dc))
        src[r_dst, c_dst] = height[r_src, c_src]
        shade |= src > (height + k * slope)
    return shade
