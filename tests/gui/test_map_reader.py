"""A whole-AoI map folder opens in the viewer lazily: multiscale dask layers with the map's values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.window_table import WindowTable
from ercnn_napari.mapping.assemble import assemble
from ercnn_napari.mapping.plan import MapPlan, tile_path, write_map_info
from ercnn_napari.napari_plugin.reader import get_reader

ROWS, COLS, S, N = 12, 20, 32, 3  # 384 x 640 pixels: more than one pyramid level and COG overview


def make_map(out: Path) -> np.ndarray:
    grid = TileGrid("EPSG:32631", 682000.0, 5612000.0, 10.0, 10.0, ROWS, COLS, S)
    rng = np.random.default_rng(4)
    tiles = [(y, x) for y in range(ROWS) for x in range(COLS) if (y + x) % 7]
    mosaic = np.full((N, ROWS * S, COLS * S), np.nan, np.float32)
    for tile in tiles:
        probs = rng.uniform(0, 1, (N, S, S)).astype(np.float32)
        tile_path(out, tile).parent.mkdir(parents=True, exist_ok=True)
        np.save(tile_path(out, tile), probs)
        mosaic[:, tile[0] * S:(tile[0] + 1) * S, tile[1] * S:(tile[1] + 1) * S] = probs
    table = WindowTable.build([1, 6, 11], [40, 41, 42], 1.4832e9 + np.arange(3) * 1e6, 1.4832e9 + np.arange(3) * 1e6 + 1.5e7)
    plan = MapPlan("project", out, ["m.h5"], tiles, tile_size=S, extra={"grid": grid.to_dict(), "crs": grid.crs})
    write_map_info(out, plan, "complete")
    assemble(out, grid, tiles, table)
    return mosaic


def test_map_folder_opens_lazily_and_shows_the_map(tmp_path, make_napari_viewer):
    import dask.array as da

    mosaic = make_map(tmp_path / "map")
    reader = get_reader(str(tmp_path / "map"))
    assert reader is not None
    (stack, stack_kw, _), (peak, peak_kw, _) = reader(str(tmp_path / "map"))
    assert stack_kw["multiscale"] and len(stack) >= 2 and all(isinstance(a, da.Array) for a in stack)
    assert len(peak) >= 2 and all(isinstance(a, da.Array) for a in peak)
    assert np.array_equal(np.asarray(stack[0][1, :S * 2, :S * 3]), mosaic[1, :S * 2, :S * 3], equal_nan=True)
    expected_peak = np.where(np.isnan(mosaic).all(0), np.nan, np.nanmax(np.nan_to_num(mosaic, nan=-1), 0))
    assert np.allclose(np.asarray(peak[0]), expected_peak, equal_nan=True)
    level1 = np.asarray(stack[1][0])   # max-pooled 2x2: a change stays visible zoomed out
    assert np.isclose(level1[0, S // 2], np.nanmax(mosaic[0, :2, S:S + 2]))   # tile (0, 1)
    assert np.isnan(level1[0, 0])                                              # tile (0, 0) is not mapped
    viewer = make_napari_viewer()
    layer = viewer.add_image(stack, **stack_kw)
    viewer.add_image(peak, **peak_kw)
    assert layer.multiscale and layer.metadata["ercnn_role"] == "prediction"
    assert len(layer.metadata["windows"]) == N


def test_map_action_in_the_review_dock(make_napari_viewer, small_project, tmp_path):
    """The "Map the whole AoI" action: its button sits in the dock, its command is the map CLI, its result shows."""
    from ercnn_napari.napari_plugin.label_dock import LabelDock
    from ercnn_napari.napari_plugin.map_action import MapAction, map_args
    from ercnn_napari.napari_plugin.review_dock import ReviewDock

    viewer = make_napari_viewer()
    label = LabelDock(viewer)
    label.open_project(small_project.root)
    review = ReviewDock(viewer)
    action = MapAction(review)
    assert action.button.text() == "Map the whole AoI" and review.layout().indexOf(action.button) >= 0
    args = map_args(small_project.root, ["a.h5", "b.h5"], "max", 5, tmp_path / "out")
    assert args[:2] == ["map", str(small_project.root)] and args.count("--model") == 2
    assert args[args.index("--progress") + 1] == "json" and "--all" in args
    review.select_only([])
    action.start()                      # no model ticked: a warning, no worker
    assert action.worker is None
    make_map(tmp_path / "map")
    stack_layer, max_layer = action.show(tmp_path / "map")
    assert stack_layer.multiscale and stack_layer.metadata["ercnn_role"] == "prediction"
    assert not max_layer.visible
