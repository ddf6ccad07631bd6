"""The sample-data entry and ``ercnn-napari demo --screenshot`` (the README's main job)."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
from gui_helpers import write_prediction_folder

from ercnn_napari.napari_plugin.sample import sample_liege


def test_sample_data_opens_the_liege_aoi(tmp_path, monkeypatch, make_napari_viewer):
    monkeypatch.setenv("ERCNN_NAPARI_CACHE", str(tmp_path / "cache"))
    layers = sample_liege()
    names = [kwargs["name"] for _data, kwargs, _kind in layers]
    assert names[-2:] == ["tiles", "labels Liege"]
    assert any(n.startswith("before") for n in names) and any(n.startswith("after") for n in names)
    labels = layers[-1][0]
    assert labels.shape == (6 * 32, 8 * 32) and labels.any()
    # the copy is writable and lives in the cache, not in the package
    root = layers[-1][1]["metadata"]["ercnn_project"]
    assert root.startswith(str(tmp_path / "cache"))
    viewer = make_napari_viewer()
    for data, kwargs, kind in layers:
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    assert len(viewer.layers) == len(layers)


def test_demo_screenshot_shows_docks_and_predictions(small_project, tmp_path, monkeypatch, capsys, make_napari_viewer):
    """``demo --screenshot`` with a prediction folder, in this process (a second napari start costs ~5 s).

    ``make_napari_viewer`` is requested for napari's per-test isolation of its plugin and action
    registries (unused otherwise): after other viewers in the same process, demo's own
    ``napari.Viewer()`` would register this plugin's commands a second time and fail.
    """
    from ercnn_napari.cli.main import main

    folder = tmp_path / "pred"
    write_prediction_folder(folder, small_project.grid, [(0, 0), (1, 1)], n_windows=3)
    out = tmp_path / "shot.png"
    monkeypatch.setenv("ERCNN_NAPARI_CACHE", str(tmp_path / "cache"))
    code = main(["demo", "--project", str(small_project.root), "--dock", "review", "--predictions", str(folder),
                 "--window", "2", "--tile", "1:1", "--screenshot", str(out), "--size", "1200x800"])
    assert code == 0, capsys.readouterr().err[-3000:]
    image = iio.imread(out)
    assert image.shape[0] >= 700 and image.shape[1] >= 1100
    assert image[..., :3].std() > 10, "the screenshot is blank"
    # the red change overlay of the prediction is on the canvas
    red = (image[..., 0] > 180) & (image[..., 1] < 90) & (image[..., 2] < 90)
    assert red.sum() > 100
    # the demo left the project as it was (nothing unsaved, nothing written over)
    assert small_project.labels.tiles() == [(0, 1)]
    assert np.asarray(small_project.labels.read((0, 1))).sum() == 64


def test_demo_first_frame_is_the_project_and_the_other_docks_follow(small_project, tmp_path, monkeypatch, capsys,
                                                                     make_napari_viewer):
    """The first frame napari paints shows the project (grid, labels, label dock) at the picture's size.

    ``demo`` keeps its window hidden while the label dock and the layers go in, so no frame is
    painted half-built; Fine-tune and Review (tabs behind the label dock) come after that frame.
    Run in this process (no second napari start) and timed by the ``first frame painted`` line;
    ``make_napari_viewer`` only for napari's per-test registries (see the test above).
    """
    import weakref

    import napari
    from qtpy.QtWidgets import QApplication, QDockWidget, QMainWindow

    from ercnn_napari.cli import cmd_demo
    from ercnn_napari.cli.main import main
    from ercnn_napari.napari_plugin import first_frame

    events: list[tuple] = []
    add_dock, watch = cmd_demo._add_dock, first_frame.watch_first_frame

    def recording_add_dock(viewer, dock, key):
        shown = any(w.isVisible() for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow))
        events.append(("dock", key, shown))
        return add_dock(viewer, dock, key)

    def recording_watch(window, label="ercnn-napari demo"):
        shown = weakref.ref(window)   # a strong reference would outlive the closed viewer's canvas

        def at_paint():
            docks = sorted(d.windowTitle() for d in shown().findChildren(QDockWidget))
            layers = [layer.name for layer in napari.current_viewer().layers]
            events.append(("paint", tuple(layers), tuple(docks), shown().width(), shown().height()))
        events.append(("watch", window.isVisible()))
        first_frame.on_first_paint(window, at_paint)
        return watch(window, label)

    monkeypatch.setattr(cmd_demo, "_add_dock", recording_add_dock)
    monkeypatch.setattr(first_frame, "watch_first_frame", recording_watch)
    monkeypatch.setenv("ERCNN_NAPARI_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "shot.png"
    assert main(["demo", "--project", str(small_project.root), "--screenshot", str(out), "--size", "1200x800"]) == 0
    assert "first frame painted after" in capsys.readouterr().err
    kinds = [e[0] for e in events]
    assert kinds == ["dock", "watch", "paint", "dock", "dock"], events
    assert events[0][1] == "label" and events[0][2] is False        # added to the hidden window
    assert events[1] == ("watch", False)                              # still hidden when the watch starts
    _, layers, docks, width, height = events[2]
    assert layers == ("tiles", "labels Liege")                       # the project, not an empty canvas
    assert "Label change" in docks and "Fine-tune" not in docks
    assert width == 1200 and height >= 800                           # painted at the picture's size
    assert [e[1] for e in events[3:]] == ["finetune", "review"]
    assert iio.imread(out)[..., :3].std() > 10
