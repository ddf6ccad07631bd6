"""tf.data input pipelines that keep the model busy: cut or decode windows, pad to T, batch, prefetch.

ERCNN-DRS takes windows of exactly T time steps; shorter windows are padded at the END with -1
(the value the authors' padded batching used and the model's masking expects). Decoding a
window (GZIP + protobuf) or slicing it out of a stacked series happens in tf.data worker threads,
and ``prefetch`` keeps the next batches ready while the model runs, so prediction time is the
model's time. Every element is ``(n_obs, window)``: the true observation count travels with the
padded window so that callers can check it against their window table.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from ercnn_napari.core.constants import MAX_OBSERVATIONS, N_CHANNELS, PAD_VALUE
from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.window_table import WindowTable
from ercnn_napari.ml.data.tfrecords import stage3_dataset
from ercnn_napari.ml.model.network import pad_to_time_steps


def pad_numpy(window: np.ndarray, time_steps: int = MAX_OBSERVATIONS) -> np.ndarray:
    """Pad one window [n, H, W, 17] at the end to [time_steps, H, W, 17] with -1 (numpy).

    The model module owns the padding rule (its tests check it against the network's masking);
    this is the same function under the pipeline's name.
    """
    return pad_to_time_steps(window, time_steps)


def pad_window(window: tf.Tensor, time_steps: int = MAX_OBSERVATIONS) -> tf.Tensor:
    """Pad one window tensor [n, H, W, 17] at the end to [time_steps, H, W, 17] with -1."""
    n_obs = tf.shape(window)[0]
    check = tf.debugging.assert_less_equal(
        n_obs, time_steps, message=f"window has more observations than the model's {time_steps} time steps")
    with tf.control_dependencies([check]):
        padded = tf.pad(window, [[0, time_steps - n_obs], [0, 0], [0, 0], [0, 0]],
                        constant_values=PAD_VALUE)
    return tf.ensure_shape(padded, [time_steps, window.shape[1], window.shape[2], N_CHANNELS])


def check_fits(table: WindowTable, time_steps: int, source: str | os.PathLike | None = None) -> None:
    """Refuse up front a window the model cannot take (rather than cut it silently)."""
    if len(table) and int(table.n_obs.max()) > time_steps:
        row = int(np.argmax(table.n_obs))
        raise InputDataError(
            f"window {int(table.ids[row])} has {int(table.n_obs[row])} observations but the model takes at most "
            f"{time_steps} time steps", source)


def stacked_windows(observations: np.ndarray, table: WindowTable, positions: np.ndarray | None = None,
                    time_steps: int = MAX_OBSERVATIONS) -> tf.data.Dataset:
    """(n_obs, padded window) for table rows ``positions`` (all rows if None), cut from a stacked series.

    The series [N, H, W, 17] is held once as a tensor; each element is a slice of it, so memory
    stays at one series plus the batches in flight however many windows overlap.
    """
    rows = table if positions is None else table.select(positions)
    if np.any(rows.start_index < 0):
        raise ValueError("the window table does not say where its windows start on the time axis")
    check_fits(rows, time_steps)
    series = tf.convert_to_tensor(np.asarray(observations, dtype=np.float32))
    starts = tf.constant(rows.start_index, tf.int64)
    counts = tf.constant(rows.n_obs, tf.int64)

    def cut(start: tf.Tensor, count: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return count, pad_window(series[start:start + count], time_steps)

    return tf.data.Dataset.from_tensor_slices((starts, counts)).map(
        cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def stage3_windows(path: str | os.PathLike, positions: np.ndarray | None = None,
                   time_steps: int = MAX_OBSERVATIONS) -> tf.data.Dataset:
    """(n_obs, padded window) for records ``positions`` (ascending; all if None) of a stage-3 file."""
    if positions is not None:
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size > 1 and np.any(np.diff(positions) <= 0):
            raise ValueError("stage-3 windows are read in file order: positions must be strictly increasing")

    def pad(feature: tf.Tensor, _label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(tf.shape(feature)[0], tf.int64), pad_window(feature, time_steps)

    return stage3_dataset(path, positions).map(pad, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def batched(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Batch and prefetch so the next batches are decoded while the model works on this one."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
