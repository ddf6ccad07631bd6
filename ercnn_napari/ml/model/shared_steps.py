"""Predict many overlapping windows of one series without recomputing what they share (exact).

Why: at stride 5 consecutive windows share ~87 of their 92 observations, yet the per-window
path runs the whole network on every window. In ERCNN-DRS everything before the recurrence
depends on ONE observation only:

- the time-distributed blocks (Conv2D + BatchNorm + ReLU; in inference mode BatchNorm uses its
  moving statistics, so a step's output does not depend on the other steps of the batch);
- the ConvLSTMs' input convolutions ``conv(x_t, kernel) + bias`` (the recurrent convolution
  ``conv(h, recurrent_kernel)`` is the only part that sees the window's history);
- the timestep mask: every mode (see :mod:`ercnn_napari.ml.model.network`) decides from the step's own
  values. "quirk" reads the input's top-left pixel, i.e. the top-left pixel of what is
  predicted; :meth:`SharedStepModel.encode` takes ``mask_region`` so that a tile predicted
  inside a larger block (a context halo) keeps the rule of its own top-left pixel.

So :meth:`SharedStepModel.encode` runs those parts ONCE per observation of a series, and
:meth:`SharedStepModel.windows` runs, per window, only the recurrent part over the window's
steps (gathered from the encoded series) and the head. Padded steps (-1) never count in any
mask mode, so the recurrence simply stops at each window's last observation instead of running
over the padding. The results equal the per-window path up to float32 summation order (the
per-window ConvLSTM sums the input and recurrent convolutions in one convolution); the tests
hold them to 1e-5 with the published weights in all mask modes.

A model with a reference input (ml.model.network) compares every window with the series' first
window: its features are computed once per encoded series (:meth:`SharedStepModel.windows`'s
``reference``) and each window's head reads ``concat(f, f - f_ref)``, as the per-window model does.

Inference only: training needs the per-window graph (dropout, BatchNorm batch statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ercnn_napari.core.constants import N_CHANNELS, N_SAR_CHANNELS
from ercnn_napari.ml.model.convlstm import keras2_hard_sigmoid
from ercnn_napari.ml.model.network import uses_reference

#: observations encoded per call: bounds the memory of the time-distributed activations
ENCODE_CHUNK = 64


@dataclass
class EncodedSeries:
    """What the windows of one series share, for one model.

    ``sar_z``/``opt_z``: float32 [N, H, W, 4F], the ConvLSTMs' input gates (input convolution
    plus bias) per observation; ``flags``: bool [N, h, w, 1] with h, w = 1 (one flag per step,
    "quirk" and "step" modes) or H, W ("pixel" mode): does the observation update the state.
    """

    sar_z: tf.Tensor
    opt_z: tf.Tensor
    flags: tf.Tensor
    #: ((start, count), features [1, H, W, C]) of the reference window, once computed
    reference_features: tuple[tuple[int, int], tf.Tensor] | None = None

    @property
    def n_steps(self) -> int:
        return int(self.sar_z.shape[0])


class SharedStepModel:
    """One ERCNN-DRS model (as built by :func:`ercnn_napari.ml.model.network.build_model`) split in two."""

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.time_steps = int(model.input_shape[1])
        self.mask_layer = model.get_layer("timestep_mask")
        self.mask_mode = self.mask_layer.mode
        self.sar_conv = model.get_layer("sar_conv")
        self.opt_conv_1 = model.get_layer("opt_conv_1")
        self.opt_conv_2 = model.get_layer("opt_conv_2")
        self.sar_lstm = model.get_layer("sar_convlstm")
        self.opt_lstm = model.get_layer("opt_convlstm")
        self.head_1 = model.get_layer("head_conv_1")
        self.head_2 = model.get_layer("head_conv_2")
        self.head_out = model.get_layer("head_out")
        self.reference = uses_reference(model)
        self.reference_difference = model.get_layer("reference_difference") if self.reference else None
        image = tf.TensorSpec([None, None, None, N_CHANNELS], tf.float32)
        self._encode_chunk = tf.function(self._encode_images, input_signature=[image])
        self._flags = tf.function(self._step_flags, input_signature=[image])
        features = int(self.head_1.conv.kernel.shape[2]) // (2 if self.reference else 1)
        self._head = tf.function(self._apply_head, input_signature=[
            tf.TensorSpec([None, None, None, features], tf.float32),
            tf.TensorSpec([None, None, None, features], tf.float32),
        ])
        self._recur = tf.function(self._recur_windows, input_signature=[
            tf.TensorSpec([None, None, None, 4 * self.sar_lstm.filters], tf.float32),
            tf.TensorSpec([None, None, None, 4 * self.opt_lstm.filters], tf.float32),
            tf.TensorSpec([None, None, None, 1], tf.bool),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.int32),
        ])

    # ------------------------------------------------------------------ per observation
    @staticmethod
    def _block(layer: keras.layers.Layer, images: tf.Tensor) -> tf.Tensor:
        """A time-distributed ConvBlock on a stack of single observations, inference mode."""
        return tf.nn.relu(layer.norm(layer.conv(images), training=False))

    def _encode_images(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        sar = self._block(self.sar_conv, images[..., :N_SAR_CHANNELS])
        opt = self._block(self.opt_conv_2, self._block(self.opt_conv_1, images[..., N_SAR_CHANNELS:]))
        sar_z = tf.nn.conv2d(sar, self.sar_lstm.kernel, 1, "SAME") + self.sar_lstm.bias
        opt_z = tf.nn.conv2d(opt, self.opt_lstm.kernel, 1, "SAME") + self.opt_lstm.bias
        return sar_z, opt_z

    def _step_flags(self, images: tf.Tensor) -> tf.Tensor:
        mask = self.mask_layer(images[tf.newaxis])[0]  # (N, 1, 1) or (N, H, W)
        return mask[..., tf.newaxis] > 0.5

    def encode(self, series: np.ndarray, mask_region: tuple[slice, slice] | None = None) -> EncodedSeries:
        """Encode every observation of ``series`` float32 [N, H, W, 17] once.

        ``mask_region`` (rows, cols) is the part of the image whose values decide which steps
        count in the "quirk" and "step" modes: the tile being predicted when ``series`` holds
        the tile plus a context halo. None = the whole image (as when it is the model's input).
        """
        series = np.asarray(series, dtype=np.float32)
        if series.ndim != 4 or series.shape[-1] != N_CHANNELS:
            raise ValueError(f"series must be [N, H, W, {N_CHANNELS}], got {series.shape}")
        sar_parts, opt_parts = [], []
        for start in range(0, len(series), ENCODE_CHUNK):
            sar_z, opt_z = self._encode_chunk(tf.constant(series[start:start + ENCODE_CHUNK]))
            sar_parts.append(sar_z)
            opt_parts.append(opt_z)
        decider = series
        if mask_region is not None and self.mask_mode != "pixel":
            decider = series[:, mask_region[0], mask_region[1]]
        flags = self._flags(tf.constant(np.ascontiguousarray(decider)))
        return EncodedSeries(tf.concat(sar_parts, 0), tf.concat(opt_parts, 0), flags)

    # ------------------------------------------------------------------ per window
    @staticmethod
    def _cell(z_in: tf.Tensor, h: tf.Tensor, c: tf.Tensor, recurrent_kernel: tf.Tensor, keep: tf.Tensor
              ) -> tuple[tf.Tensor, tf.Tensor]:
        """One Keras-2 ConvLSTM step (see :mod:`ercnn_napari.ml.model.convlstm`) from precomputed input gates."""
        z = z_in + tf.nn.conv2d(h, recurrent_kernel, 1, "SAME")
        z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
        c_new = keras2_hard_sigmoid(z_f) * c + keras2_hard_sigmoid(z_i) * tf.tanh(z_c)
        h_new = keras2_hard_sigmoid(z_o) * tf.tanh(c_new)
        return tf.where(keep, h_new, h), tf.where(keep, c_new, c)

    def _recur_windows(self, sar_z: tf.Tensor, opt_z: tf.Tensor, flags: tf.Tensor,
                       starts: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
        batch = tf.shape(starts)[0]
        height, width = tf.shape(sar_z)[1], tf.shape(sar_z)[2]
        last = tf.shape(sar_z)[0] - 1
        fs, fo = self.sar_lstm.filters, self.opt_lstm.filters
        zeros_s = tf.zeros(tf.stack([batch, height, width, fs]))
        zeros_o = tf.zeros(tf.stack([batch, height, width, fo]))
        steps = tf.reduce_max(counts)

        def body(t: tf.Tensor, hs: tf.Tensor, cs: tf.Tensor, ho: tf.Tensor, co: tf.Tensor) -> tuple:
            index = tf.minimum(starts + t, last)
            inside = tf.reshape(t < counts, [-1, 1, 1, 1])
            keep = tf.logical_and(tf.gather(flags, index), inside)
            hs, cs = self._cell(tf.gather(sar_z, index), hs, cs, self.sar_lstm.recurrent_kernel, keep)
            ho, co = self._cell(tf.gather(opt_z, index), ho, co, self.opt_lstm.recurrent_kernel, keep)
            return t + 1, hs, cs, ho, co

        _, hs, _, ho, _ = tf.while_loop(lambda t, *_: t < steps, body,
                                        (tf.constant(0), zeros_s, zeros_s, zeros_o, zeros_o),
                                        parallel_iterations=1)
        return tf.concat([hs, ho], axis=-1)

    def _apply_head(self, features: tf.Tensor, reference: tf.Tensor) -> tf.Tensor:
        """The head on the windows' features [B, H, W, C]; ``reference`` [1, H, W, C] is read only
        by a model with a reference input."""
        if self.reference_difference is not None:
            features = self.reference_difference([features, reference])
        head = self.head_1(features, training=False)
        head = self.head_2(head, training=False)
        return tf.squeeze(self.head_out(head), axis=-1)

    def _reference_features(self, encoded: EncodedSeries, reference: tuple[int, int] | None) -> tf.Tensor:
        """The reference window's features, computed once per encoded series (zeros unused for plain models)."""
        if not self.reference:
            return tf.zeros([1, 1, 1, int(self._head.input_signature[1].shape[-1])])
        if reference is None:
            raise ValueError("this model compares every window with the series' first window; "
                             "give its (start, count) as reference")
        key = (int(reference[0]), int(reference[1]))
        if encoded.reference_features is None or encoded.reference_features[0] != key:
            self._check(encoded, np.asarray([key[0]], np.int32), np.asarray([key[1]], np.int32))
            features = self._recur(encoded.sar_z, encoded.opt_z, encoded.flags,
                                   tf.constant([key[0]], tf.int32), tf.constant([key[1]], tf.int32))
            encoded.reference_features = (key, features)
        return encoded.reference_features[1]

    def _check(self, encoded: EncodedSeries, starts: np.ndarray, counts: np.ndarray) -> None:
        if np.any(counts < 1) or np.any(counts > self.time_steps):
            raise ValueError(f"window lengths must be within 1..{self.time_steps}, got {counts.min()}..{counts.max()}")
        if np.any(starts < 0) or np.any(starts + counts > encoded.n_steps):
            raise ValueError("a window reaches outside the encoded series")

    def windows(self, encoded: EncodedSeries, starts: Sequence[int] | np.ndarray,
                counts: Sequence[int] | np.ndarray, reference: tuple[int, int] | None = None) -> np.ndarray:
        """Probabilities [B, H, W] of the windows ``series[start:start+count]`` (one batch).

        ``reference``: (start, count) of the series' first window, which a model with a
        reference input compares every window with (ignored by plain models).
        """
        starts = np.asarray(starts, dtype=np.int32).reshape(-1)
        counts = np.asarray(counts, dtype=np.int32).reshape(-1)
        if starts.size == 0:
            return np.zeros((0, *encoded.sar_z.shape[1:3]), np.float32)
        self._check(encoded, starts, counts)
        reference_features = self._reference_features(encoded, reference)
        features = self._recur(encoded.sar_z, encoded.opt_z, encoded.flags, tf.constant(starts), tf.constant(counts))
        return self._head(features, reference_features).numpy()


def combine(outputs: list[np.ndarray], rule: str) -> np.ndarray:
    """An ensemble's probabilities: the mean or the maximum over models (see predict.COMBINE_RULES)."""
    if len(outputs) == 1:
        return outputs[0]
    stacked = np.stack(outputs, axis=0)
    return stacked.mean(axis=0) if rule == "mean" else stacked.max(axis=0)


def predict_series(models: Sequence[SharedStepModel], series: np.ndarray, starts: np.ndarray,
                   counts: np.ndarray, combine_rule: str = "mean", batch_size: int = 16,
                   mask_region: tuple[slice, slice] | None = None,
                   on_batch: Callable[[int], None] = lambda n: None,
                   reference: tuple[int, int] | None = None) -> np.ndarray:
    """float32 [k, H, W]: the windows (starts, counts) of ``series`` through every model, combined.

    Each model encodes the series once; memory is one encoded series per model at a time
    (about (4*10 + 4*26) floats per pixel and observation for the published configuration).
    ``reference``: (start, count) of the series' first window, needed by models with a
    reference input (ml.model.network).
    """
    starts = np.asarray(starts, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if starts.size == 0:
        return np.zeros((0, *series.shape[1:3]), np.float32)
    lo, hi = int(starts.min()), int((starts + counts).max())  # encode only the steps the windows use
    if reference is not None and any(m.reference for m in models):
        lo, hi = min(lo, int(reference[0])), max(hi, int(reference[0]) + int(reference[1]))
        reference = (int(reference[0]) - lo, int(reference[1]))
    series, starts = series[lo:hi], starts - lo
    per_model = []
    for k, model in enumerate(models):
        encoded = model.encode(series, mask_region)
        parts = []
        for b in range(0, len(starts), batch_size):
            parts.append(model.windows(encoded, starts[b:b + batch_size], counts[b:b + batch_size], reference))
            if k == len(models) - 1:
                on_batch(len(parts[-1]))
        del encoded
        per_model.append(np.concatenate(parts) if parts else np.zeros((0, *series.shape[1:3]), np.float32))
    return combine(per_model, combine_rule).astype(np.float32)
