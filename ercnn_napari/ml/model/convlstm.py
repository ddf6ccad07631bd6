"""A convolutional LSTM with the Keras-2 semantics the published ERCNN-DRS weights were trained with.

Why our own layer instead of ``keras.layers.ConvLSTM2D``: Keras 3 changed what the published
network relies on. Its ConvLSTM default ``recurrent_activation`` is ``sigmoid`` and its
``hard_sigmoid`` is ``x/6 + 0.5``, whereas Keras 2 (which trained the weights) used
``clip(0.2*x + 0.5, 0, 1)``. The original model also feeds the LSTMs a *timestep mask computed
from data values* (the "quirk", see :mod:`ercnn_napari.ml.model.network`), and we want a per-pixel mask as
a cleaner option for models trained here. Writing the cell ourselves keeps activations, masks and
dropout under our control and lets us check them number for number against Keras 2.

Cell (Keras 2 ``ConvLSTM2DCell``, gate order i, f, c, o along the kernel's last axis)::

    z = conv(x_t, kernel) + bias + conv(h_{t-1}, recurrent_kernel)      # "same" padding
    i = hard_sigmoid(z_i); f = hard_sigmoid(z_f); o = hard_sigmoid(z_o)
    c_t = f * c_{t-1} + i * tanh(z_c);  h_t = o * tanh(c_t)

A step whose mask is 0 keeps the previous ``h`` and ``c`` (Keras RNN masking); the layer returns
the last ``h`` (``return_sequences=False``), all zeros if no step counted.

Speed and memory: without recurrent dropout (inference) each step does ONE convolution of the
channel-stacked ``[x_t, h]`` with the stacked ``[kernel; recurrent_kernel]``, the same sums as
Keras 2's separate input and recurrent convolutions per gate, up to float32 summation order, and
no ``(B, T, H, W, 4F)`` buffer of pre-computed input gates is ever held. With dropout (training)
the input convolution and four per-gate recurrent convolutions are done per step.

Recurrent dropout (training only) follows Keras 2: at the start of each call four masks of the
state's shape are drawn, one per gate, scaled by ``1/(1-rate)``, and reused for every time step;
``h_{t-1}`` is multiplied by the gate's mask before that gate's recurrent convolution. Keras 3's
ConvLSTM shares one mask between the gates; we keep Keras 2's per-gate masks because the
published network was trained with them (inference is unaffected either way). The random
numbers come from a :class:`keras.random.SeedGenerator` owned by the layer; its state variable
(see :func:`ercnn_napari.ml.model.network.random_state_variables`) can be saved and restored so that a
training pass can be replayed with identical dropout masks.

This module uses TensorFlow ops directly: the ``ml`` side runs Keras 3 on the TensorFlow backend.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

#: Order of the gates in the last axis of ``kernel``/``recurrent_kernel``/``bias`` (as Keras stores it).
GATE_ORDER = ("i", "f", "c", "o")


def keras2_hard_sigmoid(x: tf.Tensor) -> tf.Tensor:
    """Keras 2's hard sigmoid, ``clip(0.2*x + 0.5, 0, 1)`` (NOT Keras 3's ``x/6 + 0.5``)."""
    return tf.clip_by_value(x * 0.2 + 0.5, 0.0, 1.0)


@keras.saving.register_keras_serializable(package="ercnn_napari")
class MaskedConvLSTM2D(keras.layers.Layer):
    """ConvLSTM over ``(B, T, H, W, C)`` returning the last state ``(B, H, W, filters)``.

    Called as ``layer([x, step_mask])``. ``step_mask`` is float32 ``(B, T, 1, 1)`` (one flag per
    time step, the whole tile) or ``(B, T, H, W)`` (one flag per pixel and step); 1 means the step
    updates the state, 0 means it is skipped (state carried over unchanged).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= recurrent_dropout < 1.0:
            raise ValueError(f"recurrent_dropout must be in [0, 1), got {recurrent_dropout}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        # Owned by the layer so that its state can be snapshot/restored to replay dropout exactly.
        self.seed_generator = keras.random.SeedGenerator(seed, name=f"{self.name}_seed")

    def build(self, input_shape: Any) -> None:
        x_shape = input_shape[0]
        in_channels = int(x_shape[-1])
        k, f = self.kernel_size, self.filters
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, in_channels, 4 * f), initializer="glorot_uniform"
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(k, k, f, 4 * f), initializer="orthogonal"
        )
        self.bias = self.add_weight(name="bias", shape=(4 * f,), initializer=_unit_forget_bias(f))
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> tuple:
        x_shape = input_shape[0]
        return (x_shape[0], x_shape[2], x_shape[3], self.filters)

    def _dropout_masks(self, state_shape: tf.Tensor) -> list[tf.Tensor]:
        """Four per-gate masks (values 0 or 1/(1-rate)) drawn from the layer's seed generator."""
        keep = 1.0 - self.recurrent_dropout
        masks = []
        for _ in GATE_ORDER:
            uniform = keras.random.uniform(state_shape, seed=self.seed_generator)
            masks.append(tf.cast(uniform < keep, tf.float32) / keep)
        return masks

    def call(self, inputs: list[tf.Tensor], training: bool | None = None) -> tf.Tensor:
        x, step_mask = inputs
        x = tf.convert_to_tensor(x, tf.float32)
        step_mask = tf.convert_to_tensor(step_mask, tf.float32)
        shape = tf.shape(x)
        batch, steps, height, width = shape[0], shape[1], shape[2], shape[3]
        f = self.filters

        xs = tf.transpose(x, [1, 0, 2, 3, 4])  # time-major (T, B, H, W, C)
        flags = tf.transpose(step_mask, [1, 0, 2, 3])[..., tf.newaxis] > 0.5  # (T, B, h|1, w|1, 1)
        x_ta = tf.TensorArray(tf.float32, size=steps, clear_after_read=False).unstack(xs)
        m_ta = tf.TensorArray(tf.bool, size=steps, clear_after_read=False).unstack(flags)
        state_shape = tf.stack([batch, height, width, f])
        h0 = tf.zeros(state_shape, tf.float32)
        c0 = tf.zeros(state_shape, tf.float32)

        if bool(training) and self.recurrent_dropout > 0.0:
            masks = self._dropout_masks(state_shape)
            rec_kernels = tf.split(self.recurrent_kernel, 4, axis=-1)

            def gates(x_t: tf.Tensor, h: tf.Tensor) -> tf.Tensor:
                parts = [tf.nn.conv2d(h * m, k, 1, "SAME") for m, k in zip(masks, rec_kernels, strict=True)]
                return tf.nn.conv2d(x_t, self.kernel, 1, "SAME") + self.bias + tf.concat(parts, axis=-1)
        else:
            # One convolution per step over [x_t, h] with the stacked kernels: the same sums as
            # conv(x_t, kernel) + conv(h, recurrent_kernel), with one pass over memory.
            joint_kernel = tf.concat([self.kernel, self.recurrent_kernel], axis=2)

            def gates(x_t: tf.Tensor, h: tf.Tensor) -> tf.Tensor:
                return tf.nn.conv2d(tf.concat([x_t, h], axis=-1), joint_kernel, 1, "SAME") + self.bias

        def body(t: tf.Tensor, h: tf.Tensor, c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            z = gates(x_ta.read(t), h)
            z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
            i = keras2_hard_sigmoid(z_i)
            fg = keras2_hard_sigmoid(z_f)
            o = keras2_hard_sigmoid(z_o)
            c_new = fg * c + i * tf.tanh(z_c)
            h_new = o * tf.tanh(c_new)
            keep_new = m_ta.read(t)
            return t + 1, tf.where(keep_new, h_new, h), tf.where(keep_new, c_new, c)

        _, h_last, _ = tf.while_loop(
            lambda t, h, c: t < steps, body, (tf.constant(0), h0, c0), parallel_iterations=1
        )
        return h_last

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            recurrent_dropout=self.recurrent_dropout,
            seed=self.seed,
        )
        return config


def _unit_forget_bias(filters: int) -> keras.initializers.Initializer:
    """Keras 2's ``unit_forget_bias=True``: zeros except ones for the forget gate (init only)."""

    class UnitForgetBias(keras.initializers.Initializer):
        def __call__(self, shape: Any, dtype: Any = None) -> Any:
            ones = keras.ops.ones((filters,), dtype=dtype)
            zeros = keras.ops.zeros((filters,), dtype=dtype)
            return keras.ops.concatenate([zeros, ones, zeros, zeros])

    return UnitForgetBias()
