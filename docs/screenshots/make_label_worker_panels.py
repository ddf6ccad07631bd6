"""Render docs/screenshots/label_worker_panels.png: the Label dock's "Fetch reference imagery" and
"Suggest tiles" after real runs (run under a display / xvfb-run).

    python docs/screenshots/make_label_worker_panels.py PROJECT BEFORE_SRC AFTER_SRC MODEL [MODEL ...]

PROJECT needs observations and some unlabelled tiles; the sources are anything ``reference``
opens (their names give the years). Both runs are the dock's own: worker processes started by
its buttons, so the screenshot shows what an analyst sees when they finish.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication


def wait_for(action, seconds: float = 900) -> None:
    end = time.monotonic() + seconds
    while (action.running or not action.button.isEnabled()) and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.05)
    for _ in range(20):
        QApplication.processEvents()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("project")
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "label_worker_panels.png"))
    args = parser.parse_args()

    viewer = napari.Viewer(title="ercnn-napari", show=True)
    viewer.window._qt_window.resize(1500, 1100)
    _w, label = viewer.window.add_plugin_dock_widget("ercnn-napari", "Label change")
    viewer.open(args.project, plugin="ercnn-napari")
    panel = label.fetch_reference
    panel.sources["before"].setText(args.before)
    panel.sources["after"].setText(args.after)
    panel.factor.setValue(4)
    panel.action.button.click()
    wait_for(panel.action)
    run = label.suggest.run
    run.models.select_only([str(Path(m).resolve()) for m in args.models])
    run.n.setValue(2)
    run.action.button.click()
    wait_for(run.action)
    print(panel.state_label.text(), "|", run.state_label.text())
    label.suggest.list.itemClicked.emit(label.suggest.list.item(0))
    for _ in range(30):
        QApplication.processEvents()
    viewer.window.screenshot(path=args.out, canvas_only=False, flash=False)
    viewer.close()


if __name__ == "__main__":
    main()
