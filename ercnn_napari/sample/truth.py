"""What really changed: the answer key, and the analyst-style labels and polygons.

Two different truths on purpose. The answer key is exact: a 10 m pixel counts as changed when at
least ``CHANGED_AREA_FRACTION`` of it changed land cover (or height) at any time in the period.
The labels imitate the authors' manual labels: a person outlines each changed site as a polygon
from the reference images (a few metres off), and a pixel is labelled when its centre falls
inside a polygon. Evaluating against the answer key shows how much label noise costs.
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio import features
from shapely.geometry import Polygon, box

from ercnn_napari.core.constants import PIXEL_SIZE_M, TILE_SIZE
from ercnn_napari.sample.landcover import Scene
from ercnn_napari.sample.noise import block_mean
from ercnn_napari.sample.scene import tile_bounds_fine
from ercnn_napari.sample.site import FINE_M, FINE_PER_PIXEL, SampleSpec

#: Share of a 10 m pixel's area that must change for the answer key to call it changed.
CHANGED_AREA_FRACTION = 0.2
#: How far (m) an analyst's polygon corner may be off the true site corner.
OUTLINE_JITTER_M = 2.5


def changed_cells(scene: Scene, spec: SampleSpec, tile: tuple[int, int]) -> np.ndarray:
    """bool [320, 320]: 1 m cells of a tile whose land cover or height changed in the period."""
    bounds = tile_bounds_fine(tile)
    dates = [d for d in scene.change_dates(bounds) if spec.start_seconds <= d <= spec.end_seconds]
    previous = scene.state_at(spec.start_seconds, bounds)
    changed = np.zeros(previous.shape, bool)
    for when in dates:
        state = scene.state_at(when, bounds)
        changed |= (state.cover != previous.cover) | (np.abs(state.height - previous.height) > 2.0)
        previous = state
    return changed


def answer_key(scene: Scene, spec: SampleSpec, tile: tuple[int, int]) -> np.ndarray:
    """uint8 [32, 32]: 1 where a pixel changed by at least ``CHANGED_AREA_FRACTION`` of its area."""
    fraction = block_mean(changed_cells(scene, spec, tile).astype(np.float32), FINE_PER_PIXEL)
    return (fraction >= CHANGED_AREA_FRACTION).astype(np.uint8)


def label_polygons(scene: Scene, spec: SampleSpec, rng: np.random.Generator) -> dict[int, Polygon]:
    """Analyst outlines (CRS coordinates) of every event that starts inside the period, by event id."""
    outlines: dict[int, Polygon] = {}
    for ev in scene.events:
        if not spec.start_seconds <= ev.start <= spec.end_seconds:
            continue
        r0, c0, r1, c1 = ev.site
        corners = [(c0, r0), (c1, r0), (c1, r1), (c0, r1)]
        jitter = rng.uniform(-OUTLINE_JITTER_M, OUTLINE_JITTER_M, size=(4, 2)) / FINE_M
        points = [spec.fine_to_xy(r + dr, c + dc) for (c, r), (dc, dr) in zip(corners, jitter, strict=True)]
        outlines[ev.event_id] = Polygon(points)
    return outlines


def tile_box(spec: SampleSpec, tile: tuple[int, int]):
    """Shapely box of a tile in CRS coordinates."""
    y, x = tile
    size = TILE_SIZE * PIXEL_SIZE_M
    left, top = spec.origin_x + x * size, spec.origin_y - y * size
    return box(left, top - size, left + size, top)


def tile_polygons(outlines: dict[int, Polygon], spec: SampleSpec, tile: tuple[int, int]) -> list[Polygon]:
    """The outlines clipped to one tile (only non-empty polygonal parts)."""
    frame = tile_box(spec, tile)
    parts: list[Polygon] = []
    for poly in outlines.values():
        if not poly.intersects(frame):
            continue
        clipped = poly.intersection(frame)
        geoms = getattr(clipped, "geoms", [clipped])
        parts += [g for g in geoms if isinstance(g, Polygon) and g.area > 1.0]
    return parts


def rasterize_label(polygons: list[Polygon], spec: SampleSpec, tile: tuple[int, int]) -> np.ndarray:
    """uint8 [32, 32]: 1 where a pixel centre lies inside one of the polygons."""
    frame = tile_box(spec, tile)
    transform = Affine(PIXEL_SIZE_M, 0, frame.bounds[0], 0, -PIXEL_SIZE_M, frame.bounds[3])
    if not polygons:
        return np.zeros((TILE_SIZE, TILE_SIZE), np.uint8)
    return features.rasterize(((p, 1) for p in polygons), out_shape=(TILE_SIZE, TILE_SIZE),
                              transform=transform, fill=0, dtype="uint8")
