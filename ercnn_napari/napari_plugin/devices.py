"""Which devices a fine-tune can use, found without importing TensorFlow.

The viewer process must never load TensorFlow, so GPUs are listed with ``nvidia-smi -L`` (the
driver's own tool) when it is installed; otherwise training runs on the CPU. The worker does the
authoritative check when it starts and reports the devices it really uses in its ``started`` event.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

_GPU_LINE = re.compile(r"^GPU\s+(\d+):\s*(.*?)\s*(\(UUID:.*\))?$")


@dataclass(frozen=True)
class Device:
    """One choice in the device menu: a label for people and the ``--gpus`` value for the trainer."""

    label: str
    gpus_arg: str


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


def device_choices(gpus: list[tuple[int, str]] | None = None) -> list[Device]:
    """The device menu: all GPUs, each GPU alone, and the CPU (the only entry without a GPU)."""
    gpus = list_gpus() if gpus is None else gpus
    choices: list[Device] = []
    if len(gpus) > 1:
        choices.append(Device(f"all {len(gpus)} GPUs", "all"))
    for index, name in gpus:
        choices.append(Device(f"GPU {index}: {name}", str(index)))
    choices.append(Device("CPU", "none"))
    return choices
