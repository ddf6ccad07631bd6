"""The machine's NVIDIA GPUs, listed without TensorFlow (``nvidia-smi -L``, the driver's own tool).

Why here: the viewer (device menu) and the map driver (one Dask worker per GPU) must never load
TensorFlow, yet both need to know the GPUs before any worker starts. The worker that then runs
TensorFlow does the authoritative check and reports the devices it really uses.
"""

from __future__ import annotations

import re
import shutil
import subprocess

_GPU_LINE = re.compile(r"^GPU\s+(\d+):\s*(.*?)\s*(\(UUID:.*\))?$")


def parse_nvidia_smi(text: str) -> list[tuple[int, str]]:
    """``nvidia-smi -L`` output -> [(index, name)]; lines that are not GPUs are ignored."""
    found = []
    for line in text.splitlines():
        match = _GPU_LINE.match(line.strip())
        if match:
            found.append((int(match.group(1)), match.group(2)))
    return found


def list_gpus(timeout: float = 5.0) -> list[tuple[int, str]]:
    """GPUs the NVIDIA driver reports, or [] when there is no driver or it does not answer in time."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        result = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(result.stdout) if result.returncode == 0 else []
