"""Whole-AoI ``map`` throughput with 1 and then 2 local Dask workers on the same tiles, in one run.

Why: ``map`` is meant to scale out by adding Dask workers (one per GPU, or per few cores); this
is the figure that says how much a second worker adds on this machine. Both runs map the same
tiles of the same project with the same model into fresh folders (no resume), through the real
driver (:func:`ercnn_napari.mapping.driver.run_map`: LocalCluster start, window table, model load
in each worker, per-tile atomic writes, mosaics). Tiles/s is counted over the prediction phase
(cluster start to the last tile written; the mosaics are left out), so the start-up of the cluster
and the models is included: with few tiles it weighs more, as on a real small AoI.

On a machine shared with other jobs the figure is noisy: the load average is printed before and
after; rerun on idle cores for a number to quote.

    python benchmarks/map_scaling.py [--project PROJECT --model MODEL] [--rows 3 --cols 4] [--steps 120]
        [--halo 8] [--block 1]

Without ``--project`` a synthetic stacked project (``--rows`` x ``--cols`` tiles of 32 x 32 pixels,
``--steps`` observations ~2.3 days apart) and a small random model are made in a temporary folder.
Last line: ``workers1_tiles_per_s=… workers2_tiles_per_s=… scaling=…``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

DAY = 86400.0


def synthetic_project(root: Path, rows: int, cols: int, steps: int, size: int = 32) -> Path:
    """A stacked project of rows x cols tiles with smooth random fields (continuous across tiles)."""
    from ercnn_napari.core.geo import TileGrid
    from ercnn_napari.core.project import Project
    from ercnn_napari.ml.data.tfrecords import write_stacked

    rng = np.random.default_rng(5)
    stamps = 1.4832e9 + np.cumsum(rng.uniform(1.5, 3.1, steps)) * DAY
    grid = TileGrid("EPSG:32631", 680000.0, 5615000.0, 10.0, 10.0, rows=rows, cols=cols, tile_size=size)
    project = Project.create(root / "project", "Liege", grid, observations={"kind": "stacked", "path": "observations"})
    field = rng.uniform(0, 0.5, (steps, rows * size, cols * size, 17)).astype(np.float32)
    for y in range(rows):
        for x in range(cols):
            t = field[:, y * size:(y + 1) * size, x * size:(x + 1) * size]
            write_stacked(project.root / "observations" / f"{y}_{x}.tfrecords", stamps, t[..., :2], t[..., 2:4],
                          t[..., 4:])
    return project.root


def small_model(root: Path) -> Path:
    """A randomly initialised network, smaller than the published one (CPU minutes, not hours)."""
    import keras

    from ercnn_napari.ml.model.network import ModelConfig, build_model
    from ercnn_napari.ml.model.weights import save_model

    config = ModelConfig(time_steps=92, sar_filters=4, opt_filters=4, head_filters=2)
    keras.utils.set_random_seed(1)
    return save_model(build_model(config), config, root / "small.ercnn.h5", {"benchmark": "map_scaling"})


def map_once(project: str, model: str, out: Path, workers: int, halo: int, block: int) -> dict:
    from ercnn_napari.core.messages import MessageWriter
    from ercnn_napari.core.project import Project
    from ercnn_napari.mapping.driver import run_map
    from ercnn_napari.mapping.plan import MapPlan

    opened = Project.open(project)
    tiles = sorted(opened.observation_files())
    plan = MapPlan(str(Path(project).resolve()), out, [str(Path(model).resolve())], tiles, "mean", 5, halo,
                   "reflect", block, 16, opened.grid.tile_size)
    return run_map(plan, opened.grid, MessageWriter("none"), workers=workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project")
    parser.add_argument("--model")
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--cols", type=int, default=4)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--halo", type=int, default=8)
    parser.add_argument("--block", type=int, default=1)
    args = parser.parse_args(argv)
    if bool(args.project) != bool(args.model):
        parser.error("give both --project and --model, or neither (synthetic project and model)")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="map_scaling_") as tmp:
        root = Path(tmp)
        project = args.project or str(synthetic_project(root, args.rows, args.cols, args.steps))
        model = args.model or str(small_model(root))
        rates = {}
        for workers in (1, 2):
            summary = map_once(project, model, root / f"map{workers}", workers, args.halo, args.block)
            rate = summary["tiles_predicted"] / summary["predict_seconds"]
            rates[workers] = rate
            print(f"{workers} worker(s): {summary['tiles_predicted']} tiles, {summary['windows_predicted']} windows "
                  f"in {summary['predict_seconds']:.1f} s = {rate:.3f} tiles/s "
                  f"({summary['windows_per_s']} windows/s; worker busy {summary['worker_seconds']:.1f} s)", flush=True)
        same = all(np.allclose(np.load(p), np.load(root / "map2" / "tiles" / p.name), atol=1e-6)
                   for p in sorted((root / "map1" / "tiles").glob("*.npy")))
    load_after = os.getloadavg()
    print(f"cores {os.cpu_count()}, load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/"
          f"{load_before[2]:.2f}, after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}; "
          f"two-worker tiles equal one-worker tiles: {same}")
    print(f"workers1_tiles_per_s={rates[1]:.4f} workers2_tiles_per_s={rates[2]:.4f} scaling={rates[2] / rates[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
