"""Export actions of the review dock: the shown prediction as GeoTIFFs and as an animation.

Kept apart from the dock so the dock stays about widgets; the file formats live in :mod:`.export`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari.utils.notifications import show_error, show_info

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.napari_plugin.prediction_layers import MAX_ROLE, ROLE_KEY


def export_geotiffs(viewer: Any, layer: Any, folder: Path) -> list[Path]:
    """Write the current prediction's window stack and max map as GeoTIFFs into ``folder``."""
    from ercnn_napari.napari_plugin.export import write_max_map, write_window_stack
    from ercnn_napari.napari_plugin.layers import transform_from_metadata
    from ercnn_napari.napari_plugin.prediction_layers import windows_of

    meta = layer.metadata
    windows = windows_of(layer)
    transform = transform_from_metadata(meta)
    stem = _safe(meta.get("model_name", layer.name))
    try:
        stack_path = write_window_stack(folder / f"{stem}_windows.tif", layer.data, windows, meta["crs"], transform)
        max_layer = next((lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY) == MAX_ROLE
                          and lay.metadata.get("folder") == meta.get("folder")), None)
        max_data = max_layer.data if max_layer is not None else layer.data.max(axis=0)
        max_path = write_max_map(folder / f"{stem}_max_change.tif", max_data, windows, meta["crs"], transform)
    except ErcnnError as exc:
        show_error(str(exc))
        return []
    show_info(f"exported {stack_path.name} and {max_path.name} to {folder}")
    return [stack_path, max_path]


def export_animation(viewer: Any, layer: Any, path: Path, threshold: float, fps: float = 8.0) -> Path | None:
    """Write the moving-window animation (red change over the after image) as GIF or MP4."""
    from ercnn_napari.napari_plugin.export import animation_frames, write_animation
    from ercnn_napari.napari_plugin.prediction_layers import windows_of

    background = background_for(viewer, layer)
    frames = animation_frames(layer.data, windows_of(layer), threshold, background)
    try:
        written = write_animation(path, frames, fps)
    except ErcnnError as exc:
        show_error(str(exc))
        return None
    show_info(f"animation written: {written}")
    return written


def background_for(viewer: Any, layer: Any) -> Any:
    """The after reference image cropped to the prediction's tiles (None if there is none)."""
    after = next((lay for lay in viewer.layers if lay.metadata.get("ercnn_role") == "after"), None)
    if after is None:
        return None
    factor = int(after.metadata.get("factor", 1))
    ref_origin = after.metadata.get("mosaic_origin", [0, 0])
    origin = layer.metadata["mosaic_origin"]
    ts = int(layer.metadata.get("tile_size", 32))
    _, height, width = layer.data.shape
    y0 = (origin[0] - ref_origin[0]) * ts * factor
    x0 = (origin[1] - ref_origin[1]) * ts * factor
    if y0 < 0 or x0 < 0:
        return None
    crop = after.data[y0:y0 + height * factor, x0:x0 + width * factor]
    return crop if crop.shape[0] == height * factor and crop.shape[1] == width * factor else None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_") or "prediction"
