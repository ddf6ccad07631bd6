"""The plugin as napari creates it: docks from the manifest, projects through File › Open, every close path.

npe2 hands each dock its own ``PublicOnlyProxy`` of the viewer; these tests open the docks exactly
that way (``add_plugin_dock_widget`` with the manifest's display names) in both orders and check
that they share one project, say why their buttons are disabled, touch no private napari
attribute, and that each way of closing the window asks before an unsaved tile is lost.
"""

from __future__ import annotations

import contextlib
import gc
import warnings

import numpy as np
import pytest
from gui_helpers import PLUGIN, dock_display_names, open_plugin_dock, open_plugin_docks
from napari.utils._proxies import PublicOnlyProxy
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

from ercnn_napari.core.splits import Split
from ercnn_napari.napari_plugin.readiness import NO_PROJECT

ORDERS = ("docks-first", "project-first")


def _private_access_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "Private attribute access" in str(w.message)]


@pytest.mark.parametrize("order", ORDERS)
def test_docks_share_one_project_in_either_order(make_napari_viewer, small_project, order):
    viewer = make_napari_viewer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        label, finetune, review = open_plugin_docks(viewer, small_project.root, order)
        label.labels_layer.data_setitem((np.array([0]), np.array([0])), 1)
        label.flush()
    assert not _private_access_warnings(caught), _private_access_warnings(caught)
    # each dock got its own proxy of the viewer, as npe2 makes them; they still share one context
    assert all(isinstance(d.viewer, PublicOnlyProxy) for d in (label, finetune, review))
    assert label.viewer is not finetune.viewer
    assert label.context is finetune.context is review.context
    assert label.project is not None and label.project.root == small_project.root
    assert finetune.context.project.root == small_project.root
    assert [layer.name for layer in viewer.layers].count("labels Liege") == 1
    assert label.session.mosaic is label.labels_layer.data  # painting reaches the session
    # the small project has no observations: both docks say so instead of a grey button
    assert not finetune.start_button.isEnabled()
    assert "no observations" in finetune.why_label.text()
    assert not review.predict_button.isEnabled()
    assert "no observations" in review.why_label.text()


def test_reference_pair_loads_after_the_first_frame(make_napari_viewer, small_project):
    """Opening a project does not wait for the reference mosaics: a thread builds them, then they slide in."""
    viewer = make_napari_viewer()
    label = open_plugin_dock(viewer, "label")
    label.open_project(small_project.root)
    # no event has run since: the thread's result (queued to the GUI thread) cannot be on the map yet
    assert [layer.name for layer in viewer.layers] == ["tiles", "labels Liege"]
    assert label.reference_layers == {} and "loading" in label.reference.title()
    view = label.context.camera   # viewer.camera is deprecated in napari 0.9
    camera = (tuple(view.center), view.zoom)
    assert label.wait_for_references(60)
    assert [layer.name for layer in viewer.layers] == ["before 2016", "after 2020", "tiles", "labels Liege"]
    assert set(label.reference_layers) == {"before", "after"} and label.reference.isEnabled()
    assert label.reference.title() == "Reference pair"
    assert viewer.layers.selection.active.name == "labels Liege", "the brush stays on the labels"
    assert (tuple(view.center), view.zoom) == camera, "the view does not jump"


def test_manifest_names_every_dock():
    names = dock_display_names()
    assert {k: names[k] for k in ("label", "finetune", "review")} == {
        "label": "Label change", "finetune": "Fine-tune", "review": "Review predictions"}


def test_docks_say_why_their_buttons_are_disabled(make_napari_viewer, small_project, qtbot):
    viewer = make_napari_viewer()
    finetune = open_plugin_dock(viewer, "finetune")
    review = open_plugin_dock(viewer, "review")
    assert finetune.why_label.text() == f"Fine-tune is disabled: {NO_PROJECT}"
    assert review.why_label.text() == f"Predict is disabled: {NO_PROJECT}"
    # observations (files only: the docks never read them) and a split whose training tile is unlabelled
    small_project.set_observations({"kind": "stacked", "path": "observations"})
    (small_project.root / "observations").mkdir()
    for tile in small_project.grid.tiles():
        (small_project.root / "observations" / f"{tile[0]}_{tile[1]}.tfrecords").write_bytes(b"")
    small_project.write_splits({"V1": Split("V1", [(0, 0), (0, 1)], [], [])})
    viewer.open(str(small_project.root), plugin=PLUGIN)
    label = open_plugin_dock(viewer, "label")  # the label dock last: it adopts the open project
    finetune.set_preset("tiny")  # no baseline needed: the reason is about labels only
    assert not finetune.start_button.isEnabled()
    assert "no labels in split V1 for tile(s) 0:0" in finetune.why_label.text()
    assert review.predict_button.isEnabled() == bool(review.selected_models())
    # the analyst looks at tile 0:0 and marks it labelled: the reason goes away, the button wakes up
    label.context.set_tile((0, 0))
    label.mark_current_labelled()
    assert finetune.why_label.text() == "" and finetune.start_button.isEnabled()
    review.models.clear()
    review.update_readiness()
    assert "no model ticked" in review.why_label.text() and not review.predict_button.isEnabled()


def test_missing_published_weights_are_shown_loudly(make_napari_viewer, small_project, monkeypatch, tmp_path):
    missing = tmp_path / "ercnn_drs_s12_pretrained.hdf5.typo"
    monkeypatch.setenv("ERCNN_PUBLISHED_WEIGHTS", str(missing))
    monkeypatch.delenv("ERCNN_NAPARI_BASELINE", raising=False)
    viewer = make_napari_viewer()
    finetune = open_plugin_dock(viewer, "finetune")
    review = open_plugin_dock(viewer, "review")
    for dock in (finetune, review):
        assert not dock.baseline_warning.isHidden()
        assert "ERCNN_PUBLISHED_WEIGHTS" in dock.baseline_warning.text() and missing.name in dock.baseline_warning.text()
    monkeypatch.delenv("ERCNN_PUBLISHED_WEIGHTS")
    viewer.open(str(small_project.root), plugin=PLUGIN)  # the lists refresh with the project
    assert finetune.baseline_warning.isHidden() and review.baseline_warning.isHidden()


# ---- closing -------------------------------------------------------------------------------------

@pytest.fixture
def conflicted(qapp, qtbot, small_project, monkeypatch):
    """A shown viewer whose label dock holds a stroke on tile 0:1 that cannot be saved (outside edit).

    Not ``make_napari_viewer``: these tests close the window through napari's own menu, after
    which that fixture's second ``viewer.close()`` fails inside napari.
    """
    import napari
    from napari.settings import get_settings

    monkeypatch.setattr(get_settings().application, "confirm_close_window", False)  # napari's own question
    viewer = napari.Viewer(show=True)
    label = open_plugin_dock(viewer, "label")
    viewer.open(str(small_project.root), plugin=PLUGIN)
    small_project.labels.write((0, 1), np.ones((32, 32), np.uint8))  # someone else rewrites the tile
    label.labels_layer.data_setitem((np.array([0, 1]), np.array([33, 33])), 1)  # the analyst paints it
    label.flush()
    assert label.session.conflicts and label.session.dirty
    asked = []

    def answer(choice):
        def ask(tiles, can_cancel):
            asked.append((tiles, can_cancel))
            return choice
        label.ask_unsaved = ask  # not monkeypatch: it would keep the dock (and the viewer) alive too long

    yield viewer, label, small_project, asked, answer
    # leave nothing that would ask at teardown; the test may have closed the window already, and
    # after a cancelled Exit napari still believes it is quitting (its own flag, set before the
    # close event we cancel), so its second close of the same viewer fails inside napari
    with contextlib.suppress(RuntimeError, AttributeError):
        if label.session is not None and label.session.conflicts:
            label.resolve_conflicts(keep_mine=False)
        viewer.close()
    napari.Viewer._instances.discard(viewer)
    label.__dict__.pop("ask_unsaved", None)
    viewer = label = asked = answer = None  # drop the references before collecting
    qtbot.wait(50)  # deleteLater of the closed window's objects runs in the event loop
    gc.collect()
    # napari's make_napari_viewer counts live QtViewers at the next test's start; a window closed
    # through napari's own menu (not that fixture) stays listed there, so take this one off the list
    from napari._qt.qt_viewer import QtViewer

    QtViewer._instances.clear()  # napari's fixture counts live QtViewers at the next test's start


def _file_action(window, title: str):
    menu = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "File")
    return next(a for a in menu.actions() if a.text().replace("&", "") == title)


def _activate(window, qtbot):
    window.activateWindow()
    window.raise_()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)


def test_close_window_menu_asks_and_can_be_cancelled(conflicted, qtbot):
    viewer, label, project, asked, answer = conflicted
    window = label.window()
    _activate(window, qtbot)
    answer("cancel")
    _file_action(window, "Close Window").trigger()  # File > Close Window, also Ctrl+W
    assert asked == [([(0, 1)], True)]
    assert window.isVisible() and label.autosaver is not None, "cancel keeps the window and its autosave"
    assert project.labels.read((0, 1)).sum() == 32 * 32, "the outside edit is still on disk"
    answer("save")
    _file_action(window, "Close Window").trigger()
    assert len(asked) == 2 and not window.isVisible()
    saved = project.labels.read((0, 1))
    assert saved.sum() == 64 + 2 and saved[1, 1] == 1, "Save wrote the viewer's labels over the outside edit"


@pytest.mark.parametrize(("key", "closes_app"), [(Qt.Key.Key_W, False), (Qt.Key.Key_Q, True)],
                         ids=["ctrl+w", "ctrl+q"])
def test_ctrl_w_and_ctrl_q_key_presses_ask(conflicted, qtbot, key, closes_app):
    """A real key press on napari's window (found through Qt from the dock): Ctrl+W closes, Ctrl+Q quits."""
    viewer, label, project, asked, answer = conflicted
    window = label.window()
    _activate(window, qtbot)
    answer("cancel")
    qtbot.keyClick(window, key, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: bool(asked), timeout=5000)
    assert asked == [([(0, 1)], True)]
    assert window.isVisible() and label.autosaver is not None, "cancel keeps the window and its autosave"
    assert project.labels.read((0, 1)).sum() == 32 * 32, "the outside edit is still on disk"
    if not closes_app:   # after a cancelled quit napari keeps its own 'quitting' flag (see the fixture)
        answer("discard")
        qtbot.keyClick(window, key, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
        assert len(asked) == 2 and project.labels.read((0, 1)).sum() == 32 * 32


def test_window_close_button_asks(conflicted):
    """The title-bar button sends the same close event to napari's window as ``close()`` does."""
    viewer, label, project, asked, answer = conflicted
    window = label.window()
    answer("cancel")
    window.close()
    assert asked and asked[-1][1] is True and window.isVisible()
    answer("discard")
    window.close()
    assert not window.isVisible()
    assert project.labels.read((0, 1)).sum() == 32 * 32, "discard leaves the outside edit alone"


def test_exit_asks_before_quitting(conflicted, qtbot):
    viewer, label, project, asked, answer = conflicted
    window = label.window()
    answer("cancel")
    _file_action(window, "Exit").trigger()  # File > Exit (quit napari)
    assert asked == [([(0, 1)], True)]
    assert window.isVisible() and label.autosaver is not None


def test_viewer_close_from_a_script_asks_without_cancel(conflicted):
    viewer, label, project, asked, answer = conflicted
    answer("save")
    viewer.close()  # napari removes the layers first: nothing left to go back to
    assert asked == [([(0, 1)], False)]
    assert project.labels.read((0, 1)).sum() == 64 + 2  # the tile's 64 labelled pixels and the stroke


def test_saveable_strokes_close_without_a_question(make_napari_viewer, small_project, monkeypatch):
    viewer = make_napari_viewer()
    label = open_plugin_dock(viewer, "label")
    viewer.open(str(small_project.root), plugin=PLUGIN)
    monkeypatch.setattr(label, "ask_unsaved", lambda *a: pytest.fail("nothing to ask: the tile can be saved"))
    label.labels_layer.data_setitem((np.array([33, 34]), np.array([1, 2])), 1)  # tile (1, 0)
    label.window().close()
    assert small_project.labels.read((1, 0)).sum() == 2
