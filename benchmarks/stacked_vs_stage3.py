"""Stacked series windowed on the fly versus the authors' stage-3 window files: bytes and read speed.

For a few tiles, the same windows are stored twice: once as a stage-2 stacked series (one record
per time step, the steps those windows need) and once as stage-3 files (one record per window,
every window holding its own copy of its observations), as the authors ship their training
data. The script prints bytes on disk and windows/s of reading every window through the
ObservationSource interface (decode, check, cut or parse, pad to 92), and the ratios.
Overlapping windows share ~98 % of their observations, so stacked storage should be about an
order of magnitude smaller (more the more windows) and correspondingly faster to read.

    python benchmarks/stacked_vs_stage3.py [--tiles 2] [--windows 40] [--size 32]
    python benchmarks/stacked_vs_stage3.py --project PROJECT [--tiles 2] [--windows 40]

With ``--project`` the stacked series of the first tiles of a project (e.g. the sample AoI) are
used; otherwise synthetic series with Sentinel-like value ranges (reflectances to 4 decimals).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DAY = 86400.0


def synthetic_tile(n_steps: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps and [N, size, size, 17] observations: smooth per-pixel signals plus noise."""
    stamps = 1.4832e9 + np.cumsum(rng.uniform(2.0, 3.4, n_steps)) * DAY
    base = rng.uniform(0.02, 0.4, (1, size, size, 17))
    season = 0.1 * np.sin(2 * np.pi * (stamps / (365.25 * DAY)))[:, None, None, None]
    noise = rng.normal(0, 0.02, (n_steps, size, size, 17))
    return stamps, np.round(base + season * rng.uniform(0, 1, (1, 1, 1, 17)) + noise, 4).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles", type=int, default=2)
    parser.add_argument("--windows", type=int, default=40, help="windows per tile (the first ones, stride 1)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--project", help="use this project's stacked observations instead of synthetic ones")
    args = parser.parse_args(argv)

    from ercnn_napari.core.windowing import compute_windows
    from ercnn_napari.ml.data.observations import open_observation_folder, open_observations
    from ercnn_napari.ml.data.tfrecords import read_stacked, write_stacked, write_stage3

    work = Path(tempfile.mkdtemp(prefix="stacked_vs_stage3_"))
    stacked_dir, stage3_dir = work / "observations", work / "training" / "V1" / "data" / "train"
    rng = np.random.default_rng(0)
    if args.project:
        from ercnn_napari.core.project import Project

        source_tiles = open_observations(Project.open(args.project))
        tiles = source_tiles.tiles()[: args.tiles]
        series = {t: read_stacked(source_tiles.path(t)) for t in tiles}
        data = {t: (s.timestamps, s.observations) for t, s in series.items()}
    else:
        tiles = [(0, i) for i in range(args.tiles)]
        data = {t: synthetic_tile(args.windows + 80, args.size, rng) for t in tiles}

    duplication = []
    for stamps, _ in data.values():  # whole series, every window: what stage 3 would store in full
        full = compute_windows(stamps)
        duplication.append((len(full), float(full.n_obs.sum() / len(stamps))))
    n_windows = 0
    for tile, (stamps, observations) in data.items():
        table = compute_windows(stamps)
        keep = min(args.windows, len(table))
        # the steps the first `keep` windows use: the stacked file holds exactly those
        last_step = int(max(table.start_index[:keep] + table.n_obs[:keep]))
        stamps, observations = stamps[:last_step], observations[:last_step]
        table = compute_windows(stamps)
        keep = min(keep, len(table))
        n_windows += keep
        write_stacked(stacked_dir / f"{tile[0]}_{tile[1]}.tfrecords", stamps,
                      observations[..., :2], observations[..., 2:4], observations[..., 4:])
        write_stage3(stage3_dir / f"Site_{tile[0]}_{tile[1]}.tfrecords",
                     (observations[s:s + n] for s, n in zip(table.start_index[:keep], table.n_obs[:keep],
                                                            strict=True)))
        data[tile] = keep

    def size_of(folder: Path) -> int:
        return sum(p.stat().st_size for p in folder.rglob("*.tfrecords"))

    def read_all(kind: str, folder: Path) -> float:
        source = open_observation_folder(folder, kind)  # a fresh source: nothing cached
        start = time.perf_counter()
        count = 0
        for tile in tiles:
            for _n_obs, window in source.dataset(tile, np.arange(data[tile])):
                assert window.shape[0] == 92
                count += 1
        assert count == n_windows, (count, n_windows)
        return n_windows / (time.perf_counter() - start)

    stacked_bytes, stage3_bytes = size_of(stacked_dir), size_of(stage3_dir)
    read_all("stacked", stacked_dir)  # warm up libraries and the OS file cache for both
    read_all("stage3", stage3_dir.parents[2])
    stacked_rate = max(read_all("stacked", stacked_dir) for _ in range(2))
    stage3_rate = max(read_all("stage3", stage3_dir.parents[2]) for _ in range(2))
    print(f"{len(tiles)} tiles, {n_windows} windows ({'project ' + args.project if args.project else 'synthetic'})")
    print(f"bytes on disk: stacked {stacked_bytes / 2**20:.1f} MiB, stage-3 {stage3_bytes / 2**20:.1f} MiB; "
          f"ratio stage-3/stacked = {stage3_bytes / stacked_bytes:.1f}x")
    print(f"whole series (all {', '.join(str(n) for n, _ in duplication)} windows per tile): stage 3 would store "
          f"each observation {np.mean([d for _, d in duplication]):.1f}x on average (raw-data ratio)")
    print(f"reading every window (padded, checked): stacked on the fly {stacked_rate:.1f} windows/s, "
          f"stage-3 {stage3_rate:.1f} windows/s; ratio stacked/stage-3 = {stacked_rate / stage3_rate:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
