"""Helpers for GUI tests that need files a worker would write (built here without TensorFlow)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from ercnn_napari.core.tiles import format_tile_id, tile_stem
from ercnn_napari.core.window_table import WindowTable, write_window_csv

DAY = 86400.0
T0 = dt.datetime(2017, 1, 1, tzinfo=dt.timezone.utc).timestamp()


def write_prediction_folder(folder: Path, grid, tiles, n_windows: int = 4, seed: int = 0) -> dict:
    """A prediction folder in the predict worker's format: probabilities rising window by window."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for tile in tiles:
        probs = np.zeros((n_windows, 32, 32), np.float32)
        for k in range(n_windows):
            probs[k] = rng.uniform(0, 0.3, (32, 32))
            probs[k, 10:20, 10:20] = (k + 1) / n_windows  # change appearing over time
        np.save(folder / f"{tile_stem(tile)}.npy", probs)
        starts = T0 + np.arange(n_windows) * 10 * DAY
        ids = 1 + 5 * np.arange(n_windows)  # the authors number every window; a stride of 5 keeps 1, 6, 11, ...
        table = WindowTable.build(ids, np.full(n_windows, 40), starts, starts + 182 * DAY)
        write_window_csv(table, folder / f"{tile_stem(tile)}_windows.csv")
        arrays[tile] = probs
    info = {"format": "ercnn-napari-prediction", "models": ["/x/runs/run1/model.ercnn.h5"], "combine": "mean",
            "crs": grid.crs, "grid": grid.to_dict(), "tiles": [format_tile_id(t) for t in tiles]}
    (folder / "prediction.json").write_text(json.dumps(info))
    return arrays


# ---- opening the plugin the way napari does ------------------------------------------------------

PLUGIN = "ercnn-napari"
MANIFEST = Path(__file__).resolve().parents[2] / "ercnn_napari" / "napari.yaml"


def dock_display_names() -> dict[str, str]:
    """{"label": "Label change", ...}: the widget display names napari's Plugins menu shows."""
    import yaml

    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    commands = {c["id"]: c["python_name"] for c in manifest["contributions"]["commands"]}
    names = {}
    for widget in manifest["contributions"]["widgets"]:
        module = commands[widget["command"]].split(":")[0].rsplit(".", 1)[-1]  # label_dock, finetune_dock, ...
        names[module.removesuffix("_dock")] = widget["display_name"]
    return names


def open_plugin_dock(viewer, key: str):
    """Open one of our docks through napari (npe2 creates it and hands it a viewer proxy)."""
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, dock_display_names()[key])
    return widget


def open_plugin_docks(viewer, project_root, order: str):
    """The three docks and the project, opened through napari in ``order`` ("docks-first"/"project-first")."""
    if order == "project-first":
        viewer.open(str(project_root), plugin=PLUGIN)
    docks = [open_plugin_dock(viewer, key) for key in ("label", "finetune", "review")]
    if order == "docks-first":
        viewer.open(str(project_root), plugin=PLUGIN)
    return docks
