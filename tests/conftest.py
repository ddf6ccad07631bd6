"""Shared fixtures and the rule that GUI tests run in a process of their own.

The napari viewer and TensorFlow must never share a process (software OpenGL binds to
TensorFlow's LLVM symbols and crashes). GUI tests live in ``tests/gui`` and run in a separate
``pytest tests/gui`` call; mixing them with the TensorFlow tests in one session is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Session fixtures with the synthetic sample AoI (sample_project, sample_project_no_obs).
from fixtures_sample import *  # noqa: F401,F403,E402
from xdist_order import keep_file_order, longest_first  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("ERCNN_SHARED_DIR", REPO_ROOT.parent / "shared"))
GUI_DIR = Path(__file__).resolve().parent / "gui"


def pytest_configure(config: pytest.Config) -> None:
    keep_file_order(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gui = [i for i in items if GUI_DIR in Path(str(i.path)).parents]
    if gui and len(gui) != len(items):
        raise pytest.UsageError(
            "GUI tests (tests/gui) must run in their own pytest process, apart from the TensorFlow "
            "tests: run `python -m pytest tests --ignore=tests/gui` and `python -m pytest tests/gui`."
        )
    for item in gui:
        item.add_marker(pytest.mark.gui)
    longest_first(items)


def published_weights_path() -> Path | None:
    """The authors' published weights: $ERCNN_PUBLISHED_WEIGHTS, else $ERCNN_SHARED_DIR/models/."""
    env = os.environ.get("ERCNN_PUBLISHED_WEIGHTS")
    path = Path(env) if env else SHARED_DIR / "models" / "ercnn_drs_s12_pretrained.hdf5"
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def published_weights() -> Path:
    path = published_weights_path()
    if path is None:
        where = (f"ERCNN_PUBLISHED_WEIGHTS={os.environ['ERCNN_PUBLISHED_WEIGHTS']!r} is not a file"
                 if os.environ.get("ERCNN_PUBLISHED_WEIGHTS") else
                 f"ERCNN_PUBLISHED_WEIGHTS is not set and {SHARED_DIR / 'models'} has no ercnn_drs_s12_pretrained.hdf5")
        pytest.skip(
            f"published ERCNN-DRS weights not found ({where}): set ERCNN_PUBLISHED_WEIGHTS to the "
            "authors' .hdf5, or ERCNN_SHARED_DIR to a reference-data folder with models/ (README, 'Reference data for the tests')"
        )
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"reference-data folder not found at {SHARED_DIR}: set ERCNN_SHARED_DIR to it "
                    "(aoi/, models/, real_s2_eopatch/; README, 'Reference data for the tests')")
    return SHARED_DIR
