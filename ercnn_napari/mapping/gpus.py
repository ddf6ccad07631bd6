"""``map --gpus``: one Dask worker process per GPU, each seeing only its own GPU.

Why a worker plugin: a local cluster passes one environment to all its workers, but each worker
must see a different ``CUDA_VISIBLE_DEVICES``, and it must be set before the worker's first task
imports TensorFlow (TensorFlow reads it once, when it initialises CUDA). A Dask ``WorkerPlugin``
registered before the first task runs ``setup`` in every worker process (and again in a worker
its nanny restarts, which keeps its name), and the workers of a ``LocalCluster`` are named
0, 1, ..., so worker *i* gets the *i*-th listed GPU. Everything here is TensorFlow-free: GPUs
are found with ``nvidia-smi -L`` (:mod:`ercnn_napari.core.gpus`).
"""

from __future__ import annotations

import os
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.gpus import list_gpus

PLUGIN_NAME = "ercnn-gpu-assignment"


def resolve_gpus(spec: str, found: list[tuple[int, str]] | None = None) -> list[int]:
    """``--gpus all`` / ``0,1`` -> the GPU numbers to use, one worker each; a clear error without GPUs.

    ``found``: the machine's GPUs (default: ``nvidia-smi -L``). ``none`` -> [] (CPU workers).
    """
    from ercnn_napari.ml.training.distribute import (
        parse_gpu_spec,  # TensorFlow-free: the trainer's --gpus syntax
    )

    wanted = parse_gpu_spec(spec)
    if wanted == []:
        return []
    found = list_gpus() if found is None else found
    numbers = [index for index, _name in found]
    if not numbers:
        raise ErcnnError(f"--gpus {spec}: no NVIDIA GPU found on this machine ('nvidia-smi -L' is not installed "
                         "or lists none); leave out --gpus to map on the CPU with --workers N")
    if wanted is None:
        return numbers
    missing = [i for i in wanted if i not in numbers]
    if missing:
        raise ErcnnError(f"--gpus {spec}: no GPU {', '.join(map(str, missing))} on this machine "
                         f"('nvidia-smi -L' lists {', '.join(map(str, numbers))})")
    return wanted


class GpuAssignment(WorkerPlugin):
    """Sets ``CUDA_VISIBLE_DEVICES`` in worker *i* (by name) to the *i*-th GPU of ``gpus``."""

    name = PLUGIN_NAME

    def __init__(self, gpus: list[int]) -> None:
        self.gpus = [int(g) for g in gpus]

    def setup(self, worker: Any) -> None:
        try:
            position = int(worker.name)
        except (TypeError, ValueError):
            raise RuntimeError(f"worker {worker.name!r} is not one of this map's local workers (0..{len(self.gpus) - 1})"
                               ) from None
        os.environ["CUDA_VISIBLE_DEVICES"] = str(self.gpus[position % len(self.gpus)])


def visible_devices() -> str | None:
    """What a worker's TensorFlow will see (run in each worker by tests and the started event)."""
    return os.environ.get("CUDA_VISIBLE_DEVICES")
