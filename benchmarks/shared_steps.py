"""Shared-step prediction versus today's per-window ``predict`` on the same windows, in one run.

Both paths run the same model(s) on the same stride-K windows of the same stacked series:

- per-window: ``Predictor(shared_steps=False)``, the tf.data pipeline that pads every window to
  92 steps and runs the whole network on it (what ``predict --per-window`` does, and what the
  authors' ``model.predict`` does);
- shared: ``Predictor`` (default), which encodes each observation once and runs only the
  recurrence per window (:mod:`ercnn_napari.ml.model.shared_steps`).

Each path is warmed up on one batch first (graph tracing is not counted), then timed. Prints
windows/s of both, the ratio and the largest difference of their probabilities.

    python benchmarks/shared_steps.py --model baseline.hdf5 [--project PROJECT] [--tiles 1] [--windows 24]

Without ``--project`` a synthetic Liège-like series is used (one step every ~2.3 days over four
years, Sentinel-like values). Last line: ``speedup=<shared/per-window windows/s> max_abs_diff=<...>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DAY = 86400.0


def synthetic_file(folder: Path, n_steps: int, size: int, seed: int) -> Path:
    from ercnn_napari.ml.data.tfrecords import write_stacked

    rng = np.random.default_rng(seed)
    stamps = 1.4832e9 + np.cumsum(rng.uniform(1.6, 3.0, n_steps)) * DAY
    base = rng.uniform(0.02, 0.4, (1, size, size, 17))
    season = 0.1 * np.sin(2 * np.pi * stamps / (365.25 * DAY))[:, None, None, None]
    obs = np.round(base + season + rng.normal(0, 0.02, (n_steps, size, size, 17)), 4).astype(np.float32)
    path = folder / f"Liege_{seed}_0.tfrecords"
    write_stacked(path, stamps, obs[..., :2], obs[..., 2:4], obs[..., 4:])
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--project", help="use this project's stacked tiles (e.g. the sample AoI)")
    parser.add_argument("--tiles", type=int, default=1)
    parser.add_argument("--windows", type=int, default=24, help="windows per tile (the first ones at --stride)")
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)

    from ercnn_napari.core.model_files import resolve_model_path
    from ercnn_napari.ml.inference import predict
    from ercnn_napari.ml.model.weights import load_model

    models = [load_model(resolve_model_path(m))[0] for m in args.model]
    if args.project:
        from ercnn_napari.core.project import Project
        from ercnn_napari.ml.data.observations import open_observations

        source = open_observations(Project.open(args.project))
        jobs = [predict.tile_job(source, t, args.stride) for t in source.tiles()[: args.tiles]]
    else:
        folder = Path(tempfile.mkdtemp(prefix="shared_steps_"))
        jobs = [predict.file_job(synthetic_file(folder, 640, 32, seed), args.stride) for seed in range(args.tiles)]
    jobs = [_first_windows(job, args.windows) for job in jobs]
    total = sum(len(job.table) for job in jobs)

    results = {}
    for name, shared in (("per_window", False), ("shared", True)):
        predictor = predict.Predictor(models, "mean", args.batch_size, shared_steps=shared)
        predictor.run(_first_windows(jobs[0], 2))  # trace the graphs outside the timing
        started = time.perf_counter()
        probs = [predictor.run(job)[0] for job in jobs]
        seconds = time.perf_counter() - started
        results[name] = (total / seconds, probs)
        print(f"{name}: {total} windows of {len(jobs)} tile(s) in {seconds:.2f} s = {total / seconds:.2f} windows/s")
    diff = max(float(np.abs(a - b).max()) for a, b in zip(results["per_window"][1], results["shared"][1], strict=True))
    speedup = results["shared"][0] / results["per_window"][0]
    print(f"speedup={speedup:.2f} max_abs_diff={diff:.2e}")
    return 0


def _first_windows(job, k: int):
    """The job narrowed to its first ``k`` selected windows (both paths see the same ones)."""
    from ercnn_napari.ml.data import pipeline

    table = job.table.select(np.arange(min(k, len(job.table))))
    load = job.load_series

    def make_dataset(steps: int):
        return pipeline.stacked_windows(load(), table, None, steps)

    return dataclasses.replace(job, table=table, make_dataset=make_dataset)


if __name__ == "__main__":
    sys.exit(main())
