"""``ercnn-napari predict`` end to end, in a subprocess, with a small model file."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.messages import Error, Finished, Progress, parse_message
from ercnn_napari.core.project import Project
from ercnn_napari.core.window_table import read_window_csv, write_window_csv
from ercnn_napari.core.windowing import compute_windows
from ercnn_napari.ml.data.pipeline import pad_numpy
from ercnn_napari.ml.data.tfrecords import read_stacked, write_stacked, write_stage3
from ercnn_napari.ml.model.network import ModelConfig, build_model
from ercnn_napari.ml.model.weights import load_model, save_model

DAY = 86400.0
H = W = 4
SUMMARY = re.compile(r"^predicted (\d+) windows of (\d+) input\(s\) in [\d.]+ s \([\d.]+ windows/s\) -> ", re.M)
# full time axis (92 steps), few filters: real network, fast on a CPU
SMALL = ModelConfig(time_steps=92, sar_filters=2, opt_filters=2, head_filters=2)


def stacked_series(rng, n=60):
    stamps = 1.4832e9 + np.cumsum(rng.uniform(2.0, 3.4, n)) * DAY
    return stamps, [rng.normal(size=(n, H, W, c)).astype(np.float32) for c in (2, 2, 13)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(11)
    models = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        models.append(save_model(build_model(SMALL), SMALL, root / f"m{seed}.ercnn.h5", {"seed": seed}))
    run_dir = root / "run_v2"
    run_dir.mkdir()
    (run_dir / "model.ercnn.h5").write_bytes(models[1].read_bytes())  # a finished run folder
    stamps, streams = stacked_series(rng)
    write_stacked(root / "Liege_3_5.tfrecords", stamps, *streams)
    counts = [40, 41, 42, 43, 44]
    write_stage3(root / "3_6.tfrecords", [rng.normal(size=(c, H, W, 17)).astype(np.float32) for c in counts])
    grid = TileGrid("EPSG:32631", 680000.0, 5615000.0, 10.0, 10.0, rows=3, cols=3, tile_size=H)
    project = Project.create(root / "project", "Liege", grid, observations={"kind": "stacked", "path": "observations"})
    for tile in ("0_1", "1_2"):
        stamps, streams = stacked_series(rng)
        write_stacked(project.root / "observations" / f"{tile}.tfrecords", stamps, *streams)
    return {"root": root, "models": models, "run": run_dir, "stacked": root / "Liege_3_5.tfrecords",
            "stage3": root / "3_6.tfrecords", "counts": counts, "project": project.root}


def predict(*args):
    return subprocess.run([sys.executable, "-m", "ercnn_napari", "predict", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def reference(model_path, windows):
    model, _ = load_model(model_path)
    return model(np.stack([pad_numpy(w, 92) for w in windows]), training=False).numpy()


def test_files_end_to_end(inputs, tmp_path):
    out = tmp_path / "out"
    result = predict("--model", inputs["models"][0], "--out", out, "--stride", "2", "--batch-size", "3",
                     inputs["stacked"], inputs["stage3"])
    assert result.returncode == 0, result.stderr
    match = SUMMARY.search(result.stdout)
    assert match, result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["3_6.npy", "3_6_windows.csv", "Liege_3_5.npy",
                                                     "Liege_3_5_windows.csv", "prediction.json"]
    # stacked input: every 2nd window of the on-the-fly table, with its times
    series = read_stacked(inputs["stacked"])
    full = compute_windows(series.timestamps)
    picked = full.every(2)
    probs = np.load(out / "Liege_3_5.npy")
    assert probs.shape == (len(picked), H, W) and probs.dtype == np.float32
    assert probs.min() >= 0.0 and probs.max() <= 1.0
    table = read_window_csv(out / "Liege_3_5_windows.csv")
    assert table.equals(full.select(picked))
    windows = [series.observations[s:s + n] for s, n in zip(full.start_index[picked], full.n_obs[picked],
                                                               strict=True)]
    assert np.allclose(probs, reference(inputs["models"][0], windows), atol=1e-5)
    # stage-3 input without a window CSV: IDs and counts, no times
    stage3 = read_window_csv(out / "3_6_windows.csv")
    assert stage3.ids.tolist() == [1, 3, 5] and stage3.n_obs.tolist() == inputs["counts"][::2]
    assert np.load(out / "3_6.npy").shape == (3, H, W)
    info = json.loads((out / "prediction.json").read_text())
    assert info["stride"] == 2 and info["models"] == [str(inputs["models"][0].resolve())]
    assert [i["stem"] for i in info["inputs"]] == ["Liege_3_5", "3_6"]
    assert info["inputs"][0]["tile"] == "3:5" and info["windows"] == int(match.group(1)) == len(picked) + 3


def test_project_ensemble_with_json_progress(inputs, tmp_path):
    out = tmp_path / "out"
    result = predict("--model", inputs["models"][0], "--model", inputs["run"], "--combine", "max",
                     "--out", out, "--project", inputs["project"], "--tiles", "0:1", "--stride", "3",
                     "--progress", "json")
    assert result.returncode == 0, result.stderr
    messages = [parse_message(line) for line in result.stdout.splitlines()]
    assert messages and all(m is not None for m in messages), result.stdout  # stdout holds JSON only
    assert isinstance(messages[-1], Finished) and messages[-1].status == "completed"
    progress = [m for m in messages if isinstance(m, Progress)]
    assert progress[-1].done == progress[-1].total > 0
    assert SUMMARY.search(result.stderr)
    assert sorted(p.name for p in out.iterdir()) == ["0_1.npy", "0_1_windows.csv", "prediction.json"]
    series = read_stacked(inputs["project"] / "observations" / "0_1.tfrecords")
    full = compute_windows(series.timestamps)
    picked = full.every(3)
    windows = [series.observations[s:s + n] for s, n in zip(full.start_index[picked], full.n_obs[picked],
                                                               strict=True)]
    expected = np.maximum(reference(inputs["models"][0], windows), reference(inputs["run"], windows))
    assert np.allclose(np.load(out / "0_1.npy"), expected, atol=1e-5)
    info = json.loads((out / "prediction.json").read_text())
    assert info["mode"] == "project" and info["tiles"] == ["0:1"] and info["combine"] == "max"
    assert info["crs"] == "EPSG:32631" and info["grid"]["tile_size"] == H and info["grid"]["rows"] == 3
    assert len(info["models"]) == 2 and info["inputs"][0]["tile"] == "0:1"


def test_stage3_with_window_csv_gives_times_and_checks_counts(inputs, tmp_path, capsys):
    stamps = 1.4832e9 + np.arange(80) * 2.5 * DAY
    table = compute_windows(stamps).select(np.arange(5))
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    write_window_csv(table.__class__.build(table.ids, inputs["counts"], table.start_time, table.end_time), good)
    write_window_csv(table.__class__.build(table.ids, [40, 41, 45, 43, 44], table.start_time, table.end_time), bad)
    out = tmp_path / "out"
    result = predict("--model", inputs["models"][0], "--out", out, "--windows", good, inputs["stage3"])
    assert result.returncode == 0, result.stderr
    assert read_window_csv(out / "3_6_windows.csv").has_times
    out_bad = tmp_path / "out_bad"
    from ercnn_napari.cli.main import main  # the same command in-process: saves a TensorFlow start-up

    code = main(["predict", "--model", str(inputs["models"][0]), "--out", str(out_bad), "--windows", str(bad),
                 str(inputs["stage3"])])
    assert code == 2
    assert "window 3 has 42 observations but the window table says 45" in capsys.readouterr().err
    assert not out_bad.exists() or list(out_bad.iterdir()) == []


def test_bad_input_exits_2_with_one_message_and_leaves_nothing(inputs, tmp_path):
    data = inputs["stage3"].read_bytes()
    cut = tmp_path / "cut_3_6.tfrecords"
    cut.write_bytes(data[: len(data) * 3 // 4])
    out = tmp_path / "out"
    out.mkdir()
    result = predict("--model", inputs["models"][0], "--out", out, "--progress", "json", cut)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("ercnn-napari: error:")]
    assert len(lines) == 1 and str(cut) in lines[0] and re.search(r"record \d+", lines[0]), result.stderr
    events = [parse_message(line) for line in result.stdout.splitlines()]
    assert isinstance(events[-1], Error) and events[-1].kind == "bad_input" and events[-1].path == str(cut)
    assert list(out.iterdir()) == []  # no half-written or temporary files



@pytest.mark.parametrize("case, message", [
    ("missing_model", "nope.h5: model file does not exist"),
    ("missing_input", "missing.tfrecords: file not found"),
    ("no_input", "give either INPUT.tfrecords files or --project"),
    ("bad_stride", "--stride must be at least 1"),
])
def test_usage_errors_are_one_line_in_process(inputs, tmp_path, capsys, case, message):
    from ercnn_napari.cli.main import main

    model, data = str(inputs["models"][0]), str(inputs["stage3"])
    argv = {"missing_model": ["--model", str(tmp_path / "nope.h5"), data],
            "missing_input": ["--model", model, str(tmp_path / "missing.tfrecords")],
            "no_input": ["--model", model],
            "bad_stride": ["--model", model, "--stride", "0", data]}[case]
    out = tmp_path / "out"
    assert main(["predict", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("ercnn-napari: error:") == 1 and message in err, err
    assert not out.exists()
