"""``map --gpus``: GPUs found without TensorFlow, one local Dask worker per GPU, each seeing only its own.

No GPU is needed: the GPU listing is read from a stand-in ``nvidia-smi`` speaking the real
``-L`` format, and the worker assignment is checked by asking every worker process for the
``CUDA_VISIBLE_DEVICES`` its TensorFlow would read.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.gpus import list_gpus
from ercnn_napari.mapping.gpus import resolve_gpus, visible_devices

SMI_OUTPUT = ("GPU 0: NVIDIA H200 (UUID: GPU-0b1c2d3e-0000-1111-2222-333344445555)\n"
              "GPU 1: NVIDIA H200 (UUID: GPU-0b1c2d3e-0000-1111-2222-333344445556)\n")


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    tool = tmp_path / "bin" / "nvidia-smi"
    tool.parent.mkdir()
    tool.write_text(f"#!/bin/sh\n[ \"$1\" = \"-L\" ] || exit 9\nprintf '{SMI_OUTPUT}'\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return tool


def test_gpus_are_listed_from_nvidia_smi(fake_smi):
    assert list_gpus() == [(0, "NVIDIA H200"), (1, "NVIDIA H200")]
    assert resolve_gpus("all") == [0, 1]
    assert resolve_gpus("1") == [1]
    assert resolve_gpus("none") == []
    with pytest.raises(ErcnnError, match="no GPU 3 on this machine"):
        resolve_gpus("0,3")


def test_no_gpu_is_one_clear_message():
    with pytest.raises(ErcnnError, match="no NVIDIA GPU found"):
        resolve_gpus("all", found=[])
    with pytest.raises(ErcnnError, match="GPU numbers"):
        resolve_gpus("first", found=[(0, "x")])


def test_map_gpus_all_without_gpus_exits_2(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}   # no nvidia-smi on the PATH: no driver
    result = subprocess.run([sys.executable, "-m", "ercnn_napari", "map", str(tmp_path / "p"), "--model",
                             str(tmp_path / "m.ercnn.h5"), "--gpus", "all", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and "no NVIDIA GPU found" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_each_worker_sees_its_own_gpu():
    """One worker per listed GPU; worker i's CUDA_VISIBLE_DEVICES is the i-th GPU, set before any task."""
    from ercnn_napari.mapping.driver import start_client

    client, cluster = start_client(None, None, gpus=[3, 5])
    try:
        seen = client.run(lambda dask_worker: (dask_worker.name, visible_devices()))
        assert sorted(seen.values()) == [(0, "3"), (1, "5")]
        # what a task sees (the map's block tasks import TensorFlow there)
        tasks = client.map(lambda i: visible_devices(), range(8), pure=False)
        assert set(client.gather(tasks)) <= {"3", "5"}
        threads = client.run(lambda: os.environ.get("TF_NUM_INTRAOP_THREADS"))
        assert set(threads.values()) == {str(max(1, (os.cpu_count() or 1) // 2))}
    finally:
        client.close()
        cluster.close()
    assert visible_devices() == os.environ.get("CUDA_VISIBLE_DEVICES")  # the driver's own env is untouched
