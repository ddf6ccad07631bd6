"""How much does the prediction pipeline cost on top of the bare model?

Measures, in the same process and run, windows per second of

* **bare**: the full-size ERCNN-DRS network on one in-memory batch of windows, called repeatedly
  (the upper bound: no reading, no windowing, no padding, no writing);
* **pipeline**: the whole ``predict`` path on the same windows: stacked GZIP TFRecord file ->
  decode and check -> windowing -> tf.data (pad to 92 with -1, batch, prefetch) -> model ->
  ``.npy`` + window CSV + prediction.json, written atomically.

and prints both and their ratio (goal: pipeline >= 0.9 x bare, i.e. overhead <= 10 %). Shared
machines are noisy, so the two are measured alternately ``--rounds`` times and the best of each
is compared. Weights are random (speed does not depend on them).

    python benchmarks/predict_pipeline.py [--windows 60] [--batch-size 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DAY = 86400.0


def synthetic_series(n_steps: int, size: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A stacked series with steps 2-3.4 days apart (windows of ~60-80 observations)."""
    rng = np.random.default_rng(seed)
    stamps = 1.4832e9 + np.cumsum(rng.uniform(2.0, 3.4, n_steps)) * DAY
    streams = [np.round(rng.uniform(0, 0.5, (n_steps, size, size, c)), 4).astype(np.float32) for c in (2, 2, 13)]
    return stamps, streams


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=60, help="windows predicted per measurement")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=32, help="tile side in pixels")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from ercnn_napari.core.messages import MessageWriter
    from ercnn_napari.core.windowing import compute_windows
    from ercnn_napari.ml.data import pipeline, predict
    from ercnn_napari.ml.data.tfrecords import write_stacked
    from ercnn_napari.ml.model.network import ModelConfig, build_model

    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig())
    predictor = predict.Predictor([model], batch_size=args.batch_size)

    # a series whose stride-1 table has exactly the wanted number of windows (+ its tail)
    stamps, streams = synthetic_series(args.windows + 40, args.size, seed=1)
    table = compute_windows(stamps)
    n_steps = int(table.start_index[min(args.windows, len(table)) - 1]) + 1
    n_steps = int(np.searchsorted(stamps, stamps[n_steps - 1] + 182 * DAY, side="right"))
    stamps, streams = stamps[:n_steps], [s[:n_steps] for s in streams]
    table = compute_windows(stamps)
    windows_per_run = len(table)

    workdir = Path(tempfile.mkdtemp(prefix="predict_bench_"))
    source = workdir / "3_5.tfrecords"
    write_stacked(source, stamps, *streams)
    observations = np.concatenate(streams, axis=-1)
    padded = np.stack([pipeline.pad_numpy(observations[s:s + n])
                       for s, n in zip(table.start_index, table.n_obs, strict=True)])
    # the very same windows in the very same batches as the pipeline, already in memory
    batches = [tf.constant(padded[i:i + args.batch_size]) for i in range(0, len(padded), args.batch_size)]

    def bare() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            predictor.infer(batch, batch[0]).numpy()
        return (windows_per_run / (time.perf_counter() - wall), windows_per_run / (time.process_time() - cpu))

    def full(round_no: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        job = predict.file_job(source, stride=1)
        summary = predict.run_prediction([job], predictor, workdir / f"out{round_no}",
                                         MessageWriter("none"), {"models": ["random"], "stride": 1})
        assert summary["windows"] == windows_per_run
        waits.append(summary["input_wait_seconds"] / summary["seconds"])
        return (windows_per_run / (time.perf_counter() - wall), windows_per_run / (time.process_time() - cpu))

    print(f"full-size ERCNN-DRS ({model.count_params():,} parameters), {windows_per_run} windows of "
          f"{args.size}x{args.size} px per measurement, batch {args.batch_size}", flush=True)
    waits: list[float] = []
    bare(), full(-1)  # warm up: trace the compiled call, load libraries
    waits.clear()
    bare_rates, full_rates = [], []
    for round_no in range(args.rounds):
        bare_rates.append(bare())
        full_rates.append(full(round_no))
        print(f"  round {round_no + 1}: bare {bare_rates[-1][0]:.3f} windows/s, "
              f"pipeline {full_rates[-1][0]:.3f} windows/s (wall clock)", flush=True)
    for what, column in (("wall clock", 0), ("CPU time of all threads", 1)):
        best_bare = max(r[column] for r in bare_rates)
        best_full = max(r[column] for r in full_rates)
        ratio = best_full / best_bare
        print(f"{what}: bare model {best_bare:.3f} windows/s, full pipeline {best_full:.3f} windows/s "
              f"(best of {args.rounds}); ratio pipeline/bare = {ratio:.3f} "
              f"(overhead {100 * (1 - ratio):.1f} %; goal <= 10 %)")
    print("(CPU time is the steadier figure on a shared machine: it counts the work, not the waiting)")
    print(f"inside the pipeline the model waited for input {100 * min(waits):.1f} % of the run "
          f"(best of {args.rounds}; median {100 * float(np.median(waits)):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
