"""The training worker end to end, as the viewer and a cluster job use it: a subprocess with
``--progress json`` on a copy of the sample AoI, with the tiny network.

One uninterrupted run is shared by several tests (module fixture); a second run is stopped with
SIGTERM after its first step and resumed, and must end with the same weights and losses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ercnn_napari.core.messages import Error, Finished, Step, Unknown, parse_message
from ercnn_napari.core.project import Project
from ercnn_napari.core.splits import Split
from ercnn_napari.core.tiles import format_tile_id

TIMEOUT = 240
RUN_ARGS = ["--preset", "tiny", "--epochs", "2", "--steps-per-epoch", "2", "--gradients", "lean", "--seed", "7"]


def cli(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ercnn_napari", *args], capture_output=True, text=True,
                          timeout=timeout, env=_env())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ERCNN_NAPARI_BASELINE", None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def events(stdout: str) -> list:
    """Every stdout line must be one known event: nothing else may reach stdout."""
    parsed = [parse_message(line) for line in stdout.splitlines() if line.strip()]
    assert all(m is not None and not isinstance(m, Unknown) for m in parsed), stdout
    return parsed


def model_weights(path: Path) -> dict[str, np.ndarray]:
    import h5py

    weights: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, obj: weights.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return weights


@pytest.fixture(scope="module")
def train_project(sample_project: Path) -> Path:
    """The sample AoI (session fixture, read-only here): split V1 lists only tiles with observations."""
    split = Project.open(sample_project).split("V1")
    assert split.train and split.val, "the sample project's V1 must have training and validation tiles"
    return sample_project


def project_copy(project: Path, dest: Path) -> Path:
    """A copy to break on purpose; the big observation files are linked, not copied."""
    shutil.copytree(project, dest, ignore=shutil.ignore_patterns("observations", "runs"))
    (dest / "observations").symlink_to(project / "observations", target_is_directory=True)
    return dest


@pytest.fixture(scope="module")
def full_run(train_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    result = cli("train", str(train_project), "--split", "V1", *RUN_ARGS, "--out", str(run_dir), "--progress", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, events(result.stdout)


def test_events_in_order_and_complete(full_run: tuple[Path, list]) -> None:
    run_dir, messages = full_run
    kinds = [m.event for m in messages]
    assert kinds[:2] == ["started", "preflight"]
    assert kinds[-1] == "finished" and messages[-1].status == "completed"
    steps = [m for m in messages if isinstance(m, Step)]
    assert [(s.epoch, s.step) for s in steps] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(s.seconds > 0 and 0 <= s.input_wait_seconds <= s.seconds and np.isfinite(s.loss) for s in steps)
    assert kinds.count("validation") == 2 and kinds.count("epoch") == 2
    assert {m.kind for m in messages if m.event == "checkpoint"} == {"best", "last", "resume"}
    # events.jsonl holds the same events as stdout
    logged = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in logged] == kinds


def test_run_folder_complete(full_run: tuple[Path, list], train_project: Path) -> None:
    run_dir, _ = full_run
    for name in ("config.json", "inputs.json", "environment.json", "metrics.csv", "events.jsonl",
                 "model.ercnn.h5", "evaluation.json", "checkpoints/best.ercnn.h5", "checkpoints/last.ercnn.h5",
                 "checkpoints/baseline.ercnn.h5", "checkpoints/resume/state.json"):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tensorboard" / "train").iterdir())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["preset"] == "tiny" and config["replicas"] == 1
    assert config["learning_rate_scaled"] == pytest.approx(0.001)
    inputs = json.loads((run_dir / "inputs.json").read_text())
    labels = Project.open(train_project).labels
    for tile_text, sha in inputs["label_sha256"].items():
        y, x = map(int, tile_text.split(":"))
        assert sha == labels.sha256((y, x))
    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["strategy"]["replicas"] == 1 and environment["tensorflow"]
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,val_loss") and len(rows) == 3
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    for when in ("before", "after"):
        overall = evaluation["sets"]["val"][when]["overall"]
        assert set(overall) >= {"precision", "recall", "f1", "iou", "tp", "fp", "fn", "tn"}
        # the inner 30x30 of each tile (border 1, the pixels the loss trains)
        assert overall["tp"] + overall["fp"] + overall["fn"] + overall["tn"] == 30 * 30 * len(inputs["val_tiles"])


def test_final_model_loads_and_is_the_best(full_run: tuple[Path, list]) -> None:
    from ercnn_napari.ml.model.weights import load_model

    run_dir, messages = full_run
    model, config = load_model(run_dir)  # a run folder means its model.ercnn.h5
    assert config.time_steps == 12
    final, best = model_weights(run_dir / "model.ercnn.h5"), model_weights(run_dir / "checkpoints/best.ercnn.h5")
    assert all(np.array_equal(final[k], best[k]) for k in best)
    baseline = model_weights(run_dir / "checkpoints/baseline.ercnn.h5")
    assert any(not np.array_equal(final[k], baseline[k]) for k in final), "training changed nothing"


def run_until_cancelled(command: list[str], stop_at: Callable[[object], bool]) -> list:
    """Run a trainer command, SIGTERM it at the first message ``stop_at`` accepts; it must end cancelled."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env())
    messages = []
    try:
        for line in process.stdout:
            messages.append(parse_message(line))
            if stop_at(messages[-1]):
                process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        process.kill()
    assert isinstance(messages[-1], Finished) and messages[-1].status == "cancelled"
    return messages


def resume_run(run_dir: Path) -> list:
    """``train --resume`` a cancelled run to completion; its events."""
    resumed = cli("train", "--resume", str(run_dir), "--progress", "json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    messages = events(resumed.stdout)
    assert messages[-1].status == "completed"
    return messages


def step_losses(messages: list) -> list[float]:
    return [m.loss for m in messages if isinstance(m, Step)]


def test_sigterm_then_resume_matches_uninterrupted(full_run: tuple[Path, list], train_project: Path,
                                                   tmp_path: Path) -> None:
    full_dir, full_messages = full_run
    run_dir = tmp_path / "interrupted"
    command = [sys.executable, "-m", "ercnn_napari", "train", str(train_project), "--split", "V1", *RUN_ARGS,
               "--out", str(run_dir), "--progress", "json"]
    first_part = run_until_cancelled(command, lambda message: isinstance(message, Step))
    state = json.loads((run_dir / "checkpoints/resume/state.json").read_text())
    assert (state["epoch"], state["step"]) < (2, 0) and not (run_dir / "model.ercnn.h5").exists()

    second_part = resume_run(run_dir)
    assert step_losses(first_part) + step_losses(second_part) == pytest.approx(
        step_losses(full_messages), rel=1e-6, abs=1e-7)
    full, interrupted = model_weights(full_dir / "model.ercnn.h5"), model_weights(run_dir / "model.ercnn.h5")
    for name in full:
        np.testing.assert_allclose(interrupted[name], full[name], rtol=1e-6, atol=1e-7, err_msg=name)
    assert (run_dir / "metrics.csv").read_text().count("\n") == 3


def _expect_error(result: subprocess.CompletedProcess, fragment: str) -> Error:
    assert result.returncode == 2, result.stderr[-2000:]
    messages = events(result.stdout)
    assert len(messages) >= 1 and isinstance(messages[-1], Error), result.stdout
    assert fragment in messages[-1].message, messages[-1].message
    assert "Traceback" not in result.stderr
    return messages[-1]


def test_missing_label_is_one_error_naming_the_file(train_project: Path, tmp_path: Path) -> None:
    copy = project_copy(train_project, tmp_path / "project")
    project = Project.open(copy)
    tile = project.split("V1").train[0]
    project.labels.npy_path(tile).unlink()
    project.labels.tif_path(tile).unlink()
    result = cli("train", str(copy), "--preset", "tiny", "--out", str(tmp_path / "run"), "--progress", "json")
    error = _expect_error(result, format_tile_id(tile))
    assert error.kind == "bad_label" and error.path.endswith(project.labels.npy_path(tile).name)


def test_empty_split_is_an_error(train_project: Path, tmp_path: Path) -> None:
    copy = project_copy(train_project, tmp_path / "project")
    project = Project.open(copy)
    val = project.split("V1").val
    project.write_splits({"V2": Split("V2", train=[], val=val, test=[])})
    result = cli("train", str(copy), "--split", "V2", "--preset", "tiny", "--progress", "json")
    error = _expect_error(result, "no training tiles")
    assert "V2" in (error.path or "")


def test_bad_weights_file_is_an_error(train_project: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "not_a_model.h5"
    bogus.write_bytes(b"this is not HDF5 at all")
    run_dir = tmp_path / "run"
    result = cli("train", str(train_project), "--baseline", str(bogus), "--out", str(run_dir),
                 "--preset", "tiny", "--progress", "json")
    error = _expect_error(result, "not_a_model.h5")
    assert error.kind == "bad_weights"
    assert not (run_dir / "config.json").exists()


def test_memory_preflight_refuses_a_batch_that_cannot_fit(train_project: Path, tmp_path: Path) -> None:
    result = cli("train", str(train_project), "--preset", "tiny", "--batch-size", "100000",
                 "--windows-per-sample", "10", "--out", str(tmp_path / "run"), "--progress", "json")
    error = _expect_error(result, "GiB")
    assert error.kind == "out_of_memory"
    preflight = events(result.stdout)[1]
    assert preflight.event == "preflight" and not preflight.fits
    assert preflight.estimated_peak_bytes > preflight.available_bytes


def test_bad_input_after_the_start_leaves_no_partial_run_folder(train_project: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A training tile whose series holds NaN passes the up-front checks (time axis only) and fails
    once the run has started; the run folder it had created must not stay behind."""
    from ercnn_napari.ml.data import tfrecords

    copy = tmp_path / "project"
    shutil.copytree(train_project, copy, ignore=shutil.ignore_patterns("observations", "runs"))
    source = Project.open(train_project)
    tile = source.split("V1").train[0]
    (copy / "observations").mkdir()
    for path in (train_project / "observations").iterdir():
        (copy / "observations" / path.name).symlink_to(path)
    bad = Project.open(copy).observation_files()[tile]
    series = tfrecords.read_stacked(bad)
    bad.unlink()
    obs = series.observations.copy()
    obs[3, 0, 0, 0] = np.nan
    monkeypatch.setattr(tfrecords, "_check_finite", lambda *args, **kwargs: None)
    tfrecords.write_stacked(bad, series.timestamps, obs[..., 0:2], obs[..., 2:4], obs[..., 4:])
    monkeypatch.undo()
    run_dir = tmp_path / "run"
    result = cli("train", str(copy), "--split", "V1", *RUN_ARGS, "--out", str(run_dir), "--progress", "json")
    error = _expect_error(result, "")
    assert error.kind == "bad_input" and (error.path or "").endswith(bad.name), error
    assert not run_dir.exists(), "a run that failed on bad input leaves no partial run folder"
