"""Re-estimate the input blocks' batch-norm statistics on the project's own windows (AdaBN).

Why. The published network normalises every time step of its input blocks (``sar_conv``,
``opt_conv_1``, ``opt_conv_2``) with moving statistics learnt on the authors' Sentinel archive.
A project whose observations sit at other levels (another sensor processing, another season
mix, a synthetic AoI) reaches the frozen ConvLSTMs shifted and scaled, and a head trained on
those features has little to work with. Replacing the moving mean and variance by the
statistics of the project's training windows is the classic unsupervised domain adaptation of
batch-normalised networks (Li et al. 2016, "Revisiting Batch Normalization for Practical Domain
Adaptation"): no gradient, one forward pass of the cheap per-step convolutions (not of the
ConvLSTMs), and the learnt kernels stay as published.

How the statistics are taken, so that they mean what the published ones meant: over every
(window, time step, pixel) of the windows given, padded (-1) steps included (the authors'
time-distributed batch norm saw them too, see ml.model), blocks in input order so that
``opt_conv_2`` sees ``opt_conv_1``'s output already normalised with its new statistics. The
moving variance gets the unbiased variance, as Keras 2's fused kernel fed it.

Only the quick preset uses it; ``paper`` leaves the statistics to evolve by training, as the
authors did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from ercnn_napari.core.constants import N_SAR_CHANNELS
from ercnn_napari.core.messages import Progress
from ercnn_napari.core.tiles import format_tile_id
from ercnn_napari.ml.inference.evaluate import evenly_spaced

#: the batch-normalised input blocks in passes over the windows: a block's statistics are set
#: after its pass, before the next pass reads its output (``opt_conv_2`` sees ``opt_conv_1``'s)
INPUT_BLOCKS: tuple[tuple[str, ...], ...] = (("sar_conv", "opt_conv_1"), ("opt_conv_2",))


def _block_input(model: Any, name: str, windows: tf.Tensor) -> tf.Tensor:
    if name == "sar_conv":
        return windows[..., :N_SAR_CHANNELS]
    optical = windows[..., N_SAR_CHANNELS:]
    if name == "opt_conv_1":
        return optical
    return model.get_layer("opt_conv_1")(optical, training=False)


def _conv_moments(layer: Any, x: tf.Tensor) -> tuple[np.ndarray, np.ndarray, int]:
    """Sums of the block's convolution output and of its square per channel, and the count."""
    flat = tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))
    y = tf.cast(tf.reshape(layer.conv(flat), [-1, layer.filters]), tf.float64)
    return (np.asarray(tf.reduce_sum(y, 0)), np.asarray(tf.reduce_sum(tf.square(y), 0)), int(y.shape[0]))


def adapt_batch_norm(model: Any, windows: Callable[[int], Iterable[np.ndarray]],
                     passes: tuple[tuple[str, ...], ...] = INPUT_BLOCKS) -> dict[str, dict[str, list[float]]]:
    """Set the moving statistics of the blocks of ``passes`` to those of ``windows(pass_index)``.

    ``windows`` yields float32 [k, T, H, W, 17] batches (the training tiles' windows), once per
    pass. Returns, per block, the mean and variance before and after (for the run's log). A block
    that sees no pixel keeps its statistics.
    """
    report: dict[str, dict[str, list[float]]] = {}
    for index, blocks in enumerate(passes):
        layers = [model.get_layer(name) for name in blocks]
        sums = {name: [np.zeros(layer.filters), np.zeros(layer.filters), 0] for name, layer in zip(blocks, layers, strict=True)}
        for batch in windows(index):
            x = tf.convert_to_tensor(batch, tf.float32)
            for name, layer in zip(blocks, layers, strict=True):
                s, q, n = _conv_moments(layer, _block_input(model, name, x))
                acc = sums[name]
                acc[0], acc[1], acc[2] = acc[0] + s, acc[1] + q, acc[2] + n
        for name, layer in zip(blocks, layers, strict=True):
            total, squares, count = sums[name]
            if count < 2:
                continue
            mean = total / count
            variance = np.maximum(squares / count - mean * mean, 0.0) * count / (count - 1)
            norm = layer.norm
            report[name] = {"mean_before": norm.moving_mean.numpy().tolist(),
                            "variance_before": norm.moving_variance.numpy().tolist(),
                            "mean_after": mean.tolist(), "variance_after": variance.tolist()}
            norm.moving_mean.assign(mean.astype(np.float32))
            norm.moving_variance.assign(variance.astype(np.float32))
    return report


def adapt_run_batch_norm(loop: Any) -> None:
    """Re-estimate the input blocks' batch-norm statistics on this run's windows (adapt_batch_norm above).

    Only at the start of a run: a resumed run restores the adapted statistics from its
    checkpoint. The baseline saved in the run folder is the unadapted one (the "before").
    """
    tiles = list(dict.fromkeys(loop.inputs.train_tiles + loop.inputs.val_tiles))
    n = loop.config.windows_per_sample
    started = time.perf_counter()

    def windows(pass_index: int) -> Any:
        for done, tile in enumerate(tiles, start=1):
            indices = [int(i) for i in evenly_spaced(loop.inputs.n_windows[tile], n)]
            yield loop.reader.observations(tile, indices)
            loop.sink.emit(Progress(done=done, total=len(tiles), unit="tiles", desc=(
                f"batch-norm statistics of tile {format_tile_id(tile)} (pass {pass_index + 1} of 2)")))

    report = adapt_batch_norm(loop.model, windows)
    if loop.layout.is_chief:
        loop.run.write_json(loop.run.root / "adapted_batch_norm.json", report)
    loop.sink.emit(Progress(done=len(tiles), total=len(tiles), unit="tiles", desc=(
        f"re-estimated the batch-norm statistics of {', '.join(report)} on {len(tiles)} tiles "
        f"in {time.perf_counter() - started:.0f} s")))
