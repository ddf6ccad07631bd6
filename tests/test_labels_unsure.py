"""The "unsure" label: stored beside the authors' files, excluded from the loss and every metric, counted."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.label_geotiff import UNSURE, UNSURE_NODATA
from ercnn_napari.core.metrics import confusion
from ercnn_napari.core.project import Project
from ercnn_napari.napari_plugin.label_session import LabelSession

GRID = TileGrid("EPSG:32631", 682000.0, 5612000.0, 10.0, 10.0, 2, 3)


def values() -> np.ndarray:
    label = np.zeros((32, 32), np.uint8)
    label[4:12, 4:12] = 1      # change
    label[20:24, 0:32] = UNSURE  # a row of houses the imagery does not tell about
    return label


@pytest.fixture
def project(tmp_path):
    return Project.create(tmp_path / "project", "Liege", GRID)


def test_unsure_is_stored_in_a_sidecar_and_as_geotiff_nodata_and_the_npy_reads_as_before(project):
    store = project.labels
    store.write((1, 2), values())
    npy = np.load(store.npy_path((1, 2)))  # what the authors' trainer reads
    assert npy.dtype == np.uint8 and set(np.unique(npy)) == {0, 1}
    assert npy[20:24].sum() == 0 and npy[4:12, 4:12].all(), "unsure is not change in the .npy"
    sidecar = np.load(store.unsure_path((1, 2)))
    assert np.array_equal(sidecar.astype(bool), values() == UNSURE)
    with rasterio.open(store.tif_path((1, 2))) as src:
        assert src.nodata == UNSURE_NODATA
        band = src.read(1)
        masked = src.read(1, masked=True)
    assert (band[20:24] == UNSURE_NODATA).all() and masked.mask[20:24].all() and not masked.mask[:20].any()
    assert np.array_equal(store.read((1, 2)), (values() == 1).astype(np.uint8)), "read() keeps the 0/1 contract"
    assert np.array_equal(store.read_values((1, 2)), values())
    assert store.read_detailed((1, 2)).source == "both"
    # clearing the unsure pixels removes the sidecar
    cleared = values()
    cleared[cleared == UNSURE] = 0
    store.write((1, 2), cleared)
    assert not store.unsure_path((1, 2)).exists()
    assert np.array_equal(store.read_values((1, 2)), cleared)


def test_unsure_survives_a_lost_npy_through_the_geotiff(project):
    store = project.labels
    store.write((0, 0), values())
    store.npy_path((0, 0)).unlink()
    assert np.array_equal(store.read_values((0, 0)), values())


def test_metrics_leave_unsure_pixels_out():
    label = np.array([[1.0, 0.0, -1.0, -1.0]])
    pred = np.array([[0.9, 0.1, 0.9, 0.1]])
    counts = confusion(pred, label)
    assert (counts.tp, counts.fp, counts.fn, counts.tn) == (1, 0, 0, 1)
    assert counts.total == 2


def test_training_labels_mark_unsure_as_minus_one(project):
    from ercnn_napari.ml.inference.evaluate import UNSURE_TARGET, load_labels

    project.labels.write((0, 1), values())
    label = load_labels(project.labels, [(0, 1)])[(0, 1)]
    assert label.dtype == np.float32
    assert (label[20:24] == UNSURE_TARGET).all() and label[4:12, 4:12].all()
    assert set(np.unique(label)) == {UNSURE_TARGET, 0.0, 1.0}


def test_loss_ignores_unsure_pixels_and_is_the_authors_without_them():
    pytest.importorskip("tensorflow")
    from ercnn_napari.ml.training.loss import tanimoto_complement_per_sample, tanimoto_complement_pooled

    rng = np.random.default_rng(0)
    label = (rng.random((2, 32, 32)) > 0.7).astype(np.float32)
    pred = rng.random((2, 32, 32)).astype(np.float32)
    unsure = label.copy()
    unsure[:, 10:20, :] = -1.0
    other = pred.copy()
    other[:, 10:20, :] = 1.0 - other[:, 10:20, :]  # predictions under the unsure pixels differ

    def by_hand(lab: np.ndarray, p: np.ndarray) -> float:  # the authors' formula on known pixels
        lab, p = lab[1:-1, 1:-1].astype(np.float64), p[1:-1, 1:-1].astype(np.float64)
        known = lab >= 0
        lab, p = lab[known], p[known]

        def t(a: np.ndarray, b: np.ndarray) -> float:
            return ((a * b).sum() + 1e-4) / ((a * a).sum() + (b * b).sum() - (a * b).sum() + 1e-4)
        return 1 - 0.5 * (t(p, lab) + t(1 - p, 1 - lab))

    plain = tanimoto_complement_per_sample(label, pred).numpy()
    np.testing.assert_allclose(plain, [by_hand(label[i], pred[i]) for i in range(2)], rtol=1e-5)
    masked = tanimoto_complement_per_sample(unsure, pred).numpy()
    np.testing.assert_allclose(masked, [by_hand(unsure[i], pred[i]) for i in range(2)], rtol=1e-5)
    np.testing.assert_allclose(masked, tanimoto_complement_per_sample(unsure, other).numpy(), rtol=1e-6)
    np.testing.assert_allclose(float(tanimoto_complement_pooled(unsure, pred)),
                               float(tanimoto_complement_pooled(unsure, other)), rtol=1e-6)
    assert not np.allclose(plain, masked)


def test_info_counts_unsure(project):
    from ercnn_napari.cli.cmd_info import format_summary, summarize

    project.labels.write((0, 0), values())
    project.labels.write((0, 1), (values() == 1).astype(np.uint8))
    summary = summarize(Project.open(project.root))
    assert summary["labels"] == {"tiles": 2, "with_change": 2, "with_unsure": 1, "unsure_pixels": 4 * 32}
    assert "1 with unsure pixels (128)" in format_summary(summary)


def test_session_saves_painted_unsure_and_undo_to_empty_unlabels(project):
    session = LabelSession(project)
    rows, cols = GRID.tile_slices((1, 1))
    session.mosaic[rows, cols] = values()
    assert session.unsure_count() == 4 * 32
    assert session.save().saved == [(1, 1)]
    assert np.array_equal(project.labels.read_values((1, 1)), values())
    # "undo" back to before the first stroke: the tile was unlabelled, so it is unlabelled again
    session.mosaic[rows, cols] = 0
    assert session.save().saved == [(1, 1)]
    assert not project.labels.exists((1, 1)) and (1, 1) not in session.labelled
    # a tile marked labelled on purpose stays labelled ("looked, no change") when emptied
    session.mark_labelled((0, 2))
    rows, cols = GRID.tile_slices((0, 2))
    session.mosaic[rows, cols] = values()
    session.save()
    session.mosaic[rows, cols] = 0
    session.save()
    assert project.labels.exists((0, 2)) and project.labels.read_values((0, 2)).sum() == 0
    # and the viewer reloads unsure pixels from disk
    assert np.array_equal(LabelSession(Project.open(project.root)).tile_array((1, 1)), np.zeros((32, 32)))
