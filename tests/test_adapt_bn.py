"""The quick preset's batch-norm re-estimation (ml.adapt_bn) on a tiny network, in seconds.

What must hold: after adaptation each input block, run as in inference, normalises the given
windows to zero mean and unit variance per channel (padded steps included, as the authors'
time-distributed batch norm saw them); the second optical block is adapted on the output of the
first one *already* adapted; the learnt kernels are untouched.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ercnn_napari.ml.model.network import ModelConfig, build_model  # noqa: E402
from ercnn_napari.ml.training.adapt_bn import INPUT_BLOCKS, adapt_batch_norm  # noqa: E402


def _windows(seed: int) -> np.ndarray:
    config = ModelConfig.tiny()
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, (3, config.time_steps, 16, 16, 17)).astype(np.float32)  # far from the init stats
    x[:, -3:] = -1.0  # padded steps at the end of every window
    return x


def _normalised(model, name: str, x: np.ndarray) -> np.ndarray:
    """A block's batch-norm output (before ReLU) in inference mode, pooled over everything but channels."""
    layer = model.get_layer(name)
    if name == "sar_conv":
        inp = x[..., :4]
    elif name == "opt_conv_1":
        inp = x[..., 4:]
    else:
        inp = model.get_layer("opt_conv_1")(x[..., 4:], training=False)
    flat = tf.reshape(inp, tf.concat([[-1], tf.shape(inp)[2:]], 0))
    out = layer.norm(layer.conv(flat), training=False)
    return np.asarray(out).reshape(-1, layer.filters)


def test_input_blocks_normalise_the_project_windows_after_adaptation() -> None:
    model = build_model(ModelConfig.tiny(), seed=0)
    batches = [_windows(1), _windows(2)]
    kernels = {name: model.get_layer(name).conv.kernel.numpy().copy() for blocks in INPUT_BLOCKS for name in blocks}
    before = _normalised(model, "opt_conv_2", np.concatenate(batches))
    assert abs(before.mean()) > 0.05 or abs(before.std() - 1) > 0.05  # the initial statistics do not fit
    passes = []

    def windows(index: int):
        passes.append(index)
        yield from batches

    report = adapt_batch_norm(model, windows)
    assert passes == [0, 1] and set(report) == {"sar_conv", "opt_conv_1", "opt_conv_2"}
    pooled = np.concatenate(batches)
    for name in report:
        out = _normalised(model, name, pooled)
        np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=2e-3, err_msg=name)
        np.testing.assert_allclose(out.std(axis=0), 1.0, atol=2e-2, err_msg=name)
        np.testing.assert_array_equal(model.get_layer(name).conv.kernel.numpy(), kernels[name])
        assert report[name]["mean_after"] != report[name]["mean_before"]
    # the head's statistics are the head's: not touched
    head = model.get_layer("head_conv_1").norm
    np.testing.assert_array_equal(head.moving_mean.numpy(), np.zeros(head.moving_mean.shape))
