"""The worker-process adapter and the device list, with TF-free workers (fast)."""

from __future__ import annotations

from ercnn_napari.napari_plugin.devices import device_choices, parse_nvidia_smi
from ercnn_napari.napari_plugin.worker_process import WorkerProcess, worker_command

NVIDIA_SMI = """GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1b2c)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-9f8e)
"""


def test_devices_from_nvidia_smi_and_cpu_fallback():
    gpus = parse_nvidia_smi(NVIDIA_SMI)
    assert gpus == [(0, "NVIDIA A100-SXM4-40GB"), (1, "NVIDIA A100-SXM4-40GB")]
    choices = device_choices(gpus)
    assert [c.gpus_arg for c in choices] == ["all", "0", "1", "none"]
    assert [c.label for c in device_choices([])] == ["CPU"]


def test_worker_failure_without_error_event_is_one_line(qtbot, tmp_path):
    worker = WorkerProcess(["info", str(tmp_path / "missing")])
    results = []
    worker.done.connect(results.append)
    worker.start()
    qtbot.waitUntil(lambda: bool(results), timeout=60_000)
    result = results[0]
    assert result.status == "failed" and result.exit_code == 2
    assert "missing" in result.error_message and "does not exist" in result.error_message
    assert "\n" not in result.error_message and "Traceback" not in result.error_message


def test_worker_output_is_parsed_line_by_line(qtbot, small_project):
    worker = WorkerProcess(["info", str(small_project.root), "--json"], niceness=5)
    results, logs = [], []
    worker.done.connect(results.append)
    worker.log.connect(logs.append)
    worker.start()
    qtbot.waitUntil(lambda: bool(results), timeout=60_000)
    # `info --json` prints JSON that is no progress event: kept as Unknown messages or log lines
    assert results[0].exit_code == 0 and results[0].status == "completed"
    seen = " ".join(logs) + " ".join(str(getattr(m, "raw", "")) for m in worker.messages)
    assert "Liege" in seen
    assert worker_command(["info"], 5)[1] == "-c" and worker_command(["info"])[1:3] == ["-m", "ercnn_napari"]
