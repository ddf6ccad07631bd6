"""A typo in ERCNN_PUBLISHED_WEIGHTS is said loudly, never a silent fall-back (core, no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ercnn_napari.core import model_files
from ercnn_napari.core.model_files import BaselineWarning, default_baseline, published_weights_problem


def test_missing_published_weights_warn_and_name_the_path(tmp_path, monkeypatch):
    monkeypatch.delenv("ERCNN_NAPARI_BASELINE", raising=False)
    demo = tmp_path / "demo.ercnn.h5"
    demo.write_bytes(b"x")
    monkeypatch.setattr(model_files, "DEMO_BASELINE", demo)
    monkeypatch.setenv("ERCNN_PUBLISHED_WEIGHTS", str(tmp_path / "ercnn_drs_typo.hdf5"))
    problem = published_weights_problem()
    assert problem is not None and "ercnn_drs_typo.hdf5" in problem and "does not exist" in problem
    assert "demo baseline" in problem
    with pytest.warns(BaselineWarning, match="ercnn_drs_typo.hdf5"):
        assert default_baseline() == demo
    monkeypatch.setenv("ERCNN_PUBLISHED_WEIGHTS", str(tmp_path))
    assert "a folder" in published_weights_problem()


def test_existing_or_unset_published_weights_are_quiet(tmp_path, monkeypatch, recwarn):
    monkeypatch.delenv("ERCNN_NAPARI_BASELINE", raising=False)
    monkeypatch.delenv("ERCNN_PUBLISHED_WEIGHTS", raising=False)
    assert published_weights_problem() is None
    weights = tmp_path / "published.hdf5"
    weights.write_bytes(b"x")
    monkeypatch.setenv("ERCNN_PUBLISHED_WEIGHTS", str(weights))
    assert published_weights_problem() is None and default_baseline() == weights
    assert not [w for w in recwarn if issubclass(w.category, BaselineWarning)]


def test_the_command_line_prints_the_warning(tmp_path):
    """Whatever the CLI does with the baseline, the warning reaches stderr (Python's default filter)."""
    code = ("import os; os.environ['ERCNN_PUBLISHED_WEIGHTS'] = os.environ['MISSING'];"
            "from ercnn_napari.core.model_files import default_baseline; default_baseline()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**__import__("os").environ, "MISSING": str(tmp_path / "nope.hdf5"),
                                 "ERCNN_NAPARI_BASELINE": ""})
    assert result.returncode == 0
    assert "BaselineWarning" in result.stderr and "nope.hdf5" in result.stderr
