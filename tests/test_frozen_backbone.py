"""The quick preset's shortcut: head training on cached features of the frozen branches.

What must hold for it to be the same network trained the same way, only cheaper: the backbone
and head compose to the full model exactly; the head shares the model's variables (training it
trains the model that is saved); the cache holds exactly the backbone's inference-mode output;
the feature-map augmentation moves features and label together; the run selects, checkpoints,
resumes and evaluates like any other run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from test_train_cli import cli, events, model_weights, resume_run, run_until_cancelled, step_losses  # noqa: E402

from ercnn_napari.core.errors import ErcnnError  # noqa: E402
from ercnn_napari.core.messages import Progress, Step  # noqa: E402
from ercnn_napari.ml.model.network import ModelConfig, build_model  # noqa: E402
from ercnn_napari.ml.training.frozen_backbone import FeatureCache, feature_augment, split_model  # noqa: E402
from ercnn_napari.ml.training.presets import preset_config, resolve_config  # noqa: E402
from ercnn_napari.ml.training.train import is_better  # noqa: E402

CACHED_ARGS = ["--preset", "tiny", "--epochs", "2", "--steps-per-epoch", "3", "--freeze", "both",
               "--cache-features", "--optimizer", "adam", "--learning-rate", "0.01", "--select-by", "val_f1",
               "--augment", "0-7", "--seed", "5", "--adapt-bn", "--reference", "--head-start", "fresh",
               "--loss-border", "0"]


@pytest.fixture(scope="module")
def tiny_model() -> object:
    import keras

    keras.utils.set_random_seed(3)
    return build_model(ModelConfig.tiny(), seed=3)


def _windows(seed: int, count: int = 3) -> np.ndarray:
    config = ModelConfig.tiny()
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 0.3, (count, config.time_steps, 32, 32, 17)).astype(np.float32)


def test_backbone_then_head_is_the_model(tiny_model: object) -> None:
    backbone, head = split_model(tiny_model)
    x = _windows(0)
    whole = np.asarray(tiny_model(x, training=False))
    composed = np.asarray(head(backbone(x, training=False), training=False))
    np.testing.assert_allclose(composed, whole, rtol=0, atol=1e-6)
    model_ids = {id(v) for v in tiny_model.trainable_variables}
    assert head.trainable_variables and all(id(v) in model_ids for v in head.trainable_variables)


def test_training_the_head_changes_the_saved_model(tiny_model: object) -> None:
    import keras

    model = build_model(ModelConfig.tiny(), seed=4)
    model.set_weights(tiny_model.get_weights())
    _, head = split_model(model)
    x = _windows(1)
    before = np.asarray(model(x, training=False))
    features = tf.random.uniform((2, 32, 32, int(head.input.shape[-1])))
    optimizer = keras.optimizers.Adam(0.05)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(head(features, training=True))
    optimizer.apply_gradients(zip(tape.gradient(loss, head.trainable_variables), head.trainable_variables, strict=True))
    assert np.abs(np.asarray(model(x, training=False)) - before).max() > 1e-4


def test_cache_holds_the_backbone_output_and_computes_each_window_once(tiny_model: object) -> None:
    backbone, _ = split_model(tiny_model)
    data = {(0, 0): _windows(2, 4), (0, 1): _windows(3, 4)}
    loads: list[tuple] = []

    def load(tile: tuple, windows: list[int]) -> np.ndarray:
        loads.append((tile, tuple(windows)))
        return data[tile][list(windows)]

    cache = FeatureCache(backbone, load, batch_size=3)
    assert cache.fill({(0, 0): [0, 1, 2, 3], (0, 1): [1, 3]})
    assert loads == [((0, 0), (0, 1, 2)), ((0, 0), (3,)), ((0, 1), (1, 3))]
    expected = np.asarray(backbone(data[(0, 0)][[3, 1]], training=False))
    np.testing.assert_allclose(cache.features((0, 0), [3, 1]), expected, rtol=0, atol=1e-6)
    assert cache.fill({(0, 0): [0, 3], (0, 1): [3]}) and len(loads) == 3  # nothing recomputed
    assert len(cache) == 6 and cache.nbytes == 6 * expected[0].nbytes
    stopped = FeatureCache(backbone, load, batch_size=3)
    assert not stopped.fill({(0, 0): [0], (0, 1): [1]}, on_tile=lambda done, total, tile: False)
    assert len(stopped) == 1


def test_feature_augmentation_moves_features_and_label_together() -> None:
    rng = np.random.default_rng(0)
    label = (rng.uniform(size=(32, 32)) > 0.8).astype(np.float32)
    features = np.repeat(label[None, :, :, None], 3, axis=-1) * np.arange(1, 4, dtype=np.float32)
    features = np.repeat(features, 2, axis=0)  # [K=2, H, W, C]
    for code in range(8):
        moved, moved_label = (np.asarray(t) for t in feature_augment(features, label, code))
        np.testing.assert_array_equal(moved[1, :, :, 2], 3 * moved_label)
        assert moved_label.sum() == label.sum()
    with pytest.raises(ErcnnError, match="no frozen columns"):  # codes 8-15 are refused for features
        resolve_config("quick", {"augment_codes": [0, 9]})


def test_configuration_rules() -> None:
    quick = preset_config("quick")
    assert quick.cache_features and quick.freeze == "both" and quick.optimizer == "adam"
    assert quick.select_by == "last" and max(quick.augment_codes) < 8 and quick.windows_per_sample == 10
    paper = preset_config("paper")
    assert not paper.cache_features and (paper.optimizer, paper.select_by) == ("sgd", "val_loss")
    # the paper lets training move the statistics; the quick preset re-estimates them (docs/training.md)
    assert not paper.adapt_bn and quick.adapt_bn and quick.epochs == 40
    # the quick head compares with the first window, starts fresh and is trained on the ring too;
    # the paper's recipe does none of it (docs/training.md)
    assert quick.reference and quick.head_start == "fresh" and quick.loss_border == 0
    assert not paper.reference and paper.head_start == "baseline" and paper.loss_border is None
    assert not resolve_config("quick", {"reference": False}).reference
    assert not resolve_config("quick", {"adapt_bn": False}).adapt_bn
    with pytest.raises(ErcnnError, match="freeze both"):
        resolve_config("paper", {"cache_features": True})
    with pytest.raises(ErcnnError, match="codes 0-7"):
        resolve_config("quick", {"augment_codes": [0, 12]})


def test_the_loss_border_is_the_chosen_ring(tiny_model: object) -> None:
    """The recipe leaves the 1-pixel ring out (none with a context halo); ``loss_border`` overrides both,
    in the training and the validation step alike."""
    from ercnn_napari.ml.training.loss import tanimoto_complement_per_sample
    from ercnn_napari.ml.training.train_steps import loss_border, make_validation_step

    assert (loss_border(0), loss_border(4), loss_border(0, 0), loss_border(4, 2)) == (1, 0, 0, 2)
    with pytest.raises(ErcnnError, match="loss border"):
        resolve_config("quick", {"loss_border": 16})
    strategy = tf.distribute.get_strategy()
    single = _windows(1, count=4)
    windows = single.reshape(2, 2, *single.shape[1:])  # [B=2, K=2, T, H, W, C]
    labels = np.zeros((2, 32, 32), np.float32)
    labels[0, 0, :] = 1.0        # change on the ring only: what the recipe's loss cannot see
    batch = (tf.constant(windows), tf.constant(labels), tf.ones(2))
    losses = {}
    for chosen, ring in ((None, 1), (0, 0)):
        loss, _, maps, _ = (np.asarray(t) for t in make_validation_step(strategy, tiny_model, 0, chosen)(batch))
        expected = np.asarray(tanimoto_complement_per_sample(tf.constant(labels), tf.constant(maps), border=ring))
        np.testing.assert_allclose(loss, expected, rtol=1e-6)
        losses[chosen] = loss
    assert abs(losses[0][0] - losses[None][0]) > 1e-3


def test_selection_rules() -> None:
    state = {"best_val_loss": 0.40, "best_val_f1": 0.20}
    assert is_better("val_loss", 0.39, {"f1": 0.0}, state)
    assert not is_better("val_loss", 0.41, {"f1": 0.9}, state)
    assert is_better("val_f1", 0.45, {"f1": 0.25}, state)
    assert not is_better("val_f1", 0.30, {"f1": 0.10}, state)
    assert is_better("val_f1", 0.39, {"f1": 0.20}, state)      # tie on F1: lower loss wins
    assert not is_better("val_f1", 0.41, {"f1": 0.20}, state)
    assert is_better("val_f1", 0.5, {"f1": 0.1}, {"best_val_loss": 0.4, "best_val_f1": float("nan")})
    assert is_better("val_f1", 0.5, {}, {"best_val_loss": None})  # first epoch
    assert is_better("last", 0.9, {"f1": 0.0}, state)              # no selection: every epoch replaces
    assert resolve_config("quick", {"select_by": "last"}).select_by == "last"


@pytest.fixture(scope="module")
def cached_run(sample_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    run_dir = tmp_path_factory.mktemp("cached") / "run"
    result = cli("train", str(sample_project), "--split", "V1", *CACHED_ARGS, "--out", str(run_dir),
                 "--progress", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, events(result.stdout)


def test_cached_run_trains_the_head_only_and_reports(cached_run: tuple[Path, list]) -> None:
    run_dir, messages = cached_run
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["cache_features"] and set(config["frozen_layers"]) >= {"sar_convlstm", "opt_convlstm"}
    assert config["model_config"]["reference"] and config["train"]["head_start"] == "fresh"
    assert config["train"]["loss_border"] == 0
    cached = [m for m in messages if isinstance(m, Progress) and m.desc.startswith("cached ")]
    assert len(cached) == 1 and "window features" in cached[0].desc
    # each tile's two evenly spaced windows: the first of them is also the reference, cached once
    inputs = json.loads((run_dir / "inputs.json").read_text())
    tiles = set(inputs["train_tiles"]) | set(inputs["val_tiles"])
    assert f"cached {len(tiles) * 2} window features" in cached[0].desc, cached[0].desc
    assert sum(isinstance(m, Step) for m in messages) == 6
    baseline, final = model_weights(run_dir / "checkpoints/baseline.ercnn.h5"), model_weights(run_dir / "model.ercnn.h5")
    changed = [name for name in baseline if not np.array_equal(baseline[name], final[name])]
    layers = {name.split("/")[0] for name in changed}
    # the head trained; of the frozen branches only the input blocks' batch-norm statistics moved (--adapt-bn)
    assert any(name.startswith("head_") for name in layers), changed
    assert layers - {n for n in layers if n.startswith("head_")} == {"sar_conv", "opt_conv_1", "opt_conv_2"}, changed
    frozen_changes = [name for name in changed if not name.startswith("head_")]
    assert all("moving_mean" in name or "moving_variance" in name for name in frozen_changes), frozen_changes
    adapted = json.loads((run_dir / "adapted_batch_norm.json").read_text())
    assert set(adapted) == {"sar_conv", "opt_conv_1", "opt_conv_2"}
    assert [m.name for m in messages if type(m).__name__ == "Stage"][:3] == [
        "building the model", "adapting batch-norm statistics", "caching frozen-branch features"]
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert set(evaluation["sets"]) >= {"val"} and evaluation["sets"]["val"]["after"]["complete"]


def test_cached_run_resumes_to_the_same_result(cached_run: tuple[Path, list], sample_project: Path,
                                               tmp_path: Path) -> None:
    full_dir, full_messages = cached_run
    run_dir = tmp_path / "interrupted"
    command = [sys.executable, "-m", "ercnn_napari", "train", str(sample_project), "--split", "V1",
               *CACHED_ARGS, "--out", str(run_dir), "--progress", "json"]
    first = run_until_cancelled(command, lambda m: isinstance(m, Step) and m.epoch == 1 and m.step == 2)
    second = resume_run(run_dir)
    assert step_losses(first) + step_losses(second) == pytest.approx(step_losses(full_messages), rel=1e-5, abs=1e-6)
    full, interrupted = model_weights(full_dir / "model.ercnn.h5"), model_weights(run_dir / "model.ercnn.h5")
    for name in full:
        np.testing.assert_allclose(interrupted[name], full[name], rtol=1e-5, atol=1e-6, err_msg=name)
