"""Run ingest tasks in this process, on a Dask ``LocalCluster``, or on an existing Dask cluster.

``workers=1`` without a scheduler runs the tasks here, one after the other (no cluster to start:
the quickest path for small AoIs and the reference the parallel runs are tested against).
``workers=N`` starts a ``LocalCluster`` of N single-threaded worker processes (GDAL and numpy
release the GIL only in parts, so processes scale better than threads). ``scheduler=ADDRESS``
connects to a running cluster, e.g. one started by dask-jobqueue's ``SLURMCluster``; its workers
must see the same file system paths (the project and the source files) and have this package.
Results arrive in completion order; ``on_result`` sees each one as it comes (progress bars).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any


class TaskRunner:
    """Maps a picklable function over items; use as a context manager (it owns the cluster)."""

    def __init__(self, workers: int = 1, scheduler: str | None = None) -> None:
        self.workers = max(1, int(workers))
        self.scheduler = scheduler
        self._stack = contextlib.ExitStack()
        self.client: Any = None

    @property
    def description(self) -> str:
        if self.scheduler:
            return f"Dask scheduler {self.scheduler}"
        return "this process" if self.workers == 1 else f"Dask LocalCluster of {self.workers} workers"

    def __enter__(self) -> TaskRunner:
        if self.scheduler or self.workers > 1:
            from distributed import Client, LocalCluster

            if self.scheduler:
                self.client = self._stack.enter_context(Client(self.scheduler))
            else:
                cluster = self._stack.enter_context(LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                    silence_logs=40))
                self.client = self._stack.enter_context(Client(cluster))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def map(self, fn: Callable[..., Any], items: Sequence[Any], *args: Any,
            on_result: Callable[[Any], None] | None = None) -> list[Any]:
        """``fn(item, *args)`` for every item; results in completion order."""
        results = []
        for result in self._iterate(fn, items, *args):
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    def _iterate(self, fn: Callable[..., Any], items: Sequence[Any], *args: Any) -> Iterator[Any]:
        if not items:
            return
        if self.client is None:
            for item in items:
                yield fn(item, *args)
            return
        from distributed import as_completed

        futures = self.client.map(fn, list(items), *[[a] * len(items) for a in args], pure=False)
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()
