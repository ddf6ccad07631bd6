"""Run a whole-AoI map on Dask: blocks of tiles as tasks, progress as messages, resume, cancel.

The driver process imports no TensorFlow: it plans the tasks, submits
:func:`ercnn_napari.mapping.block_task.run_block` to Dask workers (a ``LocalCluster`` of worker
processes by default, or any running scheduler, e.g. dask-jobqueue's SLURMCluster), reports a
``progress`` message per finished block, and assembles the mosaic outputs at the end.

Why Dask distributed rather than a process pool: the same code runs on one workstation and on
a cluster; a worker that dies is restarted by its nanny and its task re-run elsewhere; and a
worker keeps its models loaded across tasks. Each worker's memory is one block of tiles plus
their neighbours, independent of the AoI's size.

Resume: finished tiles are files (atomic writes), so a re-run submits only the blocks with a
missing tile, and inside a block the worker skips tiles already written. Cancel (SIGTERM /
Ctrl-C): futures are cancelled, the cluster closed, and what was written stays for the re-run.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from ercnn_napari.core.messages import Finished, MessageWriter, Progress, Started
from ercnn_napari.core.tiles import format_tile_id
from ercnn_napari.core.window_table import WindowTable
from ercnn_napari.mapping.plan import TILES_DIR, MapPlan, check_resumable, tile_done, write_map_info


def worker_env(n_workers: int) -> dict[str, str]:
    """Environment of each worker process: share the cores out, keep TensorFlow quiet."""
    threads = max(1, (os.cpu_count() or 1) // max(1, n_workers))
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}


def start_client(workers: int | None, scheduler: str | None, gpus: list[int] | None = None) -> tuple[Any, Any]:
    """(client, cluster or None): a LocalCluster of ``workers`` processes, or the given scheduler.

    ``gpus``: one local worker per listed GPU, worker *i* seeing only GPU ``gpus[i]``
    (:class:`ercnn_napari.mapping.gpus.GpuAssignment`, registered before any task runs).
    """
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    n = len(gpus) if gpus else max(1, int(workers or 1))
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR, env=worker_env(n))
    client = Client(cluster)
    if gpus:
        from ercnn_napari.mapping.gpus import GpuAssignment

        client.wait_for_workers(n)
        client.register_plugin(GpuAssignment(gpus))
    return client, cluster


def run_map(plan: MapPlan, grid: Any, writer: MessageWriter, workers: int | None = None,
            scheduler: str | None = None, notices: list[str] | None = None,
            gpus: list[int] | None = None) -> dict[str, Any]:
    """Predict every missing tile of ``plan`` on Dask, then assemble the mosaics; returns the summary."""
    from distributed import as_completed

    from ercnn_napari.mapping.assemble import assemble
    from ercnn_napari.mapping.block_task import run_block, tile_windows

    out = Path(plan.out)
    out.mkdir(parents=True, exist_ok=True)
    check_resumable(out, plan)
    for stray in (out / TILES_DIR).glob(".*.tmp.npy") if (out / TILES_DIR).is_dir() else ():
        stray.unlink(missing_ok=True)  # left by a killed run's atomic writes (never a finished tile)
    size = grid.tile_size
    total = len(plan.tiles)
    started = time.perf_counter()
    client = cluster = None
    futures: list[Any] = []
    try:
        client, cluster = start_client(workers, scheduler, gpus)
        # the window table comes from a worker: reading observation files needs TensorFlow
        table: WindowTable = client.submit(tile_windows, plan.project, format_tile_id(plan.tiles[0]),
                                           plan.stride, pure=False).result()
        write_map_info(out, plan, "running", notices=notices or [], windows=len(table))
        todo = [b for b in plan.blocks() if not all(tile_done(out, t, len(table), size) for t in b)]
        done = done_before = total - sum(len(b) for b in todo)
        windows, busy = 0, 0.0
        writer.emit(Started(run_dir=str(out), total=total,
                            config={**plan.settings(), "blocks": len(todo), "tiles_done_before": done_before,
                                    "windows": len(table), "workers": len(gpus) if gpus else workers,
                                    "gpus": gpus, "scheduler": scheduler}))
        writer.emit(Progress(done=done, total=total, desc="mapping tiles", unit="tiles"))
        extra = {"n_obs": [int(v) for v in table.n_obs], "start_time": [float(v) for v in table.start_time],
                 "tile_size": size}
        futures = [client.submit(run_block, {**plan.task(b), **extra}, pure=False,
                                 key=f"map-block-{format_tile_id(b[0]).replace(':', '_')}-{k}")
                   for k, b in enumerate(todo)]
        for future in as_completed(futures):
            result = future.result()  # a worker's ErcnnError travels back and is raised here
            done += len(result["tiles"])
            windows += result["windows"]
            busy += result["seconds"]
            writer.emit(Progress(done=done, total=total, desc="mapping tiles", unit="tiles"))
    except BaseException:
        for future in futures:
            future.cancel()
        write_map_info(out, plan, "incomplete", notices=notices or [])
        raise
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    predict_seconds = time.perf_counter() - started
    assembled = assemble(out, grid, plan.tiles, table, {"settings": plan.settings()})
    seconds = time.perf_counter() - started
    summary = {"tiles": total, "tiles_predicted": total - done_before, "windows_predicted": windows,
               "predict_seconds": round(predict_seconds, 3), "seconds": round(seconds, 3),
               "worker_seconds": round(busy, 3),
               "windows_per_s": round(windows / predict_seconds, 3) if windows and predict_seconds > 0 else None,
               **assembled}
    write_map_info(out, plan, "complete", notices=notices or [], windows=len(table), summary=summary)
    writer.emit(Finished(status="completed", out=str(out), summary=summary))
    return summary
