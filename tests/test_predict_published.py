"""``predict`` with the authors' published Keras-2.4 weights on a handful of full-size windows."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from ercnn_napari.core.window_table import read_window_csv
from ercnn_napari.ml.data.tfrecords import write_stacked

DAY = 86400.0


def test_published_weights_predict_a_few_windows(published_weights, tmp_path):
    rng = np.random.default_rng(5)
    n = 75  # steps 2-3.4 days apart: a few dozen windows; stride 12 keeps 3 of them
    stamps = 1.4832e9 + np.cumsum(rng.uniform(2.0, 3.4, n)) * DAY
    streams = [rng.uniform(0.01, 0.4, (n, 32, 32, c)).astype(np.float32) for c in (2, 2, 13)]
    source = tmp_path / "Liege_10_20.tfrecords"
    write_stacked(source, stamps, *streams)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "ercnn_napari", "predict", "--model", str(published_weights),
                             "--out", str(out), "--stride", "12", "--progress", "none", str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    probs = np.load(out / "Liege_10_20.npy")
    table = read_window_csv(out / "Liege_10_20_windows.csv")
    assert probs.shape == (len(table), 32, 32) and 2 <= len(table) <= 4
    assert np.all((probs >= 0) & (probs <= 1)) and np.isfinite(probs).all()
    assert table.ids[1] - table.ids[0] == 12
    info = json.loads((out / "prediction.json").read_text())
    assert info["time_steps"] == 92 and info["models"] == [str(published_weights.resolve())]
