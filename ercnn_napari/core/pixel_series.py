"""One pixel's observation series from a stacked (stage-2) tile file, for the pixel inspector.

The stacked series holds, at every 2-day step, the latest valid value of each stream: a cloudy or
missing pixel carries its previous value forward (the authors' stacking). So a pixel's value that
did not change at a step where the same stream changed elsewhere in the tile means "this pixel
was masked (cloud) at an acquisition"; a step where the stream changed nowhere had no acquisition
of that stream. Those flags are derived here, and S1 is converted to dB and NDVI computed for
display only (the model reads linear power and reflectance). TensorFlow-free (see tfrecord_lite).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.tfrecord_lite import read_tensors

S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
STREAMS = ("S1_ascending", "S1_descending", "S2")


@dataclass
class StreamSeries:
    """One stream at one pixel: values at every stacked step and what each step was."""

    values: np.ndarray     # float32 [N, C] as stored (carried forward where masked)
    acquired: np.ndarray   # bool [N]: the stream changed somewhere in the tile at this step
    fresh: np.ndarray      # bool [N]: the pixel itself got a new value at this step

    @property
    def masked(self) -> np.ndarray:
        """Acquisitions at which this pixel kept its old value (cloud or no-data mask)."""
        return self.acquired & ~self.fresh


@dataclass
class PixelSeries:
    """The series of one pixel of one tile over the whole period."""

    path: Path
    row: int
    col: int
    timestamps: np.ndarray   # float64 [N] UNIX s
    streams: dict[str, StreamSeries]

    def s1_db(self, stream: str) -> np.ndarray:
        """[N, 2] VV, VH backscatter in dB (display only; 0 = nothing observed yet -> NaN)."""
        values = self.streams[stream].values.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            db = 10.0 * np.log10(values)
        db[values <= 0] = np.nan
        return db

    def s2_band(self, name: str) -> np.ndarray:
        values = self.streams["S2"].values[:, S2_BANDS.index(name)].astype(np.float64)
        return np.where(self.streams["S2"].acquired.cumsum() > 0, values, np.nan)

    def ndvi(self) -> np.ndarray:
        red, nir = self.s2_band("B04"), self.s2_band("B08")
        with np.errstate(divide="ignore", invalid="ignore"):
            return (nir - red) / (nir + red)


def read_pixel_series(path: str | os.PathLike, row: int, col: int) -> PixelSeries:
    """Read the stacked file of a tile and keep pixel (row, col); raises InputDataError on bad files."""
    path = Path(path)
    stamps: list[float] = []
    pixel: dict[str, list[np.ndarray]] = {s: [] for s in STREAMS}
    tile_changed: dict[str, list[bool]] = {s: [] for s in STREAMS}
    previous: dict[str, np.ndarray | None] = {s: None for s in STREAMS}
    for index, record in enumerate(read_tensors(path, ("Timestamp", *STREAMS))):
        missing = [k for k in ("Timestamp", *STREAMS) if k not in record]
        if missing:
            raise InputDataError(f"record {index}: lacks {', '.join(missing)}; the pixel series needs the stacked "
                                 "(stage-2) observations", path)
        stamps.append(float(np.asarray(record["Timestamp"]).reshape(-1)[0]))
        for stream in STREAMS:
            tensor = record[stream]
            if tensor.ndim != 3 or not (0 <= row < tensor.shape[0] and 0 <= col < tensor.shape[1]):
                raise InputDataError(f"record {index}: {stream} has shape {tensor.shape}, no pixel ({row}, {col})",
                                     path)
            pixel[stream].append(tensor[row, col].astype(np.float32))
            before = previous[stream]
            tile_changed[stream].append(bool(np.any(tensor != 0)) if before is None
                                        else bool(np.any(tensor != before)))
            previous[stream] = tensor
    if not stamps:
        raise InputDataError("holds no records", path)
    streams = {}
    for stream in STREAMS:
        values = np.stack(pixel[stream])
        changed = np.ones(len(values), bool)
        changed[1:] = np.any(values[1:] != values[:-1], axis=1)
        changed[0] = bool(np.any(values[0] != 0))
        streams[stream] = StreamSeries(values, np.array(tile_changed[stream]), changed)
    return PixelSeries(path, row, col, np.array(stamps, np.float64), streams)
