"""The Project dock: "New project from AoI…" and "Add observations…" as real worker processes."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
from pathlib import Path

import pytest

from ercnn_napari.core.messages import Started
from ercnn_napari.napari_plugin.project_dock import ProjectDock, ingest_args, new_project_args

RUN_TIMEOUT_MS = 240_000


def _has_command(name: str) -> bool:
    return importlib.util.find_spec(f"ercnn_napari.cli.cmd_{name}") is not None


needs_new_and_ingest = pytest.mark.skipif(
    not (_has_command("new") and _has_command("ingest")),
    reason="the `new` and `ingest` commands are not in this checkout (they come with the ingest branch)")


@pytest.fixture
def dock(make_napari_viewer):
    viewer = make_napari_viewer()
    _widget, dock = viewer.window.add_plugin_dock_widget("ercnn-napari", "Project")
    yield viewer, dock
    if dock.worker is not None and dock.worker.is_running():
        dock.worker.cancel()
        dock.worker.wait(20_000)


def test_dock_comes_from_the_manifest_and_builds_the_commands(dock, small_project):
    viewer, dock = dock
    assert isinstance(dock, ProjectDock)
    assert dock.new_button.text() == "New project from AoI…" and dock.ingest_button.text() == "Add observations…"
    dock.aoi_edit.setText("/data/aoi.geojson")
    dock.new_folder_edit.setText("/data/Mariupol")
    dock.site_edit.setText("Mariupol")
    dock.crs_box.setCurrentText("EPSG:32637")
    dock.start_edit.setText("2021-01-01")
    assert new_project_args("/data/Mariupol", "/data/aoi.geojson", "Mariupol", "EPSG:32637", "2021-01-01", "") == [
        "new", "/data/Mariupol", "--aoi", "/data/aoi.geojson", "--site", "Mariupol", "--start", "2021-01-01",
        "--crs", "EPSG:32637"]
    assert new_project_args("p", "a.shp") == ["new", "p", "--aoi", "a.shp"], "empty fields keep the defaults"
    assert new_project_args("p", "a.shp", crs="EPSG:32631", authors_grid=True) == [
        "new", "p", "--aoi", "a.shp", "--authors-grid"]
    dock.authors_grid.setChecked(True)
    assert not dock.crs_box.isEnabled()
    dock.authors_grid.setChecked(False)
    assert ingest_args("p", ["obs", "earth-search/sentinel-2-l1c"]) == [
        "ingest", "p", "obs", "earth-search/sentinel-2-l1c", "--progress", "json"]
    assert ingest_args("p", ["obs"], workers=1) == ["ingest", "p", "obs", "--workers", "1", "--progress", "json"]
    _widget, finetune = viewer.window.add_plugin_dock_widget("ercnn-napari", "Fine-tune")
    assert finetune.context is dock.context, "docks opened from the Plugins menu share one context"
    dock.context.set_project(small_project)
    assert dock.project_edit.text() == str(small_project.root), "Add observations targets the open project"
    dock.add_source("/data/obs")
    dock.add_source("/data/obs")
    assert dock.sources.count() == 1


def test_a_failing_command_is_one_sentence(dock, qtbot, tmp_path, monkeypatch):
    _viewer, dock = dock
    shown: list[str] = []
    monkeypatch.setattr("ercnn_napari.napari_plugin.project_dock.show_error", shown.append)
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text("this is not a polygon")
    dock.aoi_edit.setText(str(aoi))
    dock.new_folder_edit.setText(str(tmp_path / "project"))
    dock.start_new()
    assert dock.running and not dock.new_button.isEnabled() and dock.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: dock.result is not None, timeout=RUN_TIMEOUT_MS)
    assert dock.result.status == "failed"
    assert len(shown) == 1 and "\n" not in shown[0] and "Traceback" not in shown[0]
    assert not shown[0].startswith("ercnn-napari: error"), "the CLI's prefix is not repeated to the analyst"
    assert dock.new_button.isEnabled() and not dock.cancel_button.isEnabled()
    assert not (tmp_path / "project" / "ercnn_project.json").exists()


@needs_new_and_ingest
def test_cancel_stops_an_ingest_waiting_on_a_catalogue(dock, qtbot, small_project):
    _viewer, dock = dock
    silent = socket.socket()  # a STAC API that accepts the connection and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        dock.project_edit.setText(str(small_project.root))
        dock.add_source(f"http://127.0.0.1:{silent.getsockname()[1]}/stac")
        dock.workers.setValue(1)
        dock.start_ingest()
        worker = dock.worker
        qtbot.waitUntil(lambda: any(isinstance(m, Started) for m in worker.messages), timeout=RUN_TIMEOUT_MS)
        pid = worker.pid()
        dock.cancel()
        qtbot.waitUntil(lambda: dock.result is not None, timeout=30_000)
        assert dock.result.status == "cancelled"
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert dock.ingest_button.isEnabled()
    finally:
        silent.close()


@needs_new_and_ingest
def test_new_project_from_an_aoi_then_observations_from_a_stac_catalogue(dock, qtbot, tmp_path):
    from rasterio.warp import transform_bounds

    from ercnn_napari.core.project import Project
    from tests.stac_catalog import GRID_ORIGIN, UTM, build_catalog

    viewer, dock = dock
    catalog = build_catalog(tmp_path / "stac")
    x0, y0 = GRID_ORIGIN
    west, south, east, north = transform_bounds(UTM, "EPSG:4326", x0 + 5, y0 - 645, x0 + 645, y0 - 5)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    folder = tmp_path / "Town"
    dock.aoi_edit.setText(str(aoi))
    dock.new_folder_edit.setText(str(folder))
    dock.site_edit.setText("Town")
    dock.crs_box.setCurrentText(UTM)
    dock.start_new()
    qtbot.waitUntil(lambda: dock.result is not None, timeout=RUN_TIMEOUT_MS)
    assert dock.result.status == "completed", dock.result.error_message
    assert Path(dock.project_edit.text()) == folder and len(viewer.layers) > 0
    layers_before = len(viewer.layers)
    dock.add_source(str(catalog))
    dock.workers.setValue(1)  # a 2 x 2 tile AoI: one process beats starting a cluster
    dock.start_ingest()
    qtbot.waitUntil(lambda: dock.result is not None, timeout=RUN_TIMEOUT_MS)
    assert dock.result.status == "completed", dock.result.error_message
    assert dock.result.finished is not None
    project = Project.open(folder)
    assert project.tiles_with_observations(), "the stacked series of the tiles were written"
    assert len(viewer.layers) >= layers_before
