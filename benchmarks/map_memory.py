"""A ``map`` worker's peak memory on a small and on a four-times larger AoI, in one run.

Why: the whole-AoI map must run on AoIs of any size (Liège is 4,958 tiles) with workers whose
memory does not grow with the AoI: a worker holds one block of tiles and their neighbours' halo
series, never the AoI. This measures it through the real driver (a one-worker LocalCluster,
``mapping.driver.run_map``) on two synthetic stacked projects, ``--small`` and ``2 x --small``
tiles a side, sampling the resident memory of every process the run starts (the Dask nanny and
worker) every 50 ms. The driver's own memory is left out: it is this benchmark's process.

    python benchmarks/map_memory.py [--small 2] [--steps 80] [--halo 8] [--block 1]

Last line: ``small_tiles=… large_tiles=… worker_peak_small_mb=… worker_peak_large_mb=… ratio=…``
(ratio = large / small peak; about 1 means the worker's memory does not depend on the AoI size).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from map_scaling import map_once, small_model, synthetic_project


class PeakSampler:
    """The largest resident set of any single descendant process, sampled on a thread."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    self.peak_bytes = max(self.peak_bytes, child.memory_info().rss)
                except psutil.Error:   # a process that ended between listing and reading
                    pass
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=2, help="tiles a side of the small AoI (the large one has twice)")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--halo", type=int, default=8)
    parser.add_argument("--block", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    peaks = {}
    with tempfile.TemporaryDirectory(prefix="map_memory_") as tmp:
        root = Path(tmp)
        model = str(small_model(root))
        for name, side in (("small", args.small), ("large", 2 * args.small)):
            project = synthetic_project(root / name, side, side, args.steps)
            with PeakSampler() as sampler:
                summary = map_once(str(project), model, root / f"map_{name}", 1, args.halo, args.block)
            peaks[name] = (side * side, sampler.peak_bytes / 2**20)
            print(f"{name}: {side * side} tiles, {summary['tiles_predicted']} predicted in "
                  f"{summary['predict_seconds']:.1f} s, worker peak {peaks[name][1]:.0f} MB", flush=True)
    (n_small, small_mb), (n_large, large_mb) = peaks["small"], peaks["large"]
    print(f"small_tiles={n_small} large_tiles={n_large} worker_peak_small_mb={small_mb:.0f} "
          f"worker_peak_large_mb={large_mb:.0f} ratio={large_mb / small_mb:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
