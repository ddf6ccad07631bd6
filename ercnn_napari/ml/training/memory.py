"""Pre-flight memory estimate of a transfer step, so a run that cannot fit is refused up front.

Why: a straightforward transfer step of ERCNN-DRS holds the activations of K ConvLSTM passes
over 92 time steps on one gradient tape (~0.4 GB per window and tile-sample on a CPU). Running
out of memory forty minutes into a run, or swapping a laptop to a standstill, is worse than a
clear refusal with the numbers before the first step.

The model. Almost all of a step's memory is the activations a gradient tape keeps per pixel and
per time step of a window; they scale with ``batch x T x H x W`` and with the filters:

- the input (17 channels) and, per time-distributed Conv+BatchNorm+ReLU block, about 3 tensors
  of its filters (SAR block; two optical blocks);
- per ConvLSTM filter about 22 tensors per step (input-gate convolution of 4 gates, 4 recurrent
  convolutions of dropout-masked states, 4 masks applied, pre-activations, gate activations,
  cell and hidden states and their tanh).

That "channels per pixel-step" count times 4 bytes times ``T x H x W`` is the tape of one window
for one sample; :data:`TAPE_CALIBRATION` scales it to what was measured (allocator granularity,
oneDNN scratch buffers, gradient temporaries). The straightforward step tapes K windows, the lean
step (:mod:`ercnn_napari.ml.training.lean_gradients`) one. Added on top: the input windows (the batch in use
plus :data:`INPUT_COPIES` - 1 prefetched ones), a fixed step overhead, and, for a whole process,
the TensorFlow runtime with the model and its graph (:data:`RUNTIME_BYTES`).

Calibration (benchmarks/finetune_memory.py, full network, T=92, 32x32, 2-core CPU, TF 2.21 /
Keras 3.15; peak RSS above the RSS after model and graph build, GiB):

    straightforward  batch 1: K=2 1.03, K=4 1.66-1.80, K=10 4.11
    lean             batch 1: K=2 0.54, K=4 0.64, K=8 0.79, K=10 0.84

The straightforward slope is 0.385 GiB per window; the modelled tape is 0.349 GiB per window
(995 channels x 4 B x 92 x 32 x 32) and the input windows (6.4 MB each, ~6 copies) make up the
rest, so :data:`TAPE_CALIBRATION` is 1.0. The constant part of both variants is 0.14-0.26 GiB
(:data:`STEP_OVERHEAD_BYTES` takes the larger). The estimate is thus exact for the straightforward
step and 0.1-0.13 GiB on the safe side for the lean one.

This module does not import TensorFlow at import time (only :func:`available_bytes` may, to list
GPUs), and takes the model configuration duck-typed (``time_steps``, ``sar_filters``,
``opt_filters``; see :class:`ercnn_napari.ml.model.network.ModelConfig`).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from ercnn_napari.core.constants import MAX_OBSERVATIONS, N_CHANNELS, TILE_SIZE
from ercnn_napari.core.errors import ResourceError

BYTES_PER_FLOAT = 4
#: tensors kept per filter and pixel-step by a time-distributed Conv + BatchNorm + ReLU block
CONV_BLOCK_TENSORS = 3
#: tensors kept per filter and pixel-step by a ConvLSTM with recurrent dropout
CONVLSTM_TENSORS = 22
#: measured / modelled tape size (see the module docstring)
TAPE_CALIBRATION = 1.0
#: copies of the input windows alive at once (generator, conversion, prefetch buffer, the batch
#: in use), as measured with a prefetch of two batches
INPUT_COPIES = 6
#: fixed extra memory of one step (gradients, optimizer temporaries, allocator slack), measured
STEP_OVERHEAD_BYTES = 256 * 2**20
#: TensorFlow runtime + the full model + a step's graph in a fresh process (measured 0.64-0.79 GiB)
RUNTIME_BYTES = 800 * 2**20
#: fraction of the available memory a run may plan to use (the rest is for the OS and the viewer)
USABLE_FRACTION = 0.9


def channels_per_pixel_step(config: Any) -> int:
    """Tensors (counted in channels) a gradient tape keeps per pixel and time step of one window.

    A model with a reference input runs the branches on two windows per window: twice as much.
    """
    sar, opt = int(config.sar_filters), int(config.opt_filters)
    conv_blocks = CONV_BLOCK_TENSORS * (sar + 2 * opt)
    convlstms = CONVLSTM_TENSORS * (sar + opt)
    return _windows_per_input(config) * (N_CHANNELS + conv_blocks + convlstms)


def _windows_per_input(config: Any) -> int:
    """Windows in one model input: 2 with a reference window beside it (ml.model.network)."""
    return 2 if getattr(config, "reference", False) else 1


def window_tape_bytes(config: Any, height: int = TILE_SIZE, width: int = TILE_SIZE) -> int:
    """Calibrated bytes of one window's activations on a tape, for ONE sample."""
    time_steps = int(getattr(config, "time_steps", MAX_OBSERVATIONS))
    raw = channels_per_pixel_step(config) * BYTES_PER_FLOAT * time_steps * height * width
    return int(raw * TAPE_CALIBRATION)


def estimate_peak_bytes(
    config: Any,
    batch: int,
    windows: int,
    lean: bool = True,
    height: int = TILE_SIZE,
    width: int = TILE_SIZE,
    include_runtime: bool = False,
) -> int:
    """Estimated peak memory of one transfer step of ``batch`` tile-samples x ``windows`` windows.

    Without ``include_runtime`` this is the memory a process needs ON TOP of what it holds once
    TensorFlow is imported and the model is built (compare it with :func:`available_bytes` at that
    moment); with it, the whole worker process. For several replicas pass the per-replica batch.
    """
    if batch < 1 or windows < 1 or height < 1 or width < 1:
        raise ValueError(f"batch, windows, height and width must be positive, got {batch}, {windows}, {height}, {width}")
    time_steps = int(getattr(config, "time_steps", MAX_OBSERVATIONS))
    taped_windows = 1 if lean else windows
    tape = taped_windows * batch * window_tape_bytes(config, height, width)
    inputs = (INPUT_COPIES * batch * windows * time_steps * height * width * N_CHANNELS * BYTES_PER_FLOAT
              * _windows_per_input(config))
    total = tape + inputs + STEP_OVERHEAD_BYTES
    return int(total + (RUNTIME_BYTES if include_runtime else 0))


def available_bytes(device: str = "cpu") -> int | None:
    """Memory a run could use now on ``device``: "cpu" (system RAM) or "gpu:N".

    CPU: psutil's ``available`` (free plus reclaimable cache). GPU: total minus used as reported
    by ``nvidia-smi`` (TensorFlow itself only reports what it has allocated, not the card's size);
    None when that cannot be determined, in which case the caller should not refuse the run.
    """
    device = device.lower()
    if device == "cpu":
        import psutil

        return int(psutil.virtual_memory().available)
    if device.startswith("gpu"):
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return _nvidia_free_bytes(index)
    raise ValueError(f"unknown device {device!r} (use 'cpu' or 'gpu:N')")


def _nvidia_free_bytes(index: int) -> int | None:
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        out = subprocess.run(
            [tool, f"--id={index}", "--query-gpu=memory.total,memory.used", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
        total_mib, used_mib = (float(v) for v in out.strip().splitlines()[0].split(","))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    return int((total_mib - used_mib) * 2**20)


def check_fits(estimate: int, available: int | None, what: str = "one training step", device: str = "CPU") -> None:
    """Raise :class:`ResourceError` with the numbers when ``estimate`` exceeds the usable memory.

    Usable is :data:`USABLE_FRACTION` of ``available``. ``available=None`` (unknown) passes.
    """
    if available is None:
        return
    usable = int(available * USABLE_FRACTION)
    if estimate > usable:
        gib = 2.0**30
        raise ResourceError(
            f"{what} needs an estimated {estimate / gib:.2f} GiB but only {available / gib:.2f} GiB is available "
            f"on {device} ({usable / gib:.2f} GiB usable); use the lean gradients, fewer windows per sample, "
            f"a smaller batch or more devices"
        )


def describe(estimate: int, available: int | None) -> str:
    """One line for logs and the ``preflight`` progress message."""
    gib = 2.0**30
    if available is None:
        return f"estimated peak {estimate / gib:.2f} GiB (available memory unknown)"
    return f"estimated peak {estimate / gib:.2f} GiB of {available / gib:.2f} GiB available"


def estimate_cached_head_bytes(
    config: Any,
    batch: int,
    windows: int,
    cached_windows: int,
    height: int = TILE_SIZE,
    width: int = TILE_SIZE,
    inference_batch: int = 8,
) -> int:
    """Peak memory of a frozen-backbone run (ml.frozen_backbone): the feature cache dominates.

    The cache holds ``cached_windows`` maps of the concatenated ConvLSTM states; filling it runs
    the backbone without a tape on ``inference_batch`` windows at a time; a head step tapes only
    the head's few channels (counted generously as ten copies of the features).
    """
    features = (int(config.sar_filters) + int(config.opt_filters)) * height * width * BYTES_PER_FLOAT
    cache = cached_windows * features
    time_steps = int(getattr(config, "time_steps", MAX_OBSERVATIONS))
    fill = INPUT_COPIES * inference_batch * time_steps * height * width * N_CHANNELS * BYTES_PER_FLOAT
    head_step = 10 * batch * windows * features * _windows_per_input(config)
    return int(cache + max(fill, head_step) + STEP_OVERHEAD_BYTES)

