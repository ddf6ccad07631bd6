"""Export predictions for people and GIS: GeoTIFF stacks, the max-change map and an animation.

GeoTIFFs carry the project CRS and the mosaic's transform, one band per window with its dates in the
band description, so QGIS shows the same thing as the viewer. The animation reproduces the
authors' moving-window video: the change probabilities above a threshold in red over the reference
image, one frame per window, captioned with the window's dates. Frames are composed in numpy (no
canvas), so exports work headless and give the same result on every machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image, ImageDraw

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.errors import InputDataError
from ercnn_napari.napari_plugin.predictions import WindowInfo

NODATA = -1.0


def write_window_stack(path: str | Path, stack: np.ndarray, windows: Sequence[WindowInfo], crs: str,
                       transform: Affine) -> Path:
    """Write ``[n_windows, H, W]`` probabilities as a float32 GeoTIFF, one described band per window."""
    if stack.ndim != 3 or stack.shape[0] != len(windows):
        raise InputDataError(f"stack of shape {list(stack.shape)} does not match {len(windows)} windows", path)
    data = np.where(np.isnan(stack), NODATA, stack).astype(np.float32)
    path = Path(path)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                           count=data.shape[0], dtype="float32", crs=crs, transform=transform,
                           nodata=NODATA, compress="deflate") as dst:
            dst.write(data)
            for band, window in enumerate(windows, start=1):
                dst.set_band_description(band, window.label(band - 1))
                dst.update_tags(band, start_time=_iso(window.start_time), end_time=_iso(window.end_time),
                                mid_time=_iso(window.mid_time), observations=str(window.n_obs))
            dst.update_tags(content="ERCNN-DRS change probability per window", windows=str(len(windows)))
    return path


def write_max_map(path: str | Path, max_map: np.ndarray, windows: Sequence[WindowInfo], crs: str,
                  transform: Affine) -> Path:
    """Write the maximum change probability over all windows as a one-band float32 GeoTIFF."""
    data = np.where(np.isnan(max_map), NODATA, max_map).astype(np.float32)[None]
    path = Path(path)
    first = _iso(windows[0].start_time) if windows else ""
    last = _iso(windows[-1].end_time) if windows else ""
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=1,
                           dtype="float32", crs=crs, transform=transform, nodata=NODATA,
                           compress="deflate") as dst:
            dst.write(data)
            dst.set_band_description(1, f"maximum change probability over {len(windows)} windows, {first} - {last}")
            dst.update_tags(content="ERCNN-DRS maximum change probability over all windows",
                            first_window_start=first, last_window_end=last)
    return path


def animation_frames(stack: np.ndarray, windows: Sequence[WindowInfo], threshold: float = 0.5,
                     background: np.ndarray | None = None, min_width: int = 480,
                     window_numbers: Sequence[int] | None = None,
                     on_frame: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    """RGB uint8 frames: red where probability > threshold over the background, dated caption below.

    ``background`` is an RGB(A) image of the same extent as the stack (any resolution; it is resized),
    e.g. the after-image of the reference pair; without it a dark grey stands in. ``window_numbers``
    are the captions' window numbers when ``stack`` holds a subset (e.g. every second window) and
    the windows carry no window ID. ``on_frame(done, total)`` reports progress (exports run in a thread).
    """
    n, h, w = stack.shape
    factor = max(1, int(np.ceil(min_width / max(w, 1))))
    size = (w * factor, h * factor)
    if background is not None:
        base = np.asarray(Image.fromarray(_to_rgb8(background)).resize(size, Image.BILINEAR), dtype=np.float32)
    else:
        base = np.full((size[1], size[0], 3), 60.0, dtype=np.float32)
    caption_h = 22
    frames = []
    for i in range(n):
        probs = np.nan_to_num(stack[i], nan=0.0).repeat(factor, 0).repeat(factor, 1)
        alpha = np.where(probs > threshold, 0.35 + 0.65 * probs, 0.0)[..., None]
        rgb = base * (1 - alpha) + np.array([255.0, 0.0, 0.0]) * alpha
        canvas = Image.new("RGB", (size[0], size[1] + caption_h), (0, 0, 0))
        canvas.paste(Image.fromarray(rgb.clip(0, 255).astype(np.uint8)), (0, 0))
        number = i if window_numbers is None else int(window_numbers[i])
        ImageDraw.Draw(canvas).text((4, size[1] + 5), windows[i].label(number), fill=(255, 255, 255))
        frames.append(np.asarray(canvas))
        if on_frame is not None:
            on_frame(i + 1, n)
    return frames


def animation_formats() -> dict[str, str]:
    """The animation formats this installation can write, as {suffix: file-dialog filter}.

    MP4 needs the ffmpeg binary of ``imageio-ffmpeg`` (installed by the ``qt`` extra); without it
    only GIF is offered, rather than failing after the analyst chose MP4.
    """
    import importlib.util

    formats = {".gif": "GIF (*.gif)"}
    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        formats[".mp4"] = "MP4 (*.mp4)"
    return formats


def write_animation(path: str | Path, frames: Sequence[np.ndarray], fps: float = 8.0) -> Path:
    """Write frames as a GIF or MP4 (by the extension); MP4 needs imageio-ffmpeg."""
    import imageio.v2 as imageio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise InputDataError("animation must be .gif or .mp4", path)
    if suffix not in animation_formats():
        raise InputDataError("MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg, or the "
                             "ercnn-napari[qt] extra); GIF works without it", path)
    if not frames:
        raise InputDataError("no windows to animate", path)
    with atomic_path(path) as tmp:
        if suffix == ".gif":
            imageio.mimsave(tmp, list(frames), duration=1000.0 / fps, loop=0)
        else:
            frames = [_even(f) for f in frames]
            with imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    macro_block_size=1, pixelformat="yuv420p") as writer:
                for frame in frames:
                    writer.append_data(frame)
    return path


def _even(frame: np.ndarray) -> np.ndarray:
    """H.264 with yuv420p needs even width and height."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def _to_rgb8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    if image.dtype != np.uint8:
        finite = np.nan_to_num(image.astype(np.float32))
        top = float(finite.max()) or 1.0
        image = (finite / top * 255).clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def _iso(seconds: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(float(seconds), tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
