"""The layers that show a project: reference pair, tile grid, labels mosaic (as napari layer tuples).

Used by the reader (File > Open of a project folder), the sample-data entry and the label dock, so
a project looks the same however it was opened. Each layer's metadata names the project root and
its role, which lets the label dock adopt layers that the reader created.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ercnn_napari.core.tiles import TileId, format_tile_id
from ercnn_napari.napari_plugin.layers import (
    geo_metadata,
    grid_anchor,
    mosaic_placement,
    mosaic_transform,
    tile_rectangle,
)
from ercnn_napari.napari_plugin.reference import build_reference_mosaics

LayerData = tuple[Any, dict[str, Any], str]

ROLE_KEY = "ercnn_role"
PROJECT_KEY = "ercnn_project"

#: Edge colours of tile states and face colours of split roles (RGBA).
LABELLED_EDGE = (0.22, 0.83, 0.33, 1.0)
UNLABELLED_EDGE = (0.62, 0.62, 0.62, 0.8)
ROLE_FACE = {
    "train": (0.12, 0.47, 0.71, 0.28),
    "val": (1.0, 0.50, 0.05, 0.32),
    "test": (0.58, 0.40, 0.74, 0.32),
    "": (0.0, 0.0, 0.0, 0.0),
}
#: Above this many tiles only the tiles with something to show are drawn (napari shapes get slow).
MAX_GRID_SHAPES = 2500


def layer_metadata(project: Any, role: str, **extra: Any) -> dict[str, Any]:
    grid = project.grid
    meta = geo_metadata(grid.crs, grid.transform, project.root, **extra)
    meta.update({ROLE_KEY: role, PROJECT_KEY: str(project.root)})
    return meta


def reference_layer_data(project: Any) -> tuple[list[LayerData], list[str]]:
    """The before and after mosaics as RGBA image layers (none if the project has no images)."""
    # cached imagery (``ercnn-napari reference``) wins: multiscale COGs instead of per-tile PNGs
    from ercnn_napari.napari_plugin.reference_cog import cached_reference_layer_data

    cached = cached_reference_layer_data(project)
    if cached:
        return cached, []
    mosaics = build_reference_mosaics(project)
    if mosaics is None:
        return [], []
    placement = mosaic_placement(project.grid, mosaics.origin, mosaics.factor)
    layers: list[LayerData] = []
    for which, data in (("before", mosaics.before), ("after", mosaics.after)):
        years = mosaics.years_text(which)
        name = f"{which} {years}".strip()
        meta = layer_metadata(project, which, years=years, factor=mosaics.factor,
                              mosaic_origin=list(mosaics.origin))
        # RGBA uint8: fixed limits spare napari a pass over ~20 M values to find the data's range
        layers.append((data, {"name": name, "rgb": True, "metadata": meta, "visible": which == "after",
                              "contrast_limits": (0, 255), **placement}, "image"))
    return layers, mosaics.problems


def split_roles(split: Any | None) -> dict[TileId, str]:
    """tile -> "train"/"val"/"test" for one split version (tiles in none are absent)."""
    roles: dict[TileId, str] = {}
    if split is None:
        return roles
    for role in ("train", "val", "test"):
        for tile in getattr(split, role):
            roles[tuple(tile)] = role
    return roles


def grid_tiles_to_draw(project: Any, extra: Iterable[TileId] = ()) -> list[TileId]:
    """All tiles of a small grid; on a big grid only those with labels, images, observations or a split role."""
    grid = project.grid
    if grid.rows * grid.cols <= MAX_GRID_SHAPES:
        return list(grid.tiles())
    keep = set(project.tiles_with_labels()) | set(project.tiles_with_reference())
    keep |= set(project.tiles_with_observations()) | set(extra)
    for split in project.splits().values():
        keep |= set(split.train) | set(split.val) | set(split.test)
    return sorted(t for t in keep if grid.contains(t))


def tile_styles(tiles: list[TileId], labelled: set[TileId], roles: dict[TileId, str]) -> dict[str, Any]:
    """Edge/face colours and features of the tile rectangles for the current states."""
    edge = np.array([LABELLED_EDGE if t in labelled else UNLABELLED_EDGE for t in tiles], dtype=float)
    face = np.array([ROLE_FACE[roles.get(t, "")] for t in tiles], dtype=float)
    features = {
        "tile": [format_tile_id(t) for t in tiles],
        "labelled": [t in labelled for t in tiles],
        "role": [roles.get(t, "") for t in tiles],
    }
    return {"edge_color": edge.reshape(-1, 4), "face_color": face.reshape(-1, 4), "features": features}


def grid_layer_data(project: Any, labelled: set[TileId], roles: dict[TileId, str]) -> LayerData:
    """The tile grid as rectangles named ``y:x``, coloured by label state and split role."""
    tiles = grid_tiles_to_draw(project)
    rects = [tile_rectangle(project.grid, t) for t in tiles]
    kwargs = {
        "name": "tiles",
        "shape_type": "rectangle",
        "edge_width": 2.0 * project.grid.pixel_width / 10.0,
        "text": {"string": "{tile}", "size": 8, "color": "white", "anchor": "upper_left"},
        "metadata": layer_metadata(project, "tiles", tiles=[format_tile_id(t) for t in tiles]),
        **tile_styles(tiles, labelled, roles),
    }
    return rects, kwargs, "shapes"


def labels_layer_data(project: Any, mosaic: np.ndarray) -> LayerData:
    """The labels mosaic of the whole grid (10 m pixels), placed over the reference images."""
    grid = project.grid
    kwargs = {
        "name": f"labels {project.site}",
        "opacity": 0.65,
        "colormap": label_colormap(),
        "metadata": layer_metadata(project, "labels"),
        **mosaic_placement(grid, (0, 0)),
    }
    return mosaic, kwargs, "labels"


def label_colormap() -> Any:
    """Change in magenta (red is taken by the predictions), unsure (2) in cyan; any other value in yellow."""
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={None: (1.0, 0.9, 0.0, 1.0), 0: (0.0, 0.0, 0.0, 0.0),
                                           1: (1.0, 0.0, 1.0, 1.0), 2: (0.0, 0.85, 1.0, 1.0)})


def project_layer_data(project: Any) -> list[LayerData]:
    """Everything the viewer shows of a project, bottom to top (reader and sample data)."""
    from ercnn_napari.napari_plugin.label_session import LabelSession

    session = LabelSession(project)
    splits = project.splits()
    first = splits[sorted(splits)[0]] if splits else None
    references, _problems = reference_layer_data(project)
    return [*references, grid_layer_data(project, session.labelled, split_roles(first)),
            labels_layer_data(project, session.mosaic)]


def project_anchor(project: Any) -> tuple[float, float]:
    return grid_anchor(project.grid)


def labels_transform(project: Any) -> Any:
    return mosaic_transform(project.grid, (0, 0))
