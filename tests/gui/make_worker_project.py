"""Build a project with observations and a tiny model for the GUI worker tests (run as a SUBPROCESS).

The GUI test process must not import TensorFlow, and writing TFRecords and model files needs it,
so the GUI tests run this script with ``python make_worker_project.py DEST``. The project is the
small 2 x 3 tile project of ``conftest.make_small_project`` plus: a labelled tile everywhere, split
V1, one year of synthetic stacked observations per tile (change appears mid-year where labelled)
and two small full-length networks (random weights) to predict with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import make_small_project  # noqa: E402

from ercnn_napari.core.splits import Split  # noqa: E402

DAY = 86400.0


def main(dest: Path) -> None:
    project = make_small_project(dest)
    project.set_observations({"kind": "stacked", "path": "observations"})
    rng = np.random.default_rng(1)
    for tile in project.grid.tiles():
        label = np.zeros((32, 32), np.uint8)
        label[4 + tile[1] * 4:12 + tile[1] * 4, 6:14] = 1
        project.labels.write(tile, label)
    project.write_splits({"V1": Split("V1", [(0, 0), (0, 1), (0, 2), (1, 0)], [(1, 1)], [(1, 2)])})

    from ercnn_napari.ml.data.tfrecords import write_stacked
    from ercnn_napari.ml.model.network import ModelConfig, build_model
    from ercnn_napari.ml.model.weights import save_model

    start = 1483228800.0  # 2017-01-01
    stamps = start + np.arange(0, 300, 4) * DAY  # 75 observations over ten months
    n = len(stamps)
    for tile in project.grid.tiles():
        label = project.labels.read(tile).astype(np.float32)
        s1a = rng.normal(0.2, 0.02, (n, 32, 32, 2)).astype(np.float32)
        s1d = rng.normal(0.2, 0.02, (n, 32, 32, 2)).astype(np.float32)
        s2 = rng.uniform(0.05, 0.2, (n, 32, 32, 13)).astype(np.float32)
        late = stamps > start + 150 * DAY
        s2[late] += 0.5 * label[None, :, :, None]  # new bright roofs where labelled
        write_stacked(project.root / "observations" / f"{tile[0]}_{tile[1]}.tfrecords", stamps, s1a, s1d, s2)
    # the tiny test network has 12 time steps, too few for real windows (35-92 observations), so the
    # prediction tests use a network with the full 92 steps and very few filters
    config = ModelConfig(time_steps=92, sar_filters=2, opt_filters=3, head_filters=2)
    for seed in (0, 1):
        save_model(build_model(config, seed=seed), config, project.root / f"small_model_{seed}.ercnn.h5",
                   {"purpose": "GUI tests"})


if __name__ == "__main__":
    main(Path(sys.argv[1]))
