"""Fine-tune and review docks, opened as napari opens them, driving real worker processes (tiny preset / model)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from gui_helpers import open_plugin_docks

from ercnn_napari.core.messages import Epoch, Finished, Preflight, Stage, Started, Step
from ercnn_napari.core.project import Project
from ercnn_napari.napari_plugin.finetune_dock import FinetuneDock
from ercnn_napari.napari_plugin.prediction_layers import STACK_ROLE

RUN_TIMEOUT_MS = 900_000  # a busy 2-core machine: TensorFlow start-up alone took minutes


@pytest.fixture
def order() -> str:
    return "docks-first"


@pytest.fixture
def docks(make_napari_viewer, worker_project, order):
    """Label, Fine-tune and Review docks from napari's manifest, the project through File › Open."""
    viewer = make_napari_viewer()
    label, finetune, review = open_plugin_docks(viewer, worker_project, order)
    assert label.project is not None and finetune.context.project is not None
    finetune.set_preset("tiny")
    finetune.device.setCurrentIndex(finetune.device.findData("none"))
    yield viewer, label, finetune, review
    for worker in (finetune.worker, review.worker):
        if worker is not None and worker.is_running():
            worker.cancel()
            worker.wait(20_000)


@pytest.mark.parametrize("order", ["docks-first", "project-first"])
def test_finetune_runs_to_the_end_then_predicts(docks, worker_project, qtbot, monkeypatch, order):
    viewer, label, finetune, review = docks
    assert finetune.start_button.isEnabled(), finetune.why_label.text()
    # a stroke not yet autosaved must reach disk before the trainer reads the labels
    label.labels_layer.data_setitem((np.array([0, 0]), np.array([0, 1])), 1)
    finetune.start()
    assert label.unsaved_tiles == [], "labels must be flushed before the run starts"
    assert finetune.running
    # the dock's own bar shows the stages: TensorFlow start-up first, then the worker's stages
    assert not finetune.run_progress.isHidden()
    assert finetune.run_progress.text.startswith("starting the trainer (TensorFlow start-up)")
    seen = []
    finetune.worker.message.connect(lambda _m: seen.append(finetune.run_progress.text))
    qtbot.waitUntil(lambda: finetune.result is not None, timeout=RUN_TIMEOUT_MS)
    assert finetune.result.status == "completed", finetune.result.error_message
    kinds = {type(m) for m in finetune.worker.messages}
    assert {Preflight, Started, Stage, Step, Epoch, Finished} <= kinds
    stages = [m.name for m in finetune.worker.messages if isinstance(m, Stage)]
    assert stages[0] == "building the model" and "training" in stages
    assert any(t.startswith("building the model (stage 1 of") for t in seen)
    assert any(t.startswith("training (stage") and "left)" in t for t in seen), seen  # steps with an ETA
    assert finetune.run_progress.isHidden()
    assert len(finetune.loss_plot.train_x) == 2 and len(finetune.loss_plot.val_x) == 1
    assert "GiB" in finetune.preflight_label.text()
    run_dir = finetune.run_dir
    assert (run_dir / "model.ercnn.h5").is_file()
    inputs = json.loads((run_dir / "inputs.json").read_text())
    assert "0:0" in json.dumps(inputs)
    # evaluation table: overall + one row per tile for val and test; clicking jumps to the tile
    rows = finetune.results.rows
    assert [(r.set_name, r.tile) for r in rows] == [("val", None), ("val", (1, 1)), ("test", None),
                                                      ("test", (1, 2))]
    finetune.results.cellClicked.emit(3, 0)
    assert label.context.current_tile == (1, 2)
    if order == "docks-first":
        # "predict visible tiles" hands the run to the review dock's worker; the tiny preset's network has
        # 12 time steps, fewer than any real window holds, so the worker refuses it in one sentence
        shown = []
        monkeypatch.setattr("ercnn_napari.napari_plugin.review_dock.show_error", shown.append)
        finetune.predict_visible()
        assert review.selected_models() == [str(run_dir)]
        assert review.running
        qtbot.waitUntil(lambda: review.result is not None, timeout=RUN_TIMEOUT_MS)
        assert review.result.status == "failed"
        assert "12 time steps" in shown[0] and "Traceback" not in shown[0]
        return
    # project first: predict from the Review dock with a full-length network; the view stays put
    review.select_only([str(worker_project / "small_model_0.ercnn.h5")])
    review.set_tiles([(1, 2)])
    review.stride.setValue(10)
    label.context.jump_to((1, 2))
    camera = label.context.camera
    before = (tuple(camera.center[-2:]), camera.zoom)
    review.start()
    assert review.run_progress.text.startswith("starting the predictor")
    qtbot.waitUntil(lambda: review.result is not None, timeout=RUN_TIMEOUT_MS)
    assert review.result.status == "completed", review.result.error_message
    np.testing.assert_allclose(camera.center[-2:], before[0])
    assert camera.zoom == pytest.approx(before[1])
    # one numbering: the windows CSV's IDs on the canvas caption and the slider label
    ids = [int(line.split(",")[0]) for line in
           (review.out_dir / "1_2_windows.csv").read_text().splitlines()[1:3]]
    assert review.labeller.text.startswith(f"window {ids[0]}: mid ")
    assert viewer.dims.axis_labels[0] == f"window {ids[0]}"


def test_cancel_stops_the_trainer(docks, qtbot):
    _viewer, _label, finetune, _review = docks
    finetune.start()
    worker = finetune.worker
    qtbot.waitUntil(lambda: any(isinstance(m, (Preflight, Started)) for m in worker.messages), timeout=120_000)
    pid = worker.pid()
    finetune.cancel()
    qtbot.waitUntil(lambda: finetune.result is not None, timeout=30_000)
    assert finetune.result.status == "cancelled"
    assert not worker.is_running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert finetune.start_button.isEnabled()


def test_resume_continues_a_cancelled_run_to_the_end(docks, qtbot, monkeypatch):
    _viewer, _label, finetune, _review = docks
    monkeypatch.setattr(finetune, "train_args", lambda run_dir: FinetuneDock.train_args(finetune, run_dir)
                        + ["--epochs", "2", "--steps-per-epoch", "2"])
    assert not finetune.resume_button.isEnabled()
    finetune.start()
    worker = finetune.worker
    qtbot.waitUntil(lambda: any(isinstance(m, Step) for m in worker.messages), timeout=RUN_TIMEOUT_MS)
    finetune.cancel()
    qtbot.waitUntil(lambda: finetune.result is not None, timeout=60_000)
    assert finetune.result.status == "cancelled"
    assert finetune.resume_button.isEnabled() and "Resume" in finetune.state_label.text()
    done_before = len(finetune.loss_plot.train_x)
    assert done_before >= 1
    finetune.resume()
    assert finetune.running and not finetune.resume_button.isEnabled()
    qtbot.waitUntil(lambda: finetune.result is not None, timeout=RUN_TIMEOUT_MS)
    assert finetune.result.status == "completed", finetune.result.error_message
    started = [m for m in finetune.worker.messages if isinstance(m, Started)]
    assert started and started[0].config["resumed_at"] is not None
    assert len(finetune.loss_plot.train_x) == 4  # the curve went on: 2 epochs x 2 steps in all
    assert (finetune.run_dir / "model.ercnn.h5").is_file() and not finetune.resume_button.isEnabled()


def test_trainer_error_is_one_sentence(docks, qtbot, monkeypatch, tmp_path):
    _viewer, _label, finetune, _review = docks
    # what the dock can check itself, it refuses up front with the reason (no worker starts)
    finetune.split.addItem("V7")
    finetune.split.setCurrentText("V7")  # no lists for V7
    assert not finetune.start_button.isEnabled() and "split V7 does not exist" in finetune.why_label.text()
    finetune.split.setCurrentText("V1")
    assert finetune.start_button.isEnabled(), finetune.why_label.text()
    # what only the trainer finds (a baseline that is not a model file) comes back as one sentence
    broken = tmp_path / "broken_baseline.h5"
    broken.write_bytes(b"not an HDF5 file")
    finetune.set_preset("quick")
    finetune.baseline.setCurrentText(str(broken))
    shown = []
    monkeypatch.setattr("ercnn_napari.napari_plugin.finetune_dock.show_error", shown.append)
    finetune.start()
    qtbot.waitUntil(lambda: finetune.result is not None, timeout=RUN_TIMEOUT_MS)
    assert finetune.result.status == "failed"
    assert shown and "broken_baseline.h5" in shown[0] and "Traceback" not in shown[0]
    assert "\n" not in shown[0]
    assert finetune.run_progress.isHidden() and finetune.start_button.isEnabled()


def test_ensemble_prediction_from_review_dock(docks, worker_project, qtbot):
    viewer, _label, _finetune, review = docks
    models = [str(worker_project / f"small_model_{seed}.ercnn.h5") for seed in (0, 1)]
    review.select_only(models)
    review.combine.setCurrentText("max")
    review.set_tiles([(0, 0), (1, 2)])
    review.stride.setValue(10)
    review.start()
    qtbot.waitUntil(lambda: review.result is not None, timeout=RUN_TIMEOUT_MS)
    assert review.result.status == "completed", review.result.error_message
    stack = next(lay for lay in viewer.layers if lay.metadata.get("ercnn_role") == STACK_ROLE)
    assert stack.name == "change max(small_model_0, small_model_1)"
    assert review.labeller.text.startswith("window ") and ": mid 2017-" in review.labeller.text
    project = Project.open(worker_project)
    assert stack.data.shape[1:] == (64, 96)  # bounding box of tiles (0,0)..(1,2)
    assert np.isfinite(stack.data[:, 0:32, 0:32]).all() and np.isnan(stack.data[:, 0:32, 32:64]).all()
    assert np.nanmax(stack.data) <= 1.0
    info = json.loads((review.out_dir / "prediction.json").read_text())
    assert info["combine"] == "max" and project.grid.to_dict() == info["grid"]


def test_cancel_stops_a_prediction(docks, worker_project, qtbot):
    viewer, _label, _finetune, review = docks
    review.select_only([str(worker_project / "small_model_0.ercnn.h5")])
    review.set_tiles([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)])
    review.stride.setValue(1)
    review.start()
    worker = review.worker
    qtbot.waitUntil(lambda: any(isinstance(m, Started) for m in worker.messages), timeout=120_000)
    review.cancel()
    qtbot.waitUntil(lambda: review.result is not None, timeout=30_000)
    assert review.result.status == "cancelled" and not worker.is_running()
    assert not (review.out_dir / "prediction.json").exists()
    assert not [lay for lay in viewer.layers if lay.metadata.get("ercnn_role") == STACK_ROLE]
