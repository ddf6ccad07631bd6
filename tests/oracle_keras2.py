"""The original ERCNN-DRS graph in Keras 2 (``tf_keras``): the reference our Keras 3 model must match.

Built from the published description of the authors' model code, with Keras 2's own layers and
defaults: ``Masking(-1)``, a 4/13 channel split of the raw input, ``TimeDistributed`` Sequential
blocks of Conv2D/BatchNorm/ReLU, ``ConvLSTM2D`` with its default ``hard_sigmoid`` (0.2x + 0.5)
and, as timestep mask, the *value* of the Masking output at pixel (0, 0), channel 0 (the quirk,
passed explicitly), then concatenation and the 3x3/3x3/1x1 head. Weights are loaded with
``tf_keras``' own ``load_weights`` (by layer order), so nothing of our loader is involved.

The TimeDistributed blocks get no mask: Keras 2.4's BatchNorm ignored masks, while tf_keras 2.16+
would use a mask for masked moments, which the original never did.
"""

from __future__ import annotations

import numpy as np


def build_keras2_model(
    height: int = 32,
    width: int = 32,
    time_steps: int = 92,
    sar_filters: int = 10,
    opt_filters: int = 26,
    head_filters: int = 8,
    recurrent_dropout: float = 0.4,
):
    """The original architecture in tf_keras (Keras 2 semantics)."""
    import tensorflow as tf
    import tf_keras

    layers = tf_keras.layers

    def block(filters: int, in_channels: int, name: str) -> tf_keras.Sequential:
        return tf_keras.Sequential(
            [
                layers.InputLayer(input_shape=(height, width, in_channels)),
                layers.Conv2D(filters, (3, 3), padding="same"),
                layers.BatchNormalization(),
                layers.Activation("relu"),
            ],
            name=name,
        )

    observations = layers.Input(shape=(time_steps, height, width, 17))
    masked = layers.Masking(mask_value=-1.0)(observations)
    quirk_mask = masked[:, :, 0, 0, 0]
    sar, opt = tf.split(observations, [4, 13], axis=-1)

    sar = layers.TimeDistributed(block(sar_filters, 4, "sar_seq"), name="conv_sar")(sar)
    opt = layers.TimeDistributed(block(opt_filters, 13, "opt_seq_1"), name="conv_opt_1")(opt)
    opt = layers.TimeDistributed(block(opt_filters, opt_filters, "opt_seq_2"), name="conv_opt_2")(opt)
    sar = layers.ConvLSTM2D(sar_filters, (3, 3), padding="same", recurrent_dropout=recurrent_dropout,
                            name="conv_lstm_sar")(sar, mask=quirk_mask)
    opt = layers.ConvLSTM2D(opt_filters, (3, 3), padding="same", recurrent_dropout=recurrent_dropout,
                            name="conv_lstm_opt")(opt, mask=quirk_mask)
    merged = layers.Concatenate(axis=-1)([sar, opt])
    head = block(head_filters, sar_filters + opt_filters, "head_seq_1")(merged)
    head = block(head_filters, head_filters, "head_seq_2")(head)
    out = layers.Conv2D(1, (1, 1), activation="sigmoid", name="conv_out")(head)
    out = layers.Reshape((height, width))(out)
    return tf_keras.Model(observations, out)


def weighted_layer_names(model) -> list[str]:
    """Names of the layers with weights, in the order ``load_weights`` maps them."""
    return [layer.name for layer in model.layers if layer.weights]


def randomise_batchnorm(model, rng: np.random.Generator) -> None:
    """Give every BatchNorm non-trivial statistics so a mix-up of them cannot go unnoticed."""
    import tf_keras

    def visit(layer) -> None:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.5, 1.5, n), rng.uniform(-0.3, 0.3, n),
                rng.uniform(-0.2, 0.2, n), rng.uniform(0.2, 2.0, n),
            ])
        for child in getattr(layer, "layers", []):
            visit(child)
        inner = getattr(layer, "layer", None)
        if inner is not None:
            visit(inner)

    visit(model)


def realistic_window(rng: np.random.Generator, n_obs: int, height: int = 32, width: int = 32,
                     time_steps: int = 92) -> np.ndarray:
    """One window [T, H, W, 17] with plausible values: S1 backscatter and S2 reflectance, -1 padding.

    SAR (linear backscatter) ~0.01-0.3 with speckle; optical ~0.0-0.5 with a smooth spatial
    pattern, a seasonal drift and, in some steps, a "changed" block brighter than before.
    """
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    base_opt = 0.08 + 0.25 * (0.5 + 0.5 * np.sin(6 * xx + 3 * yy))[..., None] * rng.uniform(0.5, 1.0, 13)
    base_sar = 0.02 + 0.15 * (0.5 + 0.5 * np.cos(5 * yy - 2 * xx))[..., None] * rng.uniform(0.5, 1.0, 4)
    window = np.full((time_steps, height, width, 17), -1.0, dtype=np.float32)
    for t in range(n_obs):
        season = 1.0 + 0.2 * np.sin(2 * np.pi * t / max(n_obs, 1))
        sar = base_sar * rng.gamma(4.0, 0.25, size=base_sar.shape)
        opt = base_opt * season + rng.normal(0, 0.01, size=base_opt.shape)
        if t > n_obs // 2:
            opt[height // 4: height // 2, width // 4: width // 2] += 0.15
            sar[height // 4: height // 2, width // 4: width // 2] *= 1.8
        window[t, ..., :4] = np.clip(sar, 0.005, 0.3)
        window[t, ..., 4:] = np.clip(opt, 0.0, 0.5)
    return window
