"""The lean step must give the straightforward step's loss, gradients and model state exactly.

Tiny model (ModelConfig.tiny()), K = 3 windows, recurrent dropout ACTIVE, batch norm in training
mode. A negative control shows the comparison is sensitive: replaying without restoring the
dropout state gives different gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from ercnn_napari.ml.model.network import ModelConfig, build_model, random_state_variables  # noqa: E402
from ercnn_napari.ml.training import lean_gradients  # noqa: E402
from ercnn_napari.ml.training.lean_gradients import (  # noqa: E402
    lean_step_gradients,
    model_state_variables,
    straightforward_step_gradients,
)

B, K, H, W = 2, 3, 8, 8
TOL = 1e-5


def _model(config: ModelConfig) -> keras.Model:
    keras.utils.set_random_seed(11)
    return build_model(config, seed=5)


def _batch(time_steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    windows = rng.normal(size=(B, K, time_steps, H, W, 17)).astype(np.float32)
    windows[:, 1, -4:] = -1.0  # window 1 is shorter: padded steps
    labels = (rng.random((B, H, W)) > 0.7).astype(np.float32)
    return windows, labels


def _state(model: keras.Model) -> list[np.ndarray]:
    return [np.array(tf.convert_to_tensor(v)) for v in model_state_variables(model)]


def _set_state(model: keras.Model, values: list[np.ndarray]) -> None:
    for variable, value in zip(model_state_variables(model), values, strict=True):
        variable.assign(value)


def _run(model, step, windows, labels, start_state):
    _set_state(model, start_state)
    result = step(windows, labels)
    return result, _state(model)


def _max_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def tiny_model() -> keras.Model:
    return _model(ModelConfig.tiny())


def test_lean_equals_straightforward_with_dropout_and_batch_norm(tiny_model) -> None:
    model = tiny_model
    assert ModelConfig.tiny().recurrent_dropout > 0
    windows, labels = _batch(ModelConfig.tiny().time_steps)
    start = _state(model)

    def straight(w, y):
        return straightforward_step_gradients(model, w, y)

    def lean(w, y):
        return lean_step_gradients(model, w, y)

    ref, ref_state = _run(model, straight, windows, labels, start)
    got, got_state = _run(model, lean, windows, labels, start)

    assert float(got.loss) == pytest.approx(float(ref.loss), abs=1e-7)
    assert _max_diff(got.gradients, ref.gradients) <= TOL
    assert max(float(np.max(np.abs(g))) for g in ref.gradients) > 1e-3  # not trivially zero
    np.testing.assert_allclose(got.predictions.numpy(), ref.predictions.numpy(), atol=1e-6)
    assert got.predictions.shape == (B, K, H, W)
    # moving statistics saw K updates and the dropout seeds advanced exactly as in the reference
    assert _max_diff(got_state, ref_state) <= 1e-7
    assert _max_diff(ref_state, start) > 0
    _set_state(model, start)


def test_dropout_replay_is_what_makes_it_exact(tiny_model, monkeypatch) -> None:
    """Negative control: without restoring the seed state the replays draw new dropout masks."""
    model = tiny_model
    windows, labels = _batch(ModelConfig.tiny().time_steps, seed=1)
    start = _state(model)
    ref, _ = _run(model, lambda w, y: straightforward_step_gradients(model, w, y), windows, labels, start)
    seeds = {id(v) for v in random_state_variables(model)}
    monkeypatch.setattr(
        lean_gradients, "model_state_variables",
        lambda m: [v for v in model.non_trainable_variables if id(v) not in seeds],
    )
    broken, _ = _run(model, lambda w, y: lean_gradients.lean_step_gradients(model, w, y), windows, labels, start)
    assert _max_diff(broken.gradients, ref.gradients) > 1e-4
    _set_state(model, start)


def test_ties_split_like_reduce_max_and_skipping_changes_nothing() -> None:
    """Identical windows without dropout tie on every pixel; the gradient must be split equally."""
    model = _model(ModelConfig(time_steps=6, sar_filters=2, opt_filters=3, head_filters=2, recurrent_dropout=0.0))
    windows, labels = _batch(6, seed=2)
    windows[:, 2] = windows[:, 0]
    start = _state(model)
    ref, ref_state = _run(model, lambda w, y: straightforward_step_gradients(model, w, y), windows, labels, start)
    ties = np.equal(ref.predictions.numpy()[:, 0], ref.predictions.numpy()[:, 2])
    maxima = ref.predictions.numpy().max(axis=1)
    assert np.any(ties & (ref.predictions.numpy()[:, 0] == maxima))  # the tie case really occurs
    for skip in (True, False):
        got, got_state = _run(
            model, lambda w, y, s=skip: lean_step_gradients(model, w, y, skip_idle_windows=s), windows, labels, start
        )
        assert _max_diff(got.gradients, ref.gradients) <= TOL
        assert _max_diff(got_state, ref_state) <= 1e-7


def test_inside_mirrored_strategy_run_in_graph_mode() -> None:
    """The trainer's setting: tf.function around strategy.run (graph mode: control dependencies)."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = _model(ModelConfig.tiny())
    windows, labels = _batch(ModelConfig.tiny().time_steps, seed=3)
    start = _state(model)

    def per_replica(fn):
        @tf.function
        def step(w, y):
            return strategy.run(lambda a, b: fn(model, a, b), args=(w, y))
        return step

    ref, ref_state = _run(model, per_replica(straightforward_step_gradients), windows, labels, start)
    got, got_state = _run(model, per_replica(lean_step_gradients), windows, labels, start)
    assert _max_diff(got.gradients, ref.gradients) <= TOL
    assert _max_diff(got_state, ref_state) <= 1e-7


def test_bad_shapes_are_refused(tiny_model) -> None:
    with pytest.raises(ValueError, match=r"\[B, K, T, H, W, C\]"):
        lean_step_gradients(tiny_model, np.zeros((1, 12, 8, 8, 17), np.float32), np.zeros((1, 8, 8)))
