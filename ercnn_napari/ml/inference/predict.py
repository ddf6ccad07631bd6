"""Per-window change probabilities for TFRecord files or project tiles, written where the viewer reads them.

For every input (a stage-2 or stage-3 file, or a project tile) the predictor writes
``<stem>.npy`` float32 [n_windows, H, W] in [0, 1] (row i = i-th selected window, in file/time
order) and ``<stem>_windows.csv`` (the authors' columns) naming those windows, then one
``prediction.json`` describing the run (models, stride, inputs and, for project tiles, the CRS
and grid so the viewer can stitch a mosaic). Each file appears under its final name only when
complete (temp name + rename); a failed input leaves nothing behind.

A model with a reference input (ml.model.network) compares every window with the first window of
the input's table; stride selections always start there (``WindowTable.every``), so the first
window predicted is that reference.

Several models (e.g. the V1-V3 transfer runs) can be combined by the mean or the maximum of their
probabilities, the authors' combination rule being unpublished. Windows with ``stride`` K are
every K-th row of the stride-1 window table, so their IDs match the full table's.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ercnn_napari import __version__
from ercnn_napari.core.atomic import atomic_path, atomic_write_text
from ercnn_napari.core.constants import N_CHANNELS
from ercnn_napari.core.errors import ErcnnError, InputDataError, ModelFileError
from ercnn_napari.core.messages import Finished, MessageWriter, Progress, Started
from ercnn_napari.core.tiles import TileId, format_tile_id, parse_tile_stem, tile_stem
from ercnn_napari.core.window_table import WindowTable, read_window_csv, write_window_csv
from ercnn_napari.core.windowing import compute_windows
from ercnn_napari.ml.data import pipeline
from ercnn_napari.ml.data.halo import HaloBlock
from ercnn_napari.ml.data.observations import ObservationSource, StackedSource
from ercnn_napari.ml.data.tfrecords import (
    detect_kind,
    explain_read_error,
    read_stacked,
    read_stacked_timestamps,
    stage3_counts,
    stage3_dataset,
)
from ercnn_napari.ml.model.network import uses_reference
from ercnn_napari.ml.model.shared_steps import SharedStepModel, predict_series

COMBINE_RULES = ("mean", "max")


@dataclass
class PredictionJob:
    """One input to predict: where its windows come from and which of them to use."""

    stem: str                      # output names: <stem>.npy, <stem>_windows.csv
    path: Path                     # the file read (named in error messages)
    kind: str                      # "stacked" or "stage3"
    table: WindowTable             # the selected windows, in the order the dataset yields them
    make_dataset: Callable[[int], tf.data.Dataset]  # time_steps -> (n_obs, window) in table order
    stride: int = 1
    tile: TileId | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: stacked inputs: () -> the series [N, H, W, 17] the table's start_index points into, so the
    #: windows can share their per-observation work (:mod:`ercnn_napari.ml.model.shared_steps`)
    load_series: Callable[[], np.ndarray] | None = None

    def describe(self) -> dict[str, Any]:
        tile = self.tile
        if tile is None:
            parsed = parse_tile_stem(self.stem)
            tile = parsed[1] if parsed else None
        return {"stem": self.stem, "source": str(self.path), "kind": self.kind,
                "tile": None if tile is None else format_tile_id(tile),
                "npy": f"{self.stem}.npy", "windows_csv": f"{self.stem}_windows.csv", **self.extra}


def file_job(path: str | Path, stride: int = 1, window_csv: str | Path | None = None) -> PredictionJob:
    """A job for one stage-2 or stage-3 TFRecord file (the kind is read from its first record).

    ``window_csv`` gives a stage-3 file's window times; without it the windows are known by
    their observation counts only (read from the tensor headers first; empty times in the CSV).
    """
    path = Path(path)
    kind = detect_kind(path)
    if kind == "stacked":
        # only the time axis now; the series is decoded when its turn comes (memory: one series)
        stamps = read_stacked_timestamps(path)
        full = compute_windows(stamps, source=path)
        if not len(full):
            raise InputDataError(f"the series of {len(stamps)} time steps has no window with enough observations",
                                 path)
        positions = full.every(stride)

        def make_dataset(steps: int) -> tf.data.Dataset:
            series = read_stacked(path)
            if not np.array_equal(series.timestamps, stamps):
                raise InputDataError("changed while it was being predicted", path)
            return pipeline.stacked_windows(series.observations, full, positions, steps)

        def load_series() -> np.ndarray:
            series = read_stacked(path)
            if not np.array_equal(series.timestamps, stamps):
                raise InputDataError("changed while it was being predicted", path)
            return series.observations

        return PredictionJob(path.stem, path, kind, full.select(positions), make_dataset, stride,
                             load_series=load_series)
    if window_csv is not None:
        full = read_window_csv(window_csv)
    else:
        # one pass over the tensor headers: a progress total, and a truncated file fails before any work
        counts = stage3_counts(path)
        full = WindowTable.build(np.arange(1, len(counts) + 1), counts)
    return PredictionJob(path.stem, path, kind, full.select(full.every(stride)),
                         lambda steps: _stage3_every(path, stride, steps), stride,
                         extra={"window_csv": None if window_csv is None else str(window_csv)})


def _stage3_every(path: Path, stride: int, time_steps: int) -> tf.data.Dataset:
    def pad(_index: tf.Tensor, feature: tf.Tensor, _label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(tf.shape(feature)[0], tf.int64), pipeline.pad_window(feature, time_steps)

    return stage3_dataset(path, with_index=True, stride=stride).map(
        pad, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def tile_job(source: ObservationSource, tile: TileId, stride: int = 1, halo_reader: Any = None) -> PredictionJob:
    """A job for one project tile, whatever the project's observation storage.

    ``halo_reader`` (:class:`ercnn_napari.ml.data.halo.HaloReader`, stacked sources, for models trained
    with ``train --context``): the tile is predicted with its neighbours' halo, the centre kept.
    """
    full = source.window_table(tile)
    positions = full.every(stride)
    load = None
    if isinstance(source, StackedSource):
        load = lambda: source.series(tile)[0].observations  # noqa: E731
        if halo_reader is not None and halo_reader.halo:
            load = lambda: halo_reader.block(tile)  # noqa: E731  a HaloBlock: see Predictor._run_shared
    return PredictionJob(tile_stem(tile), source.path(tile), source.kind, full.select(positions),
                         lambda steps: source.dataset(tile, positions, steps), stride, tile, load_series=load)


class Predictor:
    """One or more models behind a single compiled call that returns combined probabilities.

    ``shared_steps`` (default): stacked inputs compute each observation's per-step work once for
    all the windows that hold it (:mod:`ercnn_napari.ml.model.shared_steps`, equal to the per-window
    path to float32 rounding, several times faster at stride 5). False = the authors' path: every
    window padded to T and run through the whole network (``predict --per-window``).
    """

    def __init__(self, models: Sequence[keras.Model], combine: str = "mean", batch_size: int = 16,
                 shared_steps: bool = True) -> None:
        if not models:
            raise ValueError("need at least one model")
        if combine not in COMBINE_RULES:
            raise ValueError(f"combine must be one of {COMBINE_RULES}, not {combine!r}")
        steps = {int(m.input_shape[1]) for m in models}
        if len(steps) != 1:
            raise ModelFileError(f"the models take different numbers of time steps ({sorted(steps)}); "
                                 "an ensemble needs models built alike")
        self.models = list(models)
        self.combine = combine
        self.batch_size = batch_size
        self.time_steps = steps.pop()
        self.shared_steps = bool(shared_steps)
        self._shared: list[SharedStepModel] | None = None
        #: seconds spent waiting for input batches and in the model, summed over runs; if the
        #: pipeline keeps up, the wait is a small fraction (the first batch's latency, mostly)
        self.input_wait_seconds = 0.0
        self.model_seconds = 0.0
        #: whether some model reads each window beside the input's first window
        self.reference = any(uses_reference(m) for m in self.models)
        spec = tf.TensorSpec([None, self.time_steps, None, None, N_CHANNELS], tf.float32)
        reference = tf.TensorSpec([self.time_steps, None, None, N_CHANNELS], tf.float32)
        self.infer = tf.function(self._combined, input_signature=[spec, reference])

    def _combined(self, batch: tf.Tensor, reference: tf.Tensor) -> tf.Tensor:
        """The models' combined probabilities for ``batch``; ``reference``: the input's first window."""
        with_reference = None
        if self.reference:
            repeated = tf.broadcast_to(reference[tf.newaxis], tf.shape(batch))
            with_reference = tf.concat([batch, repeated], axis=-1)
        outputs = [model(with_reference if uses_reference(model) else batch, training=False)
                   for model in self.models]
        if len(outputs) == 1:
            return outputs[0]
        stacked = tf.stack(outputs, axis=0)
        return tf.reduce_mean(stacked, axis=0) if self.combine == "mean" else tf.reduce_max(stacked, axis=0)

    def shared_models(self) -> list[SharedStepModel]:
        """The models split for shared-step prediction (made once, on first use)."""
        if self._shared is None:
            self._shared = [SharedStepModel(m) for m in self.models]
        return self._shared

    def _run_shared(self, job: PredictionJob, on_batch: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray]:
        waiting = time.perf_counter()
        with explain_read_error(job.path, job.kind):
            series = job.load_series()
        computing = time.perf_counter()
        self.input_wait_seconds += computing - waiting
        region = None
        if isinstance(series, HaloBlock):  # with a context halo: the tile's own corner decides the mask
            series, region = series.series, series.centre
        reference = (int(job.table.start_index[0]), int(job.table.n_obs[0]))  # the first window: see above
        result = predict_series(self.shared_models(), series, job.table.start_index, job.table.n_obs,
                                self.combine, self.batch_size, on_batch=on_batch, mask_region=region,
                                reference=reference)
        if region is not None:
            result = result[:, region[0], region[1]]
        self.model_seconds += time.perf_counter() - computing
        if not len(result):
            raise InputDataError("has no windows to predict", job.path)
        if not np.isfinite(result).all():
            raise ErcnnError("the model produced non-finite probabilities; are its weights broken?", job.path)
        return np.clip(result, 0.0, 1.0).astype(np.float32), job.table.n_obs.astype(np.int64)

    def run(self, job: PredictionJob, on_batch: Callable[[int], None] = lambda n: None
            ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities [k, H, W] and observation counts [k] of the job's windows, in order."""
        pipeline.check_fits(job.table, self.time_steps, job.path)
        if self.shared_steps and job.load_series is not None and np.all(job.table.start_index >= 0):
            return self._run_shared(job, on_batch)
        batches = iter(pipeline.batched(job.make_dataset(self.time_steps), self.batch_size))
        probs: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        reference = None  # the first window of the table (see the module docstring)
        while True:
            waiting = time.perf_counter()
            with explain_read_error(job.path, job.kind):  # only reading: a model error is not the file's fault
                try:
                    n_obs, windows = next(batches)
                except StopIteration:
                    break
            computing = time.perf_counter()
            self.input_wait_seconds += computing - waiting
            if reference is None:
                reference = windows[0]
            probs.append(self.infer(windows, reference).numpy())
            self.model_seconds += time.perf_counter() - computing
            counts.append(n_obs.numpy())
            on_batch(len(counts[-1]))
        if not probs:
            raise InputDataError("has no windows to predict", job.path)
        result, n_obs = np.concatenate(probs), np.concatenate(counts).astype(np.int64)
        if not np.isfinite(result).all():
            raise ErcnnError("the model produced non-finite probabilities; are its weights broken?", job.path)
        return np.clip(result, 0.0, 1.0).astype(np.float32), n_obs


def finish_table(job: PredictionJob, n_obs: np.ndarray) -> WindowTable:
    """The job's window table, checked against the observation counts actually read."""
    if len(job.table) != len(n_obs):
        raise InputDataError(f"holds {len(n_obs)} of the selected windows but the window table lists "
                             f"{len(job.table)}; the table does not belong to this file", job.path)
    bad = np.flatnonzero(job.table.n_obs != n_obs)
    if bad.size:
        i = int(bad[0])
        raise InputDataError(f"window {int(job.table.ids[i])} has {int(n_obs[i])} observations but the window "
                             f"table says {int(job.table.n_obs[i])}; the table does not belong to this file",
                             job.path)
    return job.table


def write_outputs(out_dir: Path, stem: str, probs: np.ndarray, table: WindowTable) -> None:
    """``<stem>.npy`` and ``<stem>_windows.csv``, each atomically."""
    with atomic_path(out_dir / f"{stem}.npy") as tmp:
        np.save(tmp, probs)
    write_window_csv(table, out_dir / f"{stem}_windows.csv")


def run_prediction(jobs: Sequence[PredictionJob], predictor: Predictor, out_dir: str | Path,
                   writer: MessageWriter, description: dict[str, Any]) -> dict[str, Any]:
    """Predict every job, write its outputs and ``prediction.json``; returns the summary."""
    out_dir = Path(out_dir)
    stems = [job.stem for job in jobs]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise InputDataError(f"several inputs would write {duplicates[0]}.npy; give inputs distinct file names",
                             out_dir)
    total = sum(len(job.table) for job in jobs)
    writer.emit(Started(run_dir=str(out_dir), total=total,
                        config={"stride": description.get("stride"), "models": description.get("models"),
                                "inputs": len(jobs), "batch_size": predictor.batch_size,
                                "shared_steps": predictor.shared_steps}))
    started = time.perf_counter()
    waited_before, model_before = predictor.input_wait_seconds, predictor.model_seconds
    done = 0
    inputs = []
    for job in jobs:
        def progress(n: int, job: PredictionJob = job) -> None:
            nonlocal done
            done += n
            writer.emit(Progress(done=done, total=total, desc=f"predicting {job.stem}", unit="windows"))

        probs, n_obs = predictor.run(job, progress)
        table = finish_table(job, n_obs)
        write_outputs(out_dir, job.stem, probs, table)
        inputs.append({**job.describe(), "windows": len(table)})
    seconds = time.perf_counter() - started
    summary = {"inputs": len(jobs), "windows": done, "seconds": round(seconds, 3),
               "windows_per_s": round(done / seconds, 3) if seconds > 0 else None,
               "model_seconds": round(predictor.model_seconds - model_before, 3),
               "input_wait_seconds": round(predictor.input_wait_seconds - waited_before, 3)}
    info = {"format": "ercnn-napari-prediction", "version": 1, "software": f"ercnn-napari {__version__}",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **description, "combine": predictor.combine, "time_steps": predictor.time_steps,
            "batch_size": predictor.batch_size, "shared_steps": predictor.shared_steps, **summary,
            "inputs": inputs}
    atomic_write_text(out_dir / "prediction.json", json.dumps(info, indent=2, default=str) + "\n")
    writer.emit(Finished(status="completed", out=str(out_dir), summary=summary))
    return summary
