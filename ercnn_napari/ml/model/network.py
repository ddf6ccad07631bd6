"""The ERCNN-DRS network (Zitzlsberger et al., Remote Sensing 2021) rebuilt in Keras 3.

Architecture (published configuration, 69,069 parameters: 68,913 trainable + 156 BatchNorm
moving statistics)::

    input (B, T=92, H, W, 17), padded steps = -1
      ├─ SAR  ch 0-3  : time-distributed [Conv2D 3x3 10 + BN + ReLU] -> ConvLSTM 10 (last state)
      └─ optical 4-16 : time-distributed [Conv2D 3x3 26 + BN + ReLU] x2 -> ConvLSTM 26 (last state)
    concat (36) -> [Conv2D 3x3 8 + BN + ReLU] x2 -> Conv2D 1x1 sigmoid -> (B, H, W)

With ``ModelConfig.reference`` (not in the paper; the quick preset's head) the input is a window
and its tile's FIRST window side by side, (B, T, H, W, 34). Both go through the same branches
(shared weights) and the head reads the window's features beside their difference to the first
window's, ``concat(f, f - f_ref)`` (72 channels). A head that sees one window can say "built-up
now"; change is "built-up now and not at the start", which is what an index difference measures
(docs/training.md, "A head that compares with the first window"). With zeros on the difference's
part of ``head_conv_1``'s kernel the network computes exactly what the plain one does
(:func:`ercnn_napari.ml.model.weights.load_weights` widens a plain model file that way).

H and W are free: the network is fully convolutional, so the same weights run on a 32x32 tile or
on a mosaic of tiles.

Time-distributed blocks reshape ``(B, T, H, W, C)`` to ``(B*T, H, W, C)`` and never see a mask,
as in Keras 2.4, whose BatchNorm had no masked moments: in training mode the batch statistics
include the padded (-1) steps, exactly as when the published weights were trained. Their moving
statistics are updated as Keras 2 updated them (:class:`Keras2BatchNorm`), so fine-tuning here
evolves them as the authors' own fine-tuning did.

Timestep masks (``ModelConfig.mask_mode``), i.e. which steps update the ConvLSTM state:

``"quirk"`` (default; what the published weights were trained with)
    The original code passes to the ConvLSTMs the *value* of its ``Masking(-1)`` layer's output
    at pixel (0, 0), channel 0, cast to bool, for the whole tile. Keras' Masking output is
    ``x * any(x != -1 over channels)``, so step ``t`` counts iff
    ``x[b, t, 0, 0, 0] * any(x[b, t, 0, 0, :] != -1) != 0``, i.e. iff the top-left pixel's first
    SAR value is not 0 and the top-left pixel is not entirely -1. In the common case: a step
    counts when that one value is neither 0 nor -1. Values elsewhere in a padded step do not
    matter, and padding with 0 or with -1 gives the same result. On a mosaic the rule is taken at
    the mosaic's top-left pixel (per-tile and mosaic prediction agree unless tile corners differ
    in being 0/-1 at some step).
``"step"``
    Step ``t`` counts iff any pixel or channel of the tile at ``t`` is not -1 (a clean per-step
    padding mask).
``"pixel"``
    Per pixel and step: a pixel's state is updated only where its observation is not all -1
    (a cleaner option for models trained here; it lets partially-missing data be skipped).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ercnn_napari.core.constants import MAX_OBSERVATIONS, N_CHANNELS, N_SAR_CHANNELS, PAD_VALUE
from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ml.model.convlstm import MaskedConvLSTM2D

MASK_MODES = ("quirk", "step", "pixel")

#: Our layers that hold weights, in the order the authors' HDF5 stores them (which is how
#: Keras 2's ``load_weights`` maps them: by layer order). Names of the same layers in that file:
#: conv_opt_26_1, conv_sar_10, conv_opt_26_2, conv_lstm_10_1, conv_lstm_opt_26_1,
#: conv_opt_2_8_1_seq, conv_opt_2_8_2_seq, conv_out_ebbi_sar_opt.
WEIGHTED_LAYERS = (
    "opt_conv_1", "sar_conv", "opt_conv_2", "sar_convlstm", "opt_convlstm",
    "head_conv_1", "head_conv_2", "head_out",
)
CONV_BLOCK_WEIGHTS = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")
CONVLSTM_WEIGHTS = ("kernel", "recurrent_kernel", "bias")
CONV_WEIGHTS = ("kernel", "bias")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; stored as JSON inside our model files."""

    time_steps: int = MAX_OBSERVATIONS
    sar_filters: int = 10
    opt_filters: int = 26
    head_filters: int = 8
    recurrent_dropout: float = 0.4
    mask_mode: str = "quirk"
    #: the head also reads the difference to the tile's first window (input 34 channels)
    reference: bool = False

    def __post_init__(self) -> None:
        for name in ("time_steps", "sar_filters", "opt_filters", "head_filters"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
        if not 0.0 <= float(self.recurrent_dropout) < 1.0:
            raise ValueError(f"ModelConfig.recurrent_dropout must be in [0, 1), got {self.recurrent_dropout!r}")
        if self.mask_mode not in MASK_MODES:
            raise ValueError(f"ModelConfig.mask_mode must be one of {MASK_MODES}, got {self.mask_mode!r}")
        if not isinstance(self.reference, bool):
            raise ValueError(f"ModelConfig.reference must be true or false, got {self.reference!r}")

    @property
    def input_channels(self) -> int:
        """Channels of the model's input: one window (17), or a window and the reference window (34)."""
        return 2 * N_CHANNELS if self.reference else N_CHANNELS

    @classmethod
    def tiny(cls, mask_mode: str = "quirk", reference: bool = False) -> ModelConfig:
        """A few time steps and filters: same graph, fast enough for unit tests on a CPU."""
        return cls(time_steps=12, sar_filters=2, opt_filters=3, head_filters=2, mask_mode=mask_mode,
                   reference=reference)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a file from another program)."""
        if not isinstance(data, dict):
            raise ValueError(f"model configuration must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model configuration keys {unknown}")
        return cls(**data)


def pad_to_time_steps(array: np.ndarray, time_steps: int, value: float = PAD_VALUE, axis: int = 0) -> np.ndarray:
    """Pad the time axis of observations at the END to ``time_steps`` with ``value`` (-1).

    The network was trained on windows of up to 92 observations padded this way; a window with
    more observations than ``time_steps`` cannot be represented and is refused rather than cut.
    """
    array = np.asarray(array, dtype=np.float32)
    n = array.shape[axis]
    if n > time_steps:
        raise InputDataError(f"window has {n} observations, more than the model's {time_steps} time steps")
    if n == time_steps:
        return array
    pad = [(0, 0)] * array.ndim
    pad[axis] = (0, time_steps - n)
    return np.pad(array, pad, mode="constant", constant_values=np.float32(value))


@keras.saving.register_keras_serializable(package="ercnn_napari")
class Keras2BatchNorm(keras.layers.BatchNormalization):
    """BatchNormalization whose moving statistics evolve as in Keras 2 training.

    Outputs are the same as Keras 3's layer; only the update of the moving statistics in
    training mode differs, in two ways that matter when the published weights are fine-tuned:

    - Keras 2 used TensorFlow's fused kernel, which feeds the *unbiased* batch variance
      (``n/(n-1)`` times the biased one used for normalising) into the moving variance.
    - Inside ``TimeDistributed(Sequential)`` Keras 2 ran the inner block a second time to compute
      the output mask (``Functional.compute_mask`` re-runs the graph), so the moving statistics of
      the time-distributed blocks were updated twice per training call with the same batch
      statistics, i.e. with momentum ``0.99**2``. ``updates_per_call=2`` reproduces that.
    """

    def __init__(self, updates_per_call: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.updates_per_call = int(updates_per_call)

    def call(self, inputs: tf.Tensor, training: bool | None = None, mask: Any = None) -> tf.Tensor:
        if not (training and self.trainable):
            return super().call(inputs, training=False)
        axes = list(range(len(inputs.shape) - 1))
        mean, variance = tf.nn.moments(inputs, axes=axes)
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), inputs.dtype)
        unbiased = variance * count / tf.maximum(count - 1.0, 1.0)
        keep = self.momentum ** self.updates_per_call
        self.moving_mean.assign(self.moving_mean * keep + mean * (1.0 - keep))
        self.moving_variance.assign(self.moving_variance * keep + unbiased * (1.0 - keep))
        return tf.nn.batch_normalization(inputs, mean, variance, self.beta, self.gamma, self.epsilon)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(updates_per_call=self.updates_per_call)
        return config


@keras.saving.register_keras_serializable(package="ercnn_napari")
class ConvBlock(keras.layers.Layer):
    """Conv2D 3x3 "same" + BatchNorm + ReLU, optionally applied to every time step.

    With ``time_distributed=True`` the input ``(B, T, H, W, C)`` is folded to ``(B*T, H, W, C)``
    so BatchNorm sees all steps (padded ones included) as one batch, as Keras 2.4 did, and its
    moving statistics are updated as Keras 2 did (see :class:`Keras2BatchNorm`).
    """

    def __init__(self, filters: int, time_distributed: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.time_distributed = bool(time_distributed)
        self.conv = keras.layers.Conv2D(self.filters, 3, padding="same", name="conv")
        self.norm = Keras2BatchNorm(updates_per_call=2 if self.time_distributed else 1,
                                    momentum=0.99, epsilon=1e-3, name="norm")

    def build(self, input_shape: Any) -> None:
        image_shape = (None, *tuple(input_shape[-3:]))
        self.conv.build(image_shape)
        self.norm.build((*image_shape[:-1], self.filters))
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (*tuple(input_shape[:-1]), self.filters)

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not self.time_distributed:
            return tf.nn.relu(self.norm(self.conv(x), training=training))
        shape = tf.shape(x)
        flat = tf.reshape(x, tf.concat([[-1], shape[2:]], axis=0))
        out = tf.nn.relu(self.norm(self.conv(flat), training=training))
        return tf.reshape(out, tf.concat([shape[:4], [self.filters]], axis=0))

    def ordered_weights(self) -> list[keras.Variable]:
        """Weights in the order Keras 2 stored them (CONV_BLOCK_WEIGHTS)."""
        n = self.norm
        return [self.conv.kernel, self.conv.bias, n.gamma, n.beta, n.moving_mean, n.moving_variance]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(filters=self.filters, time_distributed=self.time_distributed)
        return config


@keras.saving.register_keras_serializable(package="ercnn_napari")
class TimestepMask(keras.layers.Layer):
    """Which steps update the ConvLSTM state, from the raw input (see the module docstring).

    Returns float32 ``(B, T, 1, 1)`` for "quirk"/"step" and ``(B, T, H, W)`` for "pixel".
    """

    def __init__(self, mode: str = "quirk", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in MASK_MODES:
            raise ValueError(f"mask mode must be one of {MASK_MODES}, got {mode!r}")
        self.mode = mode

    def compute_output_shape(self, input_shape: Any) -> tuple:
        if self.mode == "pixel":
            return tuple(input_shape[:4])
        return (input_shape[0], input_shape[1], 1, 1)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        not_pad = tf.not_equal(x, PAD_VALUE)
        if self.mode == "quirk":
            corner = x[:, :, 0:1, 0:1, :]
            masking_output = corner[..., 0] * tf.cast(tf.reduce_any(not_pad[:, :, 0:1, 0:1, :], -1), x.dtype)
            return tf.cast(tf.not_equal(masking_output, 0.0), tf.float32)
        if self.mode == "step":
            return tf.cast(tf.reduce_any(not_pad, axis=[2, 3, 4], keepdims=True)[..., 0], tf.float32)
        return tf.cast(tf.reduce_any(not_pad, axis=-1), tf.float32)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(mode=self.mode)
        return config


@keras.saving.register_keras_serializable(package="ercnn_napari")
class ReferenceDifference(keras.layers.Layer):
    """``[f, f_ref] -> concat(f, f - f_ref)``: a window's features beside their change since the reference."""

    def compute_output_shape(self, input_shapes: Any) -> tuple:
        shape = tuple(input_shapes[0])
        return (*shape[:-1], None if shape[-1] is None else 2 * shape[-1])

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        features, reference = inputs
        return tf.concat([features, features - reference], axis=-1)


def apply_branches(layers: dict[str, keras.layers.Layer], observations: Any) -> Any:
    """The two branches on one window ``(B, T, H, W, 17)`` -> concatenated last states ``(B, H, W, 36)``.

    ``layers`` maps the branch layers' names (timestep_mask ... concat) to the model's layer
    objects; calling them again (on the reference window, or on a fresh input to split the model
    in two) shares their weights.
    """
    step_mask = layers["timestep_mask"](observations)
    sar = layers["sar_conv"](observations[..., :N_SAR_CHANNELS])
    opt = layers["opt_conv_2"](layers["opt_conv_1"](observations[..., N_SAR_CHANNELS:N_CHANNELS]))
    sar = layers["sar_convlstm"]([sar, step_mask])
    opt = layers["opt_convlstm"]([opt, step_mask])
    return layers["concat"]([sar, opt])


#: the branch layers, i.e. everything before the head (the frozen backbone of the quick preset)
BRANCH_LAYERS = ("timestep_mask", "sar_conv", "opt_conv_1", "opt_conv_2", "sar_convlstm", "opt_convlstm", "concat")


def build_model(config: ModelConfig | None = None, seed: int | None = None) -> keras.Model:
    """Build ERCNN-DRS for ``config``: (B, T, H, W, 17, or 34 with a reference) float32 -> (B, H, W).

    ``seed`` seeds the ConvLSTMs' dropout generators (the weights' initialisation uses Keras'
    global seeding, ``keras.utils.set_random_seed``).
    """
    config = config or ModelConfig()
    inputs = keras.Input(shape=(config.time_steps, None, None, config.input_channels), name="observations")
    sar_seed = None if seed is None else seed
    opt_seed = None if seed is None else seed + 1
    layers = {
        "timestep_mask": TimestepMask(config.mask_mode, name="timestep_mask"),
        "sar_conv": ConvBlock(config.sar_filters, time_distributed=True, name="sar_conv"),
        "opt_conv_1": ConvBlock(config.opt_filters, time_distributed=True, name="opt_conv_1"),
        "opt_conv_2": ConvBlock(config.opt_filters, time_distributed=True, name="opt_conv_2"),
        "sar_convlstm": MaskedConvLSTM2D(config.sar_filters, recurrent_dropout=config.recurrent_dropout,
                                         seed=sar_seed, name="sar_convlstm"),
        "opt_convlstm": MaskedConvLSTM2D(config.opt_filters, recurrent_dropout=config.recurrent_dropout,
                                         seed=opt_seed, name="opt_convlstm"),
        "concat": keras.layers.Concatenate(axis=-1, name="concat"),
    }
    if config.reference:
        merged = ReferenceDifference(name="reference_difference")([
            apply_branches(layers, inputs[..., :N_CHANNELS]), apply_branches(layers, inputs[..., N_CHANNELS:])])
    else:
        merged = apply_branches(layers, inputs)
    head = ConvBlock(config.head_filters, name="head_conv_1")(merged)
    head = ConvBlock(config.head_filters, name="head_conv_2")(head)
    logits_map = keras.layers.Conv2D(1, 1, activation="sigmoid", name="head_out")(head)
    outputs = keras.ops.squeeze(logits_map, axis=-1)
    return keras.Model(inputs, outputs, name="ercnn_drs")


def uses_reference(model: keras.Model) -> bool:
    """Whether ``model`` takes each window beside its tile's first window (34 input channels)."""
    return int(model.input_shape[-1]) == 2 * N_CHANNELS


def attach_reference(windows: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Windows [k, T, H, W, 17] and the reference window [T, H, W, 17] -> the model's [k, T, H, W, 34]."""
    windows = np.asarray(windows, np.float32)
    reference = np.asarray(reference, np.float32)
    if reference.shape != windows.shape[1:]:
        raise InputDataError(f"the reference window has shape {reference.shape}, the windows {windows.shape[1:]}")
    return np.concatenate([windows, np.broadcast_to(reference, windows.shape)], axis=-1)


def ordered_weights(model: keras.Model) -> list[tuple[str, list[tuple[str, keras.Variable]]]]:
    """(layer name, [(weight name, variable), ...]) in the published file's layer/weight order."""
    result = []
    for name in WEIGHTED_LAYERS:
        layer = model.get_layer(name)
        if isinstance(layer, ConvBlock):
            pairs = list(zip(CONV_BLOCK_WEIGHTS, layer.ordered_weights(), strict=True))
        elif isinstance(layer, MaskedConvLSTM2D):
            pairs = list(zip(CONVLSTM_WEIGHTS, (layer.kernel, layer.recurrent_kernel, layer.bias), strict=True))
        else:
            pairs = list(zip(CONV_WEIGHTS, (layer.kernel, layer.bias), strict=True))
        result.append((name, pairs))
    return result


def random_state_variables(model: keras.Model) -> list[keras.Variable]:
    """The variables that hold the model's random (dropout) state.

    Snapshot them (``[v.numpy() for v in ...]``) before a training pass and ``assign`` the
    snapshot back to replay that pass with the very same dropout masks.
    """
    return [layer.seed_generator.state for layer in model.layers if isinstance(layer, MaskedConvLSTM2D)]
