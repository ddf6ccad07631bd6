"""``train --context N``: a tiny run on a small stacked project trains on the tiles with their
neighbours' halo, records the context in the model, and ``predict``/``map`` then use that halo."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.messages import Finished, parse_message
from ercnn_napari.core.model_files import trained_context
from ercnn_napari.core.project import Project
from ercnn_napari.core.splits import Split
from ercnn_napari.ml.data.tfrecords import write_stacked
from ercnn_napari.ml.model.network import ModelConfig, build_model
from ercnn_napari.ml.model.weights import save_model

DAY = 86400.0
S = 8
CONTEXT = 4


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("ERCNN_NAPARI_BASELINE", None)
    return subprocess.run([sys.executable, "-m", "ercnn_napari", *args], capture_output=True, text=True,
                          timeout=900, env=env)


@pytest.fixture(scope="module")
def context_run(tmp_path_factory):
    """A 3x3-tile project cut from one field, labelled, trained with --context 4 (tiny preset)."""
    root = tmp_path_factory.mktemp("context")
    rng = np.random.default_rng(4)
    n = 50
    stamps = 1.4832e9 + np.cumsum(rng.uniform(2.0, 3.4, n)) * DAY
    grid = TileGrid("EPSG:32631", 680000.0, 5615000.0, 10.0, 10.0, rows=3, cols=3, tile_size=S)
    project = Project.create(root / "p", "Liege", grid, observations={"kind": "stacked", "path": "observations"})
    field = rng.uniform(0, 0.5, (n, 3 * S, 3 * S, 17)).astype(np.float32)
    field[n // 2:, 10:14, 5:11] += 0.4  # a change across the border of tiles 1:0 and 1:1
    for y in range(3):
        for x in range(3):
            t = field[:, y * S:(y + 1) * S, x * S:(x + 1) * S]
            write_stacked(project.root / "observations" / f"{y}_{x}.tfrecords", stamps, t[..., :2], t[..., 2:4],
                          t[..., 4:])
            changed = np.zeros((3 * S, 3 * S), np.uint8)
            changed[10:14, 5:11] = 1
            project.labels.write((y, x), changed[y * S:(y + 1) * S, x * S:(x + 1) * S])
    project.write_splits({"V1": Split("V1", [(1, 0), (1, 1)], [(1, 2)], [(0, 1)], [])})
    # a small network that takes the authors' 92 steps (the tiny preset's own takes 12: too few for
    # predict's windows here); the tiny preset's schedule: 1 epoch of 1 step, 2 windows per sample
    keras.utils.set_random_seed(1)
    small = ModelConfig(time_steps=92, sar_filters=2, opt_filters=2, head_filters=2)
    baseline = save_model(build_model(small), small, root / "base.ercnn.h5", {"seed": 1})
    run = root / "run"
    result = cli("train", str(project.root), "--preset", "tiny", "--baseline", str(baseline), "--context",
                 str(CONTEXT), "--seed", "3", "--steps-per-epoch", "1", "--batch-size", "1", "--no-evaluate",
                 "--out", str(run), "--progress", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    messages = [m for m in map(parse_message, result.stdout.splitlines()) if m is not None]
    return {"root": project.root, "run": run, "messages": messages}


def test_the_run_records_its_context(context_run):
    run = context_run["run"]
    assert isinstance(context_run["messages"][-1], Finished) and context_run["messages"][-1].status == "completed"
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["context"] == CONTEXT
    assert trained_context(run) == CONTEXT                        # the final model carries it
    assert trained_context(run / "checkpoints" / "baseline.ercnn.h5") == 0


def test_predict_uses_the_trained_halo(context_run, tmp_path):
    from ercnn_napari.ml.data.halo import HaloReader
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.model.shared_steps import SharedStepModel, predict_series
    from ercnn_napari.ml.model.weights import load_model

    out = tmp_path / "preds"
    result = cli("predict", "--project", str(context_run["root"]), "--model", str(context_run["run"]),
                 "--tiles", "1:1", "--stride", "5", "--out", str(out), "--progress", "none")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{CONTEXT}-pixel context halo" in result.stderr
    probs = np.load(out / "1_1.npy")
    source = open_observations(Project.open(context_run["root"]))
    full = source.window_table((1, 1))
    table = full.select(full.every(5))
    block = HaloReader(source, CONTEXT).block((1, 1))
    model, _ = load_model(context_run["run"])
    expected = predict_series([SharedStepModel(model)], block.series, table.start_index, table.n_obs,
                              mask_region=block.centre)[:, block.centre[0], block.centre[1]]
    assert probs.shape == (len(table), S, S) and np.abs(probs - expected).max() < 1e-5
    alone = predict_series([SharedStepModel(model)], source.series((1, 1))[0].observations, table.start_index,
                           table.n_obs)
    assert np.abs(probs - alone).max() > 1e-4                     # the halo reached the tile


def test_map_takes_the_models_context_as_its_default_halo(context_run, tmp_path):
    from ercnn_napari.cli import cmd_map

    parser = argparse.ArgumentParser()
    cmd_map.add_arguments(parser)
    args = parser.parse_args([str(context_run["root"]), "--model", str(context_run["run"]), "--out", str(tmp_path)])
    plan, _grid, notices = cmd_map._plan(args)
    assert plan.halo == CONTEXT and any("trained with" in n for n in notices)
    args = parser.parse_args([str(context_run["root"]), "--model", str(context_run["run"]), "--out", str(tmp_path),
                              "--halo", "2"])
    plan, _grid, notices = cmd_map._plan(args)
    assert plan.halo == 2 and any("smaller than the context" in n for n in notices)
