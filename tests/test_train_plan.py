"""Unit tests of the trainer's pure parts: presets, the sampling plan, the run folder, devices and
replica layout (the one-replica CPU path of the same strategy code that runs on GPUs)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.messages import Step
from ercnn_napari.ml.inference.evaluate import evenly_spaced, fit_time_steps
from ercnn_napari.ml.training.distribute import (
    cluster_source,
    parse_gpu_spec,
    scaled_learning_rate,
    select_devices,
)
from ercnn_napari.ml.training.presets import TrainConfig, preset_config, resolve_config
from ercnn_napari.ml.training.run_folder import RunFolder
from ercnn_napari.ml.training.training_data import Sample, SamplingPlan, replica_order

TILES = [(0, 1), (0, 2), (1, 1), (2, 5), (3, 3)]


def fixed_windows(n_windows: int, rng: np.random.Generator) -> list[int]:
    first = int(rng.integers(0, 5))
    return [first, first + int(rng.integers(1, 10))]


def make_plan(**changes: object) -> SamplingPlan:
    options = dict(seed=5, global_batch=4, augment_codes=range(16), val_augment_codes=[0, 5],
                   val_repeats=3, steps_per_epoch=None, remainder="drop")
    options.update(changes)
    return SamplingPlan(TILES[:3], TILES[3:], {t: 100 for t in TILES}, fixed_windows, **options)


def test_paper_preset_is_the_published_recipe() -> None:
    paper = preset_config("paper")
    assert (paper.batch_size, paper.learning_rate, paper.momentum) == (8, 0.001, 0.8)
    assert (paper.windows_per_sample, paper.first_window, paper.resolved_window_gap()) == (10, 20, (45, 55))
    assert len(paper.augment_codes) == 16 and paper.val_repeats == 3 and paper.freeze == "none"
    assert paper.epochs == 500 and paper.model is None and paper.threshold == 0.5


def test_quick_preset_trains_the_head_on_cached_features_of_windows_spanning_the_period() -> None:
    quick = preset_config("quick")
    assert quick.cache_features and quick.freeze == "both" and quick.model is None
    assert quick.windows_per_sample == 10 and quick.eval_windows == 10  # the evaluation's windows
    # the last epoch, not the one 2-4 validation tiles pick (docs/training.md)
    assert quick.select_by == "last" and quick.optimizer == "adam" and set(quick.augment_codes) == set(range(8))


def test_overrides_are_validated_and_round_trip() -> None:
    config = resolve_config("paper", {"epochs": 3, "batch_size": 2, "freeze": "sar", "seed": None})
    assert (config.epochs, config.batch_size, config.freeze, config.seed) == (3, 2, "sar", 123)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ErcnnError, match="freeze"):
        resolve_config("paper", {"freeze": "everything"})
    with pytest.raises(ErcnnError, match="unknown training configuration"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ErcnnError, match="unknown preset"):
        preset_config("huge")


def test_every_tile_and_code_once_per_epoch_and_epochs_differ() -> None:
    plan = make_plan()
    assert plan.samples_per_epoch == 48 and plan.steps_per_epoch == 12 and plan.dropped_per_epoch == 0
    epoch0 = [s for batch in plan.train_steps(0, 0, plan.steps_per_epoch) for s in batch]
    assert Counter((s.tile, s.code) for s in epoch0) == Counter({(t, c): 1 for t in TILES[:3] for c in range(16)})
    epoch1 = [s for batch in plan.train_steps(1, 0, plan.steps_per_epoch) for s in batch]
    assert [(s.tile, s.code) for s in epoch0] != [(s.tile, s.code) for s in epoch1]


def test_plan_is_a_pure_function_of_seed_epoch_step() -> None:
    plan = make_plan()
    whole = plan.train_steps(3, 0, 6)
    assert plan.train_steps(3, 4, 6) == whole[4:]           # what a resume at step 4 sees
    assert make_plan().train_step(3, 5) == whole[5]          # a new process, same answer
    assert make_plan(seed=6).train_steps(3, 0, 6) != whole
    assert plan.validation_batches() == make_plan().validation_batches()


def test_remainder_dropped_or_padded_and_said_so() -> None:
    dropped = make_plan(global_batch=5)                       # 48 = 9 x 5 + 3
    assert dropped.steps_per_epoch == 9 and dropped.dropped_per_epoch == 3
    assert "3 samples left out" in dropped.describe()
    padded = make_plan(global_batch=5, remainder="pad")
    assert padded.steps_per_epoch == 10 and padded.padded_per_epoch == 2
    assert "2 samples repeated" in padded.describe()
    tiny = make_plan(global_batch=64)                         # less than one batch: always padded
    assert tiny.steps_per_epoch == 1 and len(tiny.train_step(0, 0)) == 64
    capped = make_plan(steps_per_epoch=30)                    # longer than an epoch: next shuffles
    assert len(capped.train_steps(0, 0, 30)) == 30


def test_validation_is_padded_with_weightless_samples() -> None:
    plan = make_plan(global_batch=8)
    batches = plan.validation_batches()
    real = [s for b in batches for s in b if s.weight > 0]
    assert len(real) == 3 * 2 * 2 and all(len(b) == 8 for b in batches)
    assert sum(s.weight == 0 for b in batches for s in b) == 4
    by_repeat = [s.windows for s in real if s.tile == TILES[3] and s.code == 0]
    assert len(set(by_repeat)) > 1                            # repeats use different windows


def test_replica_order_gives_each_replica_its_slice() -> None:
    batch = [Sample((0, i), 0, (i,)) for i in range(8)]      # global batch of 8 = 4 replicas x 2
    worker1 = replica_order([batch], per_replica=2, worker_index=1, local_replicas=2)
    assert [s.tile for s in worker1] == [(0, 4), (0, 5), (0, 6), (0, 7)]


def test_run_folder_refuses_reuse_and_rewrites_metrics(tmp_path) -> None:
    run = RunFolder.create(tmp_path / "run")
    run.write_json(run.config_json, {"a": float("nan")})
    assert json.loads(run.config_json.read_text()) == {"a": None}   # strict JSON
    with pytest.raises(ErcnnError, match="--resume"):
        RunFolder.create(tmp_path / "run")
    with pytest.raises(ErcnnError, match="no resumable checkpoint"):
        RunFolder.open_for_resume(tmp_path / "run")
    run.write_metrics([{"epoch": 1, "train_loss": 0.5, "best": 1}])
    assert run.read_metrics()[0]["train_loss"] == "0.5"
    run.append_event(Step(job="train", epoch=1, step=1, loss=0.25))
    assert run.read_events()[0].loss == 0.25


def test_gpu_selection_and_cluster_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_gpu_spec("all") is None and parse_gpu_spec("none") == [] and parse_gpu_spec("0,2") == [0, 2]
    with pytest.raises(ErcnnError, match="--gpus"):
        parse_gpu_spec("first")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    select_devices("none")
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == "-1"
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    assert cluster_source() == "local"
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert cluster_source() == "slurm"
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"index": 0}}))
    assert cluster_source() == "tf_config"
    assert scaled_learning_rate(0.001, 8) == pytest.approx(0.008)


def test_one_replica_strategy_on_cpu() -> None:
    """The CPU path is the same MirroredStrategy code as a GPU node, with one replica."""
    import tensorflow as tf

    from ercnn_napari.ml.training.distribute import make_strategy

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has GPUs; the test is about the CPU path")
    strategy, layout = make_strategy(tf)
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert (layout.kind, layout.replicas, layout.local_replicas, layout.is_chief) == ("mirrored", 1, 1, True)
    assert layout.devices == ["/cpu:0"]


def test_evaluation_window_choice_and_time_fit() -> None:
    assert evenly_spaced(540, 3).tolist() == [0, 270, 539]
    assert evenly_spaced(5, 0).tolist() == [0, 1, 2, 3, 4] and evenly_spaced(5, 9).tolist() == [0, 1, 2, 3, 4]
    windows = np.zeros((2, 92, 4, 4, 17), np.float32)
    assert fit_time_steps(windows, 12).shape == (2, 12, 4, 4, 17)
    padded = fit_time_steps(windows[:, :10], 12)
    assert padded.shape == (2, 12, 4, 4, 17) and (padded[:, 10:] == -1).all()


def test_command_modules_and_plan_do_not_import_tensorflow() -> None:
    """`ercnn-napari train --help` must be instant and the viewer may read run folders: no TF."""
    import subprocess
    import sys

    code = ("import sys, ercnn_napari.cli.cmd_train, ercnn_napari.cli.cmd_evaluate, ercnn_napari.ml.training.presets, "
            "ercnn_napari.ml.training.run_folder, ercnn_napari.ml.training.distribute, ercnn_napari.ml.training.training_data; "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_freeze_keeps_the_chosen_input_path_fixed() -> None:
    from ercnn_napari.ml.model.network import ModelConfig, build_model
    from ercnn_napari.ml.training.train_setup import FREEZE_LAYERS, apply_freeze

    model = build_model(ModelConfig.tiny())
    everything = {v.path for v in model.trainable_variables}
    assert apply_freeze(model, "none") == []
    frozen = apply_freeze(model, "sar")
    assert frozen == list(FREEZE_LAYERS["sar"])
    left = {v.path for v in model.trainable_variables}
    assert left < everything and not any(p.startswith(("sar_conv/", "sar_convlstm/")) for p in left)
    assert any(p.startswith("opt_convlstm/") for p in left) and any(p.startswith("head_out/") for p in left)
    apply_freeze(model, "both")
    assert {v.path.split("/")[0] for v in model.trainable_variables} == {"head_conv_1", "head_conv_2", "head_out"}
