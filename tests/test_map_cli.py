"""``ercnn-napari map`` end to end on a tiny project: one worker equals two, a killed run resumes to the same files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import rasterio
import zarr

from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.messages import Finished, Started, parse_message
from ercnn_napari.core.project import Project
from ercnn_napari.core.window_table import read_window_csv
from ercnn_napari.ml.data.halo import HaloReader
from ercnn_napari.ml.data.observations import open_observations
from ercnn_napari.ml.data.tfrecords import write_stacked
from ercnn_napari.ml.model.network import ModelConfig, build_model
from ercnn_napari.ml.model.shared_steps import SharedStepModel, predict_series
from ercnn_napari.ml.model.weights import load_model, save_model

DAY = 86400.0
S = 8
SMALL = ModelConfig(time_steps=92, sar_filters=2, opt_filters=2, head_filters=2)
TILES = [(y, x) for y in range(3) for x in range(3) if (y, x) != (2, 2)]  # (2, 2) has no observations


def stacked_grid_project(root, tiles, n: int = 60, seed: int = 3):
    """A 3x3 grid of S-pixel tiles, stacked observations (one random field, ``n`` dates) for ``tiles``."""
    rng = np.random.default_rng(seed)
    stamps = 1.4832e9 + np.cumsum(rng.uniform(2.0, 3.4, n)) * DAY
    grid = TileGrid("EPSG:32631", 680000.0, 5615000.0, 10.0, 10.0, rows=3, cols=3, tile_size=S)
    project = Project.create(root / "project", "Liege", grid, observations={"kind": "stacked", "path": "observations"})
    field = rng.uniform(0, 0.5, (n, 3 * S, 3 * S, 17)).astype(np.float32)
    for y, x in tiles:
        t = field[:, y * S:(y + 1) * S, x * S:(x + 1) * S]
        write_stacked(project.root / "observations" / f"{y}_{x}.tfrecords", stamps, t[..., :2], t[..., 2:4], t[..., 4:])
    return project, grid


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("map")
    keras.utils.set_random_seed(1)
    model = save_model(build_model(SMALL), SMALL, root / "m1.ercnn.h5", {"seed": 1})
    project, grid = stacked_grid_project(root, TILES)
    return {"root": root, "model": model, "project": project.root, "grid": grid}


def map_args(tiny, out, *extra):
    return [sys.executable, "-m", "ercnn_napari", "map", str(tiny["project"]), "--model", str(tiny["model"]),
            "--out", str(out), "--halo", "4", "--block", "1", "--progress", "json", *map(str, extra)]


def run_map(tiny, out, *extra):
    result = subprocess.run(map_args(tiny, out, *extra), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return [m for m in map(parse_message, result.stdout.splitlines()) if m is not None]


def outputs(out):
    """Everything a map run leaves, as arrays (for equality checks)."""
    with rasterio.open(out / "change_max.tif") as src:
        cog = src.read(1)
        layout = src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")
        overviews = src.overviews(1)
    group = zarr.open_group(str(out / "windows.zarr"), mode="r")
    return {"tiles": {p.name: np.load(p) for p in sorted((out / "tiles").glob("*.npy"))}, "cog": cog,
            "layout": layout, "overviews": overviews, "zarr0": group["0"][:],
            "windows": read_window_csv(out / "windows.csv"), "info": json.loads((out / "map.json").read_text())}


def finished_tiles(out):
    """Tile files under their final names (a temporary file of an atomic write starts with a dot)."""
    return [p for p in (out / "tiles").glob("*.npy") if not p.name.startswith(".")] if (out / "tiles").is_dir() else []


@pytest.fixture(scope="module")
def one_worker(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "map"
    messages = run_map(tiny, out, "--workers", "1")
    return out, messages


def test_one_worker_map_is_complete_and_right(tiny, one_worker):
    out, messages = one_worker
    assert isinstance(messages[0], Started) and isinstance(messages[-1], Finished)
    assert messages[-1].status == "completed" and messages[-1].summary["tiles_predicted"] == len(TILES)
    got = outputs(out)
    assert sorted(got["tiles"]) == sorted(f"{y}_{x}.npy" for y, x in TILES)
    assert got["info"]["status"] == "complete" and got["layout"] == "COG"
    n = len(got["windows"])
    assert n >= 3 and got["zarr0"].shape == (n, 3 * S, 3 * S)
    # each tile file is the halo prediction of that tile, in-process
    source = open_observations(Project.open(tiny["project"]))
    model, _ = load_model(tiny["model"])
    full = source.window_table((1, 1))
    table = full.select(full.every(5))
    assert got["windows"].equals(table) or np.array_equal(got["windows"].n_obs, table.n_obs)
    block = HaloReader(source, halo=4).block((1, 1))
    expected = predict_series([SharedStepModel(model)], block.series, table.start_index, table.n_obs,
                              mask_region=block.centre)[:, block.centre[0], block.centre[1]]
    assert np.abs(got["tiles"]["1_1.npy"] - expected).max() < 1e-6
    # the mosaics hold the tiles; the unmapped tile is NaN
    mosaic = np.full((n, 3 * S, 3 * S), np.nan, np.float32)
    for y, x in TILES:
        mosaic[:, y * S:(y + 1) * S, x * S:(x + 1) * S] = got["tiles"][f"{y}_{x}.npy"]
    assert np.array_equal(got["zarr0"], mosaic, equal_nan=True)
    peak = mosaic.max(axis=0)
    assert np.allclose(got["cog"], peak, equal_nan=True, atol=0)


def test_two_workers_equal_one_worker(tiny, one_worker, tmp_path):
    out = tmp_path / "two"
    messages = run_map(tiny, out, "--workers", "2")
    assert messages[-1].status == "completed"
    one, two = outputs(one_worker[0]), outputs(out)
    assert one["tiles"].keys() == two["tiles"].keys()
    for name in one["tiles"]:
        assert np.abs(one["tiles"][name] - two["tiles"][name]).max() < 1e-6, name
    assert np.allclose(one["cog"], two["cog"], atol=1e-6, equal_nan=True)
    assert np.allclose(one["zarr0"], two["zarr0"], atol=1e-6, equal_nan=True)


def test_killed_run_resumes_to_the_same_files(tiny, one_worker, tmp_path):
    out = tmp_path / "killed"
    process = subprocess.Popen(map_args(tiny, out, "--workers", "1"), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    deadline = time.monotonic() + 400
    try:
        while len(finished_tiles(out)) < 2:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the driver and its Dask workers, mid-run
        process.wait(30)
    written = len(finished_tiles(out))
    assert written < len(TILES) and not (out / "change_max.tif").exists()
    assert json.loads((out / "map.json").read_text())["status"] == "running"
    messages = run_map(tiny, out, "--workers", "1")
    assert messages[0].config["tiles_done_before"] == written >= 2
    assert messages[-1].summary["tiles_predicted"] == len(TILES) - messages[0].config["tiles_done_before"]
    one, resumed = outputs(one_worker[0]), outputs(out)
    assert one["tiles"].keys() == resumed["tiles"].keys()
    for name in one["tiles"]:
        assert np.abs(one["tiles"][name] - resumed["tiles"][name]).max() < 1e-6, name
    assert np.allclose(one["cog"], resumed["cog"], atol=1e-6, equal_nan=True)
    assert not list(out.glob(".*tmp*")) and not list((out / "tiles").glob(".*"))


@pytest.mark.parametrize("extra, message", [
    (["--halo", "9"], "larger than a tile"),
    (["--tiles", "2:2"], "no observations for tile(s) 2:2"),
])
def test_usage_errors_exit_2_with_one_line(tiny, tmp_path, extra, message):
    args = map_args(tiny, tmp_path / "bad")[:-6] + ["--progress", "text", *extra]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_the_driver_side_imports_no_tensorflow():
    """TensorFlow only inside the Dask workers: the map command, driver, tasks module and mosaics import none."""
    code = ("import sys\nimport ercnn_napari.cli.cmd_map, ercnn_napari.mapping.driver, "
            "ercnn_napari.mapping.block_task, ercnn_napari.mapping.assemble, ercnn_napari.mapping.gpus\n"
            "ercnn_napari.mapping.gpus.resolve_gpus('none')\n"
            "print(','.join(m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""
