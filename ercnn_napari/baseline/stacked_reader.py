"""A whole stage-2 (stacked) file as numpy arrays, without TensorFlow.

Why: the index baseline is plain numpy and must run where TensorFlow may not be loaded (the
napari process never imports it; a baseline should not pay seconds and a gigabyte for an import).
The record decoding is :mod:`ercnn_napari.core.tfrecord_lite`'s (shared with the pixel inspector);
this module only checks the stage-2 schema and stacks the three streams into the 17 channels of the
network input. ``ml.tfrecords.read_stacked`` remains the checked reader of training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.tfrecord_lite import read_tensors

#: The stage-2 features and their channel counts, in the channel order of the network input.
STREAMS = (("S1_ascending", 2), ("S1_descending", 2), ("S2", 13))
_KEYS = ("Timestamp", *(name for name, _ in STREAMS))


def read_stacked_numpy(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(timestamps float64 [N], observations float32 [N, H, W, 17])`` of a stage-2 file."""
    path = Path(path)
    stamps, steps = [], []
    for index, record in enumerate(read_tensors(path, _KEYS)):
        missing = [key for key in _KEYS if key not in record]
        if missing:
            raise InputDataError(f"record {index}: not a stage-2 record (missing features {missing})", path)
        parts = []
        for key, channels in STREAMS:
            part = record[key]
            if part.ndim != 3 or part.shape[-1] != channels:
                raise InputDataError(f"record {index}: {key} has shape {part.shape}, expected [H, W, {channels}]",
                                     path)
            parts.append(part.astype(np.float32))
        stamps.append(float(np.asarray(record["Timestamp"]).reshape(-1)[0]))
        steps.append(np.concatenate(parts, axis=-1))
    if not steps:
        raise InputDataError("holds no records", path)
    return np.asarray(stamps, np.float64), np.stack(steps)
