"""Project folders: create/open, the project file, inference from the authors' layout, reference pairs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from ercnn_napari.core.errors import LabelError, ProjectError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.project import Project
from ercnn_napari.core.project_file import PROJECT_FILE_NAME, read_project_file

UTM31 = "EPSG:32631"
GRID = TileGrid(UTM31, 680000.0, 5610000.0, 10.0, 10.0, 6, 8)


def label(seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((32, 32)) > 0.8).astype(np.uint8)


# ---------------------------------------------------------------------------- create / open
def test_create_then_open_round_trip(tmp_path):
    obs = {"kind": "stacked", "path": "observations", "window_csv": "observations/windows.csv"}
    created = Project.create(tmp_path, "Liege", GRID, period=("2017-01-01", "2021-01-16"), observations=obs)
    assert (tmp_path / "ground_truth").is_dir() and (tmp_path / "training" / "numpy_ground_truth").is_dir()
    for opened in (Project.open(tmp_path), Project.open(tmp_path / PROJECT_FILE_NAME)):
        assert opened.site == "Liege" and opened.grid == GRID and opened.root == tmp_path
        assert opened.period == ("2017-01-01", "2021-01-16") and opened.period.start == "2017-01-01"
        assert opened.observations_config == obs and opened.warnings == [] and not opened.inferred
        assert opened.observations_path() == tmp_path / "observations"
        assert opened.window_csv_path() == tmp_path / "observations" / "windows.csv"
    data = json.loads((tmp_path / PROJECT_FILE_NAME).read_text())
    assert data["format"] == "ercnn-napari-project" and data["version"] == 1 and data["grid"]["crs"] == UTM31
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(tmp_path, "Liege", GRID)
    Project.create(tmp_path, "Other", GRID, overwrite=True)
    assert Project.open(tmp_path).site == "Other" and created.site == "Liege"


def test_unknown_keys_are_kept_and_observations_can_be_set(tmp_path):
    Project.create(tmp_path, "Liege", GRID)
    path = tmp_path / PROJECT_FILE_NAME
    data = json.loads(path.read_text())
    data["notes"] = "kept"
    path.write_text(json.dumps(data))
    project = Project.open(tmp_path)
    project.set_observations({"kind": "stage3", "path": "/data/liege/training"})
    assert json.loads(path.read_text())["notes"] == "kept"
    assert read_project_file(path).observations == {"kind": "stage3", "path": "/data/liege/training"}
    with pytest.raises(ProjectError, match="kind must be one of"):
        project.set_observations({"kind": "tiff", "path": "x"})


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: {**d, "format": "something-else"}, "not an ercnn-napari-project file"),
    (lambda d: {**d, "version": 99}, "version 99 is not supported"),
    (lambda d: {**d, "site": "a/b"}, "must not contain"),
    (lambda d: {**d, "period": {"start": "2020-01-01", "end": "2017-01-01"}}, "is not after"),
    (lambda d: {**d, "period": {"start": "yesterday", "end": "2017-01-01"}}, "ISO dates"),
    (lambda d: {**d, "observations": {"kind": "stacked"}}, "needs a 'path'"),
    (lambda d: {**d, "grid": {**d["grid"], "crs": "EPSG:0"}}, "coordinate reference system"),
    (lambda d: {**d, "grid": {**d["grid"], "rows": -2}}, "rows must be a positive integer"),
    (lambda d: {**d, "grid": {**d["grid"], "cols": "two"}}, "cols must be a positive integer"),
    (lambda d: {**d, "grid": {**d["grid"], "origin_x": "east"}}, "origin_x must be a finite number"),
    (lambda d: {k: v for k, v in d.items() if k != "grid"}, "lacks the 'grid'"),
])
def test_bad_project_files_name_the_file(tmp_path, mutate, message):
    Project.create(tmp_path, "Liege", GRID)
    path = tmp_path / PROJECT_FILE_NAME
    changed = mutate(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(ProjectError, match=message) as info:
        Project.open(tmp_path)
    assert info.value.path == str(path)


def test_open_missing_folder(tmp_path):
    with pytest.raises(ProjectError, match="does not exist") as info:
        Project.open(tmp_path / "nowhere")
    assert info.value.path.endswith("nowhere")


# ---------------------------------------------------------------------------- inference
def authors_folder(tmp_path):
    """A folder as downloaded from the authors: labels, lists, no ercnn_project.json."""
    Project.create(tmp_path, "Liege", GRID).labels.write((4, 6), label(1))
    project = Project.open(tmp_path)
    project.labels.write((1, 2), label(2))
    project.labels.write((0, 5), label(3))
    v1 = tmp_path / "training" / "V1"
    v1.mkdir(parents=True)
    (v1 / "tiles_train_cv1.txt").write_text("1:2\n0:5\n")
    (v1 / "tiles_val_cv1.txt").write_text("4:6\n")
    (tmp_path / PROJECT_FILE_NAME).unlink()
    return tmp_path


def test_settings_are_inferred_from_the_authors_layout(tmp_path):
    project = Project.open(authors_folder(tmp_path))
    assert project.inferred and project.site == "Liege"
    grid = project.grid
    assert grid.crs == UTM31 and (grid.origin_x, grid.origin_y) == (GRID.origin_x, GRID.origin_y)
    assert (grid.pixel_width, grid.pixel_height) == (10.0, 10.0)
    assert (grid.rows, grid.cols) == (5, 7)  # largest indices 4 and 6
    text = " | ".join(project.warnings)
    assert "ercnn_project.json is missing" in text and "5 rows x 7 columns" in text
    assert "period not recorded" in text and "no observation TFRecords" in text
    assert project.tiles_with_labels() == [(0, 5), (1, 2), (4, 6)]
    assert np.array_equal(project.labels.read((1, 2)), label(2))
    assert project.split("V1").val == [(4, 6)]
    project.save()
    assert Project.open(tmp_path).grid == grid and not Project.open(tmp_path).inferred


def test_inference_reports_misaligned_labels_and_several_sites(tmp_path):
    authors_folder(tmp_path)
    npy_dir = tmp_path / "training" / "numpy_ground_truth"
    np.save(npy_dir / "Mariupol_0_0.npy", np.zeros((32, 32)))
    tif = tmp_path / "ground_truth" / "2:2" / "2:2.tif"
    tif.parent.mkdir()
    with rasterio.open(tif, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint8", crs=UTM31,
                       transform=from_origin(GRID.origin_x + 640 + 55, GRID.origin_y - 640, 10, 10)) as dst:
        dst.write(np.zeros((32, 32), np.uint8), 1)
    project = Project.open(tmp_path)
    text = " | ".join(project.warnings)
    assert "several sites" in text and "'Liege'" in text
    assert "tiles 2:2 do not line up" in text
    assert project.grid.origin_x == GRID.origin_x


def test_inference_from_lonlat_labels_warns_that_the_grid_is_approximate(tmp_path):
    tif = tmp_path / "ground_truth" / "3:4" / "3:4.tif"
    tif.parent.mkdir(parents=True)
    with rasterio.open(tif, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint8", crs="EPSG:4326",
                       transform=from_origin(5.5, 50.6, 0.00014, 0.00009)) as dst:
        dst.write(np.zeros((32, 32), np.uint8), 1)
    project = Project.open(tmp_path)
    assert project.grid.crs == "EPSG:4326" and project.grid.is_geographic
    assert project.grid.origin_x == pytest.approx(5.5 - 4 * 32 * 0.00014)
    assert any("approximate" in w for w in project.warnings)
    assert any("site name taken from the folder name" in w for w in project.warnings)


def test_folder_without_any_georeferenced_label_cannot_be_inferred(tmp_path):
    (tmp_path / "training" / "numpy_ground_truth").mkdir(parents=True)
    np.save(tmp_path / "training" / "numpy_ground_truth" / "Liege_1_1.npy", np.zeros((32, 32)))
    with pytest.raises(ProjectError, match="cannot infer the tile grid") as info:
        Project.open(tmp_path)
    assert info.value.path == str(tmp_path)


def test_labels_outside_the_grid_are_reported_on_open(tmp_path):
    Project.create(tmp_path, "Liege", GRID)
    npy_dir = tmp_path / "training" / "numpy_ground_truth"
    np.save(npy_dir / "Liege_9_1.npy", np.zeros((32, 32)))
    project = Project.open(tmp_path)
    assert any("outside the 6 x 8 grid: 9:1" in w for w in project.warnings)
    with pytest.raises(LabelError, match="tile 9:1 is outside the project grid") as info:
        project.labels.read((9, 1))
    assert info.value.path == str(npy_dir / "Liege_9_1.npy")


# ---------------------------------------------------------------------------- reference pairs
def test_reference_pairs(tmp_path):
    project = Project.create(tmp_path, "Liege", GRID)
    rgb = np.zeros((40, 40, 3), np.uint8)
    for year in (2017, 2020):
        project.write_reference_image((0, 1), year, rgb)
    project.write_reference_image((1, 1), 2020, rgb)            # only an after image
    project.write_reference_image((2, 2), 2016, rgb)            # only a before image
    for year in (2015, 2017, 2021):
        project.write_reference_image((3, 3), year, rgb)        # earliest and latest win
    (project.tile_dir((3, 3)) / "notes.png").write_bytes(b"")   # not a year: ignored
    project.labels.write((4, 4), np.zeros((32, 32)))            # labelled, no images at all
    pair = project.reference_pair((0, 1))
    assert pair.complete and (pair.before_year, pair.after_year) == (2017, 2020)
    assert pair.before.name == "2017.png" and pair.problem is None
    assert project.reference_pair((1, 1)).before is None
    assert project.reference_pair((1, 1)).problem == "only the after image (2020) exists"
    assert project.reference_pair((2, 2)).problem == "only the before image (2016) exists"
    assert (project.reference_pair((3, 3)).before_year, project.reference_pair((3, 3)).after_year) == (2015, 2021)
    assert project.reference_pair((5, 5)) == (project.reference_pair((5, 5)).__class__(None, None, None, None))
    assert project.tiles_with_reference() == [(0, 1), (1, 1), (2, 2), (3, 3)]
    assert project.tiles_with_incomplete_reference() == {
        (1, 1): "only the after image (2020) exists",
        (2, 2): "only the before image (2016) exists",
        (4, 4): "no reference images",
    }
    import imageio.v3 as iio
    assert iio.imread(pair.before).shape == (40, 40, 3)
    with pytest.raises(ProjectError, match="uint8"):
        project.write_reference_image((0, 0), 2017, np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ProjectError, match="outside the project grid"):
        project.write_reference_image((6, 0), 2017, rgb)


# ---------------------------------------------------------------------------- observations
def test_observation_files_stacked_and_stage3(tmp_path):
    project = Project.create(tmp_path, "Liege", GRID)
    assert project.tiles_with_observations() == []
    stacked = tmp_path / "observations"
    stacked.mkdir()
    for name in ("0_1.tfrecords", "Liege_2_3.tfrecords", "Mariupol_4_4.tfrecords", "readme.tfrecords"):
        (stacked / name).write_bytes(b"")
    project.set_observations({"kind": "stacked", "path": "observations"})
    assert project.tiles_with_observations() == [(0, 1), (2, 3)]
    for version, part in (("V1", "train"), ("V2", "val")):
        folder = tmp_path / "training" / version / "data" / part
        folder.mkdir(parents=True)
        (folder / "Liege_5_5.tfrecords").write_bytes(b"")
    project.set_observations({"kind": "stage3", "path": "training"})
    files = project.observation_files()
    assert list(files) == [(5, 5)] and files[(5, 5)].parts[-4:-1] == ("V1", "data", "train")


def test_inferred_observations(tmp_path):
    authors_folder(tmp_path)
    folder = tmp_path / "training" / "V1" / "data" / "train"
    folder.mkdir(parents=True)
    (folder / "Liege_1_2.tfrecords").write_bytes(b"")
    project = Project.open(tmp_path)
    assert project.observations_config == {"kind": "stage3", "path": "training"}
    assert project.tiles_with_observations() == [(1, 2)]
    (tmp_path / "observations").mkdir()
    (tmp_path / "observations" / "1_2.tfrecords").write_bytes(b"")
    (tmp_path / "observations" / "windows.csv").write_text("ID,Start Time,End Time,# Observations\n")
    assert Project.open(tmp_path).observations_config == {
        "kind": "stacked", "path": "observations", "window_csv": "observations/windows.csv"}


def test_project_modules_do_not_import_tensorflow_or_qt():
    code = ("import sys, ercnn_napari.core.project, ercnn_napari.core.polygons, ercnn_napari.core.splits, "
            "ercnn_napari.cli.cmd_info; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'PyQt6', 'qtpy', 'napari')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
