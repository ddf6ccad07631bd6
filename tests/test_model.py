"""ERCNN-DRS in Keras 3: shapes, parameter count, Keras-2 activations, mask modes, dropout replay."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from ercnn_napari.core.errors import InputDataError  # noqa: E402
from ercnn_napari.ml.model.convlstm import MaskedConvLSTM2D, keras2_hard_sigmoid  # noqa: E402
from ercnn_napari.ml.model.network import (  # noqa: E402
    ModelConfig,
    TimestepMask,
    build_model,
    pad_to_time_steps,
    random_state_variables,
)


@pytest.fixture(scope="module")
def full_model():
    keras.utils.set_random_seed(1)
    return build_model(ModelConfig())


def tiny_model(mask_mode: str = "quirk", seed: int = 3):
    keras.utils.set_random_seed(seed)
    return build_model(ModelConfig.tiny(mask_mode=mask_mode), seed=seed)


def tiny_window(rng: np.random.Generator, n_obs: int, size: int = 8, time_steps: int = 12) -> np.ndarray:
    window = np.full((time_steps, size, size, 17), -1.0, np.float32)
    window[:n_obs] = rng.uniform(0.01, 0.5, (n_obs, size, size, 17))
    return window


def predict(model, windows: np.ndarray) -> np.ndarray:
    return np.asarray(model(np.asarray(windows, np.float32), training=False))


def test_full_model_shapes_on_tile_and_mosaic(full_model):
    assert predict(full_model, np.zeros((2, 92, 32, 32, 17))).shape == (2, 32, 32)
    out = predict(full_model, np.random.default_rng(0).uniform(0, 0.3, (1, 92, 64, 48, 17)))
    assert out.shape == (1, 64, 48)
    assert np.all((out >= 0) & (out <= 1))


def test_parameter_count_matches_published_network(full_model):
    trainable = sum(int(np.prod(v.shape)) for v in full_model.trainable_weights)
    non_trainable = sum(int(np.prod(v.shape)) for v in full_model.non_trainable_weights)
    assert full_model.count_params() == 69_069
    assert trainable == 68_913
    assert non_trainable == 156


def test_config_round_trip_and_validation():
    config = ModelConfig.tiny(mask_mode="pixel")
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="mask_mode"):
        ModelConfig(mask_mode="sometimes")
    with pytest.raises(ValueError, match="unknown model configuration keys"):
        ModelConfig.from_dict({**config.to_dict(), "units": 3})
    with pytest.raises(ValueError, match="time_steps"):
        ModelConfig(time_steps=0)


def test_pad_to_time_steps_pads_at_end_and_refuses_long_windows():
    window = np.ones((3, 2, 2, 17), np.float32)
    padded = pad_to_time_steps(window, 5)
    assert padded.shape == (5, 2, 2, 17)
    assert np.all(padded[:3] == 1) and np.all(padded[3:] == -1)
    assert pad_to_time_steps(np.ones((2, 3, 2, 2, 17)), 4, axis=1).shape == (2, 4, 2, 2, 17)
    with pytest.raises(InputDataError, match="6 observations, more than the model's 5"):
        pad_to_time_steps(np.ones((6, 2, 2, 17)), 5)


def test_keras2_hard_sigmoid_values():
    x = tf.constant([-3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0])
    expected = [0.0, 0.0, 0.3, 0.5, 0.7, 1.0, 1.0]  # 0.2x + 0.5 clipped; Keras 3 would give 1/3 at -1
    np.testing.assert_allclose(keras2_hard_sigmoid(x).numpy(), expected, atol=1e-7)


# ---- ConvLSTM cell against numpy -------------------------------------------------------------

def conv_same(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'same' 2D convolution (cross-correlation, as TF) of x [B,H,W,C] with kernel [k,k,C,F]."""
    k = kernel.shape[0]
    pad = k // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h, w = x.shape[1:3]
    out = np.zeros((x.shape[0], h, w, kernel.shape[-1]))
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("bhwc,cf->bhwf", xp[:, dy:dy + h, dx:dx + w, :], kernel[dy, dx])
    return out


def numpy_convlstm(x, step_mask, kernel, recurrent_kernel, bias, gate_masks=None):
    """Keras 2's ConvLSTM2D cell; ``gate_masks`` = 4 recurrent-dropout masks (i, f, c, o)."""
    def hard_sigmoid(v):
        return np.clip(0.2 * v + 0.5, 0, 1)

    f = recurrent_kernel.shape[2]
    h = np.zeros(x.shape[:1] + x.shape[2:4] + (f,))
    c = np.zeros_like(h)
    for t in range(x.shape[1]):
        if gate_masks is None:
            recurrent = conv_same(h, recurrent_kernel)
        else:
            recurrent = np.concatenate([conv_same(h * m, recurrent_kernel[..., j * f:(j + 1) * f])
                                        for j, m in enumerate(gate_masks)], axis=-1)
        z = conv_same(x[:, t], kernel) + bias + recurrent
        i, fg, g, o = (z[..., j * f:(j + 1) * f] for j in range(4))
        c_new = hard_sigmoid(fg) * c + hard_sigmoid(i) * np.tanh(g)
        h_new = hard_sigmoid(o) * np.tanh(c_new)
        keep = step_mask[:, t][..., None] > 0.5
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
    return h


def test_convlstm_matches_numpy_cell_with_step_and_pixel_masks():
    rng = np.random.default_rng(5)
    layer = MaskedConvLSTM2D(3, name="lstm")
    x = rng.normal(0, 1, (2, 4, 5, 6, 2)).astype(np.float32)
    step = np.array([[1, 0, 1, 1], [1, 1, 1, 0]], np.float32)[:, :, None, None]
    layer([x, step])
    for var in (layer.kernel, layer.recurrent_kernel, layer.bias):
        var.assign(rng.normal(0, 0.7, var.shape).astype(np.float32))
    weights = [v.numpy().astype(np.float64) for v in (layer.kernel, layer.recurrent_kernel, layer.bias)]

    ours = layer([x, step]).numpy()
    np.testing.assert_allclose(ours, numpy_convlstm(x.astype(np.float64), step, *weights), atol=2e-5)

    pixel = (rng.uniform(size=(2, 4, 5, 6)) > 0.3).astype(np.float32)
    pixel[0, :, 1, 2] = 0  # this pixel never updates: its state must stay exactly 0
    ours = layer([x, pixel]).numpy()
    np.testing.assert_allclose(ours, numpy_convlstm(x.astype(np.float64), pixel, *weights), atol=2e-5)
    assert np.all(ours[0, 1, 2] == 0)
    assert np.any(ours[0, 1, 3] != 0)


def test_convlstm_recurrent_dropout_uses_one_mask_per_gate(monkeypatch):
    rng = np.random.default_rng(6)
    layer = MaskedConvLSTM2D(2, recurrent_dropout=0.5, name="lstm_dropout")
    x = rng.normal(0, 1, (1, 3, 4, 4, 2)).astype(np.float32)
    step = np.ones((1, 3, 1, 1), np.float32)
    layer([x, step])
    for var in (layer.kernel, layer.recurrent_kernel, layer.bias):
        var.assign(rng.normal(0, 0.7, var.shape).astype(np.float32))
    gate_masks = [(rng.uniform(size=(1, 4, 4, 2)) > 0.5).astype(np.float32) * 2.0 for _ in range(4)]
    monkeypatch.setattr(layer, "_dropout_masks", lambda shape: [tf.constant(m) for m in gate_masks])
    weights = [v.numpy().astype(np.float64) for v in (layer.kernel, layer.recurrent_kernel, layer.bias)]
    expected = numpy_convlstm(x.astype(np.float64), step, *weights, gate_masks=gate_masks)
    np.testing.assert_allclose(layer([x, step], training=True).numpy(), expected, atol=2e-5)
    without = numpy_convlstm(x.astype(np.float64), step, *weights)
    np.testing.assert_allclose(layer([x, step], training=False).numpy(), without, atol=2e-5)


def test_gradients_reach_every_trainable_weight_in_training_mode():
    model = tiny_model("quirk")
    window = tiny_window(np.random.default_rng(7), 9)[None]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(window, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert len(grads) == 5 * 4 + 2 * 3 + 2  # conv blocks, ConvLSTMs, 1x1 output conv
    for variable, grad in zip(model.trainable_weights, grads, strict=True):
        assert grad is not None, variable.path
        assert np.all(np.isfinite(grad.numpy())), variable.path


# ---- mask modes ---------------------------------------------------------------------------------

def test_timestep_mask_rules():
    x = np.full((1, 4, 3, 3, 17), -1.0, np.float32)
    x[0, 0] = 0.2                 # ordinary observation
    x[0, 1] = 0.2
    x[0, 1, 0, 0, 0] = 0.0        # top-left first SAR value 0: the quirk drops the step
    x[0, 2, 1, 1] = 0.2           # only a non-corner pixel observed
    # step 3 entirely padding
    quirk = TimestepMask("quirk")(x).numpy()[0, :, 0, 0]
    step = TimestepMask("step")(x).numpy()[0, :, 0, 0]
    pixel = TimestepMask("pixel")(x).numpy()[0]
    np.testing.assert_array_equal(quirk, [1, 0, 0, 0])
    np.testing.assert_array_equal(step, [1, 1, 1, 0])
    assert pixel.shape == (4, 3, 3)
    assert pixel[0].all() and pixel[1].all() and not pixel[3].any()
    assert pixel[2, 1, 1] == 1 and pixel[2].sum() == 1


def test_quirk_ignores_garbage_in_padded_steps_and_zero_padding_equals_minus_one():
    model = tiny_model("quirk")
    rng = np.random.default_rng(0)
    window = tiny_window(rng, 8)
    reference = predict(model, window[None])
    garbage = window.copy()
    garbage[8:] = rng.uniform(-5, 5, garbage[8:].shape)
    garbage[8:, 0, 0, :] = -1.0  # the corner pixel stays padding
    np.testing.assert_array_equal(predict(model, garbage[None]), reference)
    zeros = window.copy()
    zeros[8:] = 0.0
    np.testing.assert_array_equal(predict(model, zeros[None]), reference)


def test_quirk_zero_at_corner_drops_the_step_for_the_whole_tile():
    model = tiny_model("quirk")
    rng = np.random.default_rng(1)
    window = tiny_window(rng, 10)
    reference = predict(model, window[None])[0]
    poked = window.copy()
    poked[4, 0, 0, 0] = 0.0
    dropped = pad_to_time_steps(np.delete(window[:10], 4, axis=0), 12)
    out_poked = predict(model, poked[None])[0]
    np.testing.assert_allclose(out_poked, predict(model, dropped[None])[0], atol=1e-6)
    changed = np.abs(out_poked - reference) > 1e-6
    assert changed.mean() > 0.5, "dropping a step should change predictions across the tile"


def test_step_mode_uses_any_valid_pixel_and_keeps_corner_zero_steps():
    model = tiny_model("step")
    rng = np.random.default_rng(2)
    window = tiny_window(rng, 10)
    reference = predict(model, window[None])
    zeros = window.copy()
    zeros[10:] = 0.0  # zeros are data, not padding, in step mode
    assert not np.allclose(predict(model, zeros[None]), reference)
    poked = window.copy()
    poked[4, 0, 0, 0] = 0.0  # an ordinary value for step mode, step still counts
    dropped = pad_to_time_steps(np.delete(window[:10], 4, axis=0), 12)
    assert not np.allclose(predict(model, poked[None]), predict(model, dropped[None]), atol=1e-4)
    partial = window.copy()
    partial[10, 3, 3] = 0.3  # one observed pixel makes the whole step count
    assert not np.allclose(predict(model, partial[None]), reference, atol=1e-6)


def test_pixel_mode_skips_missing_pixels_only():
    model = tiny_model("pixel")
    rng = np.random.default_rng(3)
    window = tiny_window(rng, 10)
    reference = predict(model, window[None])
    # A step missing everywhere (all -1) in the middle is skipped: same as not having it.
    inserted = np.concatenate([window[:4], np.full_like(window[:1], -1.0), window[4:11]])
    np.testing.assert_allclose(predict(model, inserted[None]), reference, atol=1e-6)
    # With complete observations pixel mode equals step mode on the same weights ...
    step_model = build_model(ModelConfig.tiny(mask_mode="step"))
    step_model.set_weights(model.get_weights())
    np.testing.assert_allclose(predict(step_model, window[None]), reference, atol=1e-6)
    # ... but a pixel missing at one step is skipped only there, which step mode cannot do.
    holes = window.copy()
    holes[4, 2, 2] = -1.0
    out_holes = predict(model, holes[None])[0]
    assert not np.allclose(out_holes, predict(step_model, holes[None])[0], atol=1e-6)
    assert not np.allclose(out_holes, reference[0], atol=1e-6)


# ---- dropout replay ------------------------------------------------------------------------------

def test_random_state_variables_replay_dropout_exactly():
    model = tiny_model("quirk")
    variables = random_state_variables(model)
    assert len(variables) == 2
    window = tiny_window(np.random.default_rng(4), 12)[None]
    snapshot = [v.numpy().copy() for v in variables]
    first = np.asarray(model(window, training=True))
    second = np.asarray(model(window, training=True))
    assert not np.array_equal(first, second), "recurrent dropout should draw new masks"
    for variable, value in zip(variables, snapshot, strict=True):
        variable.assign(value)
    np.testing.assert_array_equal(np.asarray(model(window, training=True)), first)
    inference = predict(model, window)
    np.testing.assert_array_equal(predict(model, window), inference)
