"""A side-by-side picture of a tile's reference pair with its label outline (for docs and checks).

Shows what the analyst sees when labelling: the before image, the after image, and the change
polygons drawn on both, so one glance tells whether the rendered change and the label agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ercnn_napari.core.polygons import read_polygons
from ercnn_napari.core.project import Project
from ercnn_napari.core.tiles import TileId

GAP = 8
OUTLINE = (255, 230, 0)


def reference_pair_figure(project: Project, tile: TileId) -> np.ndarray:
    """uint8 [H, 2W + GAP, 3]: before | after, each with the tile's label polygons outlined."""
    pair = project.reference_pair(tile)
    if pair.before is None or pair.after is None:
        raise ValueError(f"tile {tile} has no complete reference pair")
    images = [Image.open(p).convert("RGB") for p in (pair.before, pair.after)]
    outlines = _outlines_in_pixels(project, tile, images[0].size)
    for image in images:
        draw = ImageDraw.Draw(image)
        for ring in outlines:
            draw.line(ring + ring[:1], fill=OUTLINE, width=2)
    width, height = images[0].size
    canvas = Image.new("RGB", (2 * width + GAP, height), (255, 255, 255))
    canvas.paste(images[0], (0, 0))
    canvas.paste(images[1], (width + GAP, 0))
    return np.asarray(canvas)


def _outlines_in_pixels(project: Project, tile: TileId, size: tuple[int, int]) -> list[list[tuple[float, float]]]:
    path = project.polygon_path(tile)
    if not Path(path).is_file():
        return []
    left, bottom, right, top = project.grid.tile_bounds(tile)
    sx, sy = size[0] / (right - left), size[1] / (top - bottom)
    rings = []
    for geometry in read_polygons(path, crs=project.grid.crs).geometries:
        for poly in getattr(geometry, "geoms", [geometry]):
            rings.append([((x - left) * sx, (top - y) * sy) for x, y in poly.exterior.coords[:-1]])
    return rings
