"""Which devices a fine-tune can use, found without importing TensorFlow.

The viewer process must never load TensorFlow, so GPUs are listed with ``nvidia-smi -L`` (the
driver's own tool) when it is installed; otherwise training runs on the CPU. The worker does the
authoritative check when it starts and reports the devices it really uses in its ``started`` event.
"""

from __future__ import annotations

from dataclasses import dataclass

from ercnn_napari.core.gpus import list_gpus, parse_nvidia_smi  # noqa: F401  (parse_nvidia_smi: re-exported)


@dataclass(frozen=True)
class Device:
    """One choice in the device menu: a label for people and the ``--gpus`` value for the trainer."""

    label: str
    gpus_arg: str


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
