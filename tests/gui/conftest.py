"""GUI test fixtures: a small project built in-process (no TensorFlow) and the TF-free guard.

The viewer process must never import TensorFlow or Keras (software OpenGL binds to TensorFlow's
LLVM symbols and crashes). The session-end check below fails the run if anything in the viewer's
code path loaded them; workers that need TensorFlow run as subprocesses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.project import Project

FORBIDDEN_MODULES = ("tensorflow", "keras", "tf_keras")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    loaded = [name for name in FORBIDDEN_MODULES if name in sys.modules]
    if loaded:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        sys.stderr.write(f"\nFAILED: the viewer process imported {', '.join(loaded)}; the napari side must "
                         "stay TensorFlow-free (run TensorFlow in a worker process)\n")


def make_small_project(root: Path, rows: int = 2, cols: int = 3, with_references: bool = True) -> Project:
    """A 2 x 3 tile project in UTM 31N with a reference pair per tile and one labelled tile."""
    grid = TileGrid("EPSG:32631", 682000.0, 5612000.0, 10.0, 10.0, rows, cols)
    project = Project.create(root, "Liege", grid)
    rng = np.random.default_rng(0)
    if with_references:
        for tile in grid.tiles():
            base = rng.integers(40, 120, size=(64, 64, 3), dtype=np.uint8)
            after = base.copy()
            after[20:40, 20:40] = 230  # a "new building" in every after image
            project.write_reference_image(tile, 2016, base)
            project.write_reference_image(tile, 2020, after)
    label = np.zeros((32, 32), np.uint8)
    label[8:16, 8:16] = 1
    project.labels.write((0, 1), label)
    return project


@pytest.fixture
def small_project(tmp_path: Path) -> Project:
    return make_small_project(tmp_path / "project")


@pytest.fixture(scope="session")
def worker_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with observations, labels, split V1 and a tiny model, made in a TensorFlow subprocess."""
    # imported here: make_worker_project.py imports this file without tests/ on its path
    from xdist_shared import build_once

    return build_once(tmp_path_factory, "worker", _build_worker_project)


def _build_worker_project(folder: Path) -> Path:
    """Run make_worker_project.py (TensorFlow) into ``folder``; once per run, copied into each xdist process."""
    import os
    import subprocess

    dest = folder / "project"
    script = Path(__file__).with_name("make_worker_project.py")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(script), str(dest)], capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return dest


@pytest.fixture(autouse=True)
def _unattended_unsaved_question(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Answer the modal "unsaved labels" question with "discard" when no test answers it.

    A modal dialog would block an unattended run forever: a test that ends with a tile it put in
    conflict on purpose is still asked when napari's fixture closes the viewer. Tests of the question
    itself set ``dock.ask_unsaved`` on their dock, which takes precedence over this module-level answer.
    """
    asked: list[str] = []

    def discard(parent: object, tiles: str, can_cancel: bool) -> str:
        asked.append(tiles)
        return "discard"

    monkeypatch.setattr("ercnn_napari.napari_plugin.label_dock.ask_unsaved_dialog", discard)
    return asked
