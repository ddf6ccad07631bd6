"""Generate the stacked observation TFRecords of sample tiles in parallel worker processes.

This is the only part of the sample package that touches TensorFlow, and only inside the worker
processes (through ``ml.tfrecords.write_stacked``), so the viewer can import the package. Workers
are spawned, not forked: a fork of a process that already runs TensorFlow threads can deadlock.
The land-cover timelines are computed once in the parent and sent to the workers, which then need
nothing but numpy to synthesise a tile.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

from ercnn_napari.sample.acquisitions import Schedule
from ercnn_napari.sample.files import observation_path
from ercnn_napari.sample.landcover import Scene
from ercnn_napari.sample.observations import TileTimeline, synthesize_tile, tile_timeline
from ercnn_napari.sample.records import recorded_schedule
from ercnn_napari.sample.site import SampleSpec


def write_observations(folder: Path, spec: SampleSpec, scene: Scene, tiles: list[tuple[int, int]],
                       workers: int | None = None,
                       progress: Callable[[str, int, int], None] | None = None) -> dict[tuple[int, int], int]:
    """Write ``folder/{y}_{x}.tfrecords`` for ``tiles``; returns the file size of each."""
    folder.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda desc, done, total: None)
    sched = recorded_schedule(spec)        # once here, not once per worker
    jobs = [(spec, tile_timeline(scene, spec, tile), str(observation_path(folder, tile)), sched) for tile in tiles]
    workers = max(1, min(workers or (os.cpu_count() or 1), len(jobs)))
    sizes: dict[tuple[int, int], int] = {}
    report("observations", 0, len(jobs))
    if workers == 1:
        for done, job in enumerate(jobs, start=1):
            tile, size = _write_one(job)
            sizes[tile] = size
            report("observations", done, len(jobs))
        return sizes
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        for done, (tile, size) in enumerate(pool.imap_unordered(_write_one, jobs), start=1):
            sizes[tile] = size
            report("observations", done, len(jobs))
    return sizes


def _write_one(job: tuple[SampleSpec, TileTimeline, str, Schedule]) -> tuple[tuple[int, int], int]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ercnn_napari.ml.data.tfrecords import write_stacked

    spec, timeline, path, sched = job
    series = synthesize_tile(spec, timeline, sched)
    write_stacked(path, series.timestamps, series.s1_asc, series.s1_desc, series.s2)
    return timeline.tile, Path(path).stat().st_size
