"""What each training step sees: a deterministic sampling plan and the tf.data pipeline that feeds it.

The plan is a pure function of ``(seed, epoch, step)``: which tiles and augmentation codes form
each global batch, and which windows of each tile are predicted. Nothing depends on the order in
which batches were consumed before, so a run resumed at epoch *e*, step *s* sees exactly the data
the uninterrupted run saw there (no iterator state to checkpoint).

The recipe (Zitzlsberger et al. 2023): one sample = one labelled tile, its aggregated label and
one of 16 augmentation codes; every tile appears once per code per epoch, in a shuffled order.
Its K windows are drawn by ``choose_windows`` (the recipe's rule, ml.aggregation: window 20, then
K-1 more, each a uniformly drawn 45-55 windows after the previous) from a generator seeded by the
sample's position in the epoch.

The authors required the number of samples to be a multiple of workers x batch. Here the
remainder of an epoch is dropped (``remainder="drop"``, the epoch order is reshuffled every epoch
so different samples fall off each time) or filled from the next shuffle (``remainder="pad"``);
if the samples do not fill even one global batch they are always padded.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ercnn_napari.core.constants import REFERENCE_WINDOW
from ercnn_napari.core.tiles import TileId

_TRAIN_STREAM = 1
_WINDOW_STREAM = 2
_VAL_STREAM = 3


@dataclass(frozen=True)
class Sample:
    """One training/validation example: a tile, an augmentation code and the windows to predict.

    ``weight`` is 0 for samples that only pad a validation batch to the replica layout.
    """

    tile: TileId
    code: int
    windows: tuple[int, ...]
    weight: float = 1.0


class SamplingPlan:
    """Deterministic batches for training and validation of one run."""

    def __init__(
        self,
        train_tiles: Sequence[TileId],
        val_tiles: Sequence[TileId],
        n_windows: dict[TileId, int],
        choose_windows: Callable[[int, np.random.Generator], Sequence[int]],
        *,
        seed: int,
        global_batch: int,
        augment_codes: Sequence[int],
        val_augment_codes: Sequence[int],
        val_repeats: int,
        steps_per_epoch: int | None,
        remainder: str = "drop",
    ) -> None:
        if not train_tiles:
            raise ValueError("no training tiles")
        self.train_tiles = list(train_tiles)
        self.val_tiles = list(val_tiles)
        self.n_windows = dict(n_windows)
        self.seed = int(seed)
        self.global_batch = int(global_batch)
        self.choose_windows = choose_windows
        self.codes = [int(c) for c in augment_codes]
        self.val_codes = [int(c) for c in val_augment_codes]
        self.val_repeats = int(val_repeats)
        self.remainder = remainder
        self.samples_per_epoch = len(self.train_tiles) * len(self.codes)
        whole, rest = divmod(self.samples_per_epoch, self.global_batch)
        if remainder == "drop" and whole > 0:
            self.full_epoch_steps = whole
            self.dropped_per_epoch = rest
        else:
            self.full_epoch_steps = math.ceil(self.samples_per_epoch / self.global_batch)
            self.dropped_per_epoch = 0
        self.padded_per_epoch = self.full_epoch_steps * self.global_batch - self.samples_per_epoch \
            if self.full_epoch_steps * self.global_batch > self.samples_per_epoch else 0
        self.steps_per_epoch = int(steps_per_epoch) if steps_per_epoch else self.full_epoch_steps

    def describe(self) -> str:
        """One sentence for the log about how the epoch is cut into batches."""
        text = (f"{len(self.train_tiles)} training tiles x {len(self.codes)} augmentations = "
                f"{self.samples_per_epoch} samples per epoch in global batches of {self.global_batch}: "
                f"{self.steps_per_epoch} steps per epoch")
        if self.dropped_per_epoch and self.steps_per_epoch == self.full_epoch_steps:
            text += f" ({self.dropped_per_epoch} samples left out each epoch, a different set every epoch)"
        if self.padded_per_epoch and self.steps_per_epoch == self.full_epoch_steps:
            text += f" ({self.padded_per_epoch} samples repeated to fill the last batch)"
        return text

    # ---- training ----------------------------------------------------------------------------
    def _epoch_order(self, epoch: int, count: int) -> list[tuple[int, int]]:
        """The first ``count`` (tile index, code) pairs of an epoch: shuffles of all pairs, chained."""
        pairs = [(t, c) for t in range(len(self.train_tiles)) for c in self.codes]
        order: list[tuple[int, int]] = []
        cycle = 0
        while len(order) < count:
            rng = np.random.default_rng([self.seed, _TRAIN_STREAM, epoch, cycle])
            order.extend(pairs[i] for i in rng.permutation(len(pairs)))
            cycle += 1
        return order[:count]

    def train_step(self, epoch: int, step: int) -> list[Sample]:
        """The global batch of one step, in global replica order (replica r gets slice r)."""
        return self.train_steps(epoch, step, step + 1)[0]

    def train_steps(self, epoch: int, start: int, stop: int) -> list[list[Sample]]:
        """Global batches for steps ``start <= step < stop`` of an epoch."""
        order = self._epoch_order(epoch, stop * self.global_batch)
        batches = []
        for step in range(start, stop):
            batch = []
            for pos in range(step * self.global_batch, (step + 1) * self.global_batch):
                tile_index, code = order[pos]
                tile = self.train_tiles[tile_index]
                rng = np.random.default_rng([self.seed, _WINDOW_STREAM, epoch, pos])
                windows = tuple(int(i) for i in self.choose_windows(self.n_windows[tile], rng))
                batch.append(Sample(tile, code, windows))
            batches.append(batch)
        return batches

    # ---- validation --------------------------------------------------------------------------
    def validation_batches(self) -> list[list[Sample]]:
        """All validation samples (repeats x tiles x codes) in global batches, padded with weight 0.

        The windows depend on the repeat, not on the epoch: every epoch is validated on the same
        windows, so the "best epoch" compares like with like (the authors drew new ones each time).
        """
        samples = []
        for repeat in range(self.val_repeats):
            for tile_index, tile in enumerate(self.val_tiles):
                for code in self.val_codes:
                    rng = np.random.default_rng([self.seed, _VAL_STREAM, repeat, tile_index, code])
                    windows = tuple(int(i) for i in self.choose_windows(self.n_windows[tile], rng))
                    samples.append(Sample(tile, code, windows))
        if not samples:
            return []
        pad = (-len(samples)) % self.global_batch
        samples += [Sample(samples[0].tile, samples[0].code, samples[0].windows, weight=0.0)] * pad
        return [samples[i:i + self.global_batch] for i in range(0, len(samples), self.global_batch)]


def replica_order(batches: list[list[Sample]], per_replica: int, worker_index: int, local_replicas: int) -> list[Sample]:
    """Flatten global batches into the element order one worker's input pipeline must produce.

    With ``distribute_datasets_from_function`` a worker's dataset yields per-replica batches that
    go to its local replicas in turn, so step s needs the slices of global replicas
    ``worker_index*L .. worker_index*L+L-1`` one after another.
    """
    flat: list[Sample] = []
    for batch in batches:
        for local in range(local_replicas):
            replica = worker_index * local_replicas + local
            flat.extend(batch[replica * per_replica:(replica + 1) * per_replica])
    return flat


class WindowReader:
    """Windows of the run's tiles for tf.data's worker threads, read once and cut with numpy.

    A stacked source (``series(tile)``) is decoded once per tile up front, in the main thread,
    and windows are then cut from memory: cheap and thread-safe, and the file reading (itself a
    tf.data pipeline) never runs inside another pipeline's worker. Other sources (the authors'
    stage-3 files, one record per window, too big to hold) are read on demand under a lock.
    Windows are fitted to the model's number of time steps (see ml.evaluate.fit_time_steps).

    ``context`` > 0 (``train --context N``): each window carries N pixels of the neighbouring
    tiles' series on every side, the same halo as the map's prediction (ml.halo), so windows are
    [k, T, H + 2N, W + 2N, 17] while the label stays [H, W]. Only stacked sources have neighbours.

    ``reference`` (a model with a reference input, ml.model.network): :meth:`windows` gives each
    window beside its tile's first window (34 channels); :meth:`observations` the window alone.
    """

    def __init__(self, source: Any, tiles: Sequence[TileId], time_steps: int, preload: bool = True,
                 context: int = 0, reference: bool = False) -> None:
        self.source = source
        self.time_steps = int(time_steps)
        self.context = int(context)
        self.reference = bool(reference)
        self._lock = threading.Lock()
        self._series: dict[TileId, tuple[np.ndarray, Any]] = {}
        self._halo = None
        if self.context:
            from ercnn_napari.ml.data.halo import HaloReader, pin_corners

            self._halo = HaloReader(source, self.context, "reflect")  # refuses stage-3 sources, naming them
            if preload:
                for tile in dict.fromkeys(tiles):
                    self._series[tile] = (pin_corners(self._halo.block(tile)), source.window_table(tile))
            return
        if preload and hasattr(source, "series"):
            for tile in dict.fromkeys(tiles):
                series, table = source.series(tile)
                self._series[tile] = (np.asarray(series.observations, np.float32), table)

    def windows(self, tile: TileId, indices: Sequence[int]) -> np.ndarray:
        """What the model reads: float32 [k, time_steps, H, W, 17 or 34] (see the class docstring)."""
        if not self.reference:
            return self.observations(tile, indices)
        from ercnn_napari.ml.model.network import attach_reference

        both = self.observations(tile, [REFERENCE_WINDOW, *indices])
        return attach_reference(both[1:], both[0])

    def observations(self, tile: TileId, indices: Sequence[int]) -> np.ndarray:
        """float32 [k, time_steps, H, W, 17], padded at the end with -1."""
        from ercnn_napari.ml.inference.evaluate import fit_time_steps

        if tile not in self._series and self._halo is not None:
            from ercnn_napari.ml.data.halo import context_windows

            with self._lock:
                return context_windows(self._halo, tile, self.source.window_table(tile), np.asarray(indices),
                                       self.time_steps)
        if tile not in self._series:
            with self._lock:
                return fit_time_steps(np.asarray(self.source.windows(tile, np.asarray(indices)), np.float32),
                                      self.time_steps)
        observations, table = self._series[tile]
        out = np.full((len(indices), self.time_steps, *observations.shape[1:]), -1.0, np.float32)
        for k, row in enumerate(indices):
            start, count = int(table.start_index[row]), int(table.n_obs[row])
            count = min(count, self.time_steps)
            out[k, :count] = observations[start:start + count]
        return out


def make_dataset(
    samples: list[Sample],
    load: Callable[[Sample], tuple[np.ndarray, np.ndarray]],
    per_replica_batch: int,
    window_shape: tuple[int, ...],
    augment: Callable[[Any, Any, Any], tuple[Any, Any]] | None,
    parallel: int | None = None,
    label_shape: tuple[int, int] | None = None,
) -> Any:
    """tf.data pipeline: sample -> (windows [K,T,H,W,C], label [H,W], weight) -> augment -> batch.

    ``window_shape`` is the shape of what ``load`` returns per sample: windows [K, T, H, W, C],
    or cached backbone features [K, H, W, C] (ml.frozen_backbone); the label is [H, W], or
    ``label_shape`` when the inputs carry a context halo around the labelled tile.

    Loading runs in a parallel, order-preserving map (``deterministic=True``) and the result is
    prefetched, so reading and decompressing the next batch overlaps the current step. ``load``
    is plain Python (TFRecord reading through ml.observations); ``augment`` runs as TF ops.
    """
    import tensorflow as tf

    h, w = label_shape or (window_shape[-3], window_shape[-2])
    codes = np.array([s.code for s in samples], np.int32)
    weights = np.array([s.weight for s in samples], np.float32)

    def _load(index: Any) -> tuple[np.ndarray, np.ndarray]:
        windows, label = load(samples[int(index)])
        return windows.astype(np.float32, copy=False), label.astype(np.float32, copy=False)

    def _map(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        windows, label = tf.numpy_function(_load, [index], [tf.float32, tf.float32], stateful=False)
        windows = tf.ensure_shape(windows, window_shape)
        label = tf.ensure_shape(label, (h, w))
        if augment is not None:
            windows, label = augment(windows, label, tf.gather(codes, index))
        return windows, label, tf.gather(weights, index)

    dataset = tf.data.Dataset.range(len(samples))
    dataset = dataset.map(_map, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(per_replica_batch, drop_remainder=False)
    return dataset.prefetch(tf.data.AUTOTUNE)
