"""Manifest, reader and writer: geo metadata survives the round trip; readers decline, never raise."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import rasterio
from affine import Affine
from gui_helpers import write_prediction_folder

from ercnn_napari.napari_plugin.reader import get_reader, read_prediction_folder
from ercnn_napari.napari_plugin.writer import write_labels


def test_manifest_validates():
    result = subprocess.run([sys.executable, "-m", "npe2", "validate", "ercnn-napari"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_reader_declines_what_it_cannot_read(tmp_path):
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff")
    assert get_reader(str(plain)) is None  # no CRS: napari's own reader handles it
    assert get_reader(str(broken)) is None
    assert get_reader(str(tmp_path / "missing.tif")) is None
    assert get_reader(str(tmp_path)) is None  # a folder that is no project
    assert get_reader([str(plain), str(broken)]) is None


def test_project_folder_reads_as_layers(small_project):
    reader = get_reader(str(small_project.root))
    assert reader is not None
    layers = reader(str(small_project.root))
    kinds = [(kwargs["name"], kind) for _data, kwargs, kind in layers]
    assert kinds == [("before 2016", "image"), ("after 2020", "image"), ("tiles", "shapes"),
                     ("labels Liege", "labels")]
    labels, kwargs, _ = layers[-1]
    assert labels.shape == (64, 96) and labels[8:16, 40:48].all()
    assert kwargs["metadata"]["crs"] == "EPSG:32631"
    assert kwargs["metadata"]["ercnn_project"] == str(small_project.root)
    names = layers[2][1]["features"]["tile"]
    assert names[:3] == ["0:0", "0:1", "0:2"]


def test_label_geotiff_round_trip_with_crs(small_project, make_napari_viewer, tmp_path):
    tif = small_project.labels.tif_path((0, 1))
    viewer = make_napari_viewer()
    layers = viewer.open(str(tif), plugin="ercnn-napari")
    layer = layers[0]
    assert layer._type_string == "labels"
    meta = layer.metadata
    assert "32631" in meta["crs"] or "UTM zone 31N" in meta["crs"]
    assert Affine(*meta["transform"]) == small_project.grid.tile_transform((0, 1))
    assert meta["source"] == str(tif)
    # anchored on its project: the tile sits 320 m east of the grid origin in the display frame
    assert tuple(layer.translate) == (5.0, 325.0)
    assert layer.data[8:16, 8:16].all()
    # write it back as a GeoTIFF elsewhere: same georeference and content
    out = tmp_path / "copy.tif"
    written = write_labels(str(out), layer.data, {"metadata": meta, "name": layer.name})
    assert written == [str(out)]
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32631
        assert src.transform == small_project.grid.tile_transform((0, 1))
        np.testing.assert_array_equal(src.read(1), layer.data)


def test_project_labels_writer_saves_tiles_in_place(small_project, tmp_path):
    layers = get_reader(str(small_project.root))(str(small_project.root))
    labels, kwargs, _ = layers[-1]
    edited = labels.copy()
    edited[40:42, 70:72] = 1  # tile (1, 2)
    written = write_labels(str(tmp_path / "mosaic.tif"), edited, kwargs)
    assert str(small_project.labels.npy_path((1, 2))) in written
    assert small_project.labels.read((1, 2)).sum() == 4
    with rasterio.open(tmp_path / "mosaic.tif") as src:
        assert src.transform == small_project.grid.transform and src.shape == (64, 96)


def test_prediction_folder_reads_as_dated_layers(small_project, tmp_path):
    folder = tmp_path / "pred"
    write_prediction_folder(folder, small_project.grid, [(1, 0)], n_windows=2)
    assert get_reader(str(folder)) is read_prediction_folder
    (stack, stack_kwargs, kind), (max_map, _max_kwargs, _) = read_prediction_folder(str(folder))
    assert kind == "image" and stack.shape == (2, 32, 32) and max_map.shape == (32, 32)
    assert stack_kwargs["translate"] == (0.0, 325.0, 5.0)
    assert [w["n_obs"] for w in stack_kwargs["metadata"]["windows"]] == [40, 40]
