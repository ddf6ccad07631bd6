"""Pre-flight memory estimate: its arithmetic, its calibration points and the refusal message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ercnn_napari.core.errors import ResourceError
from ercnn_napari.ml.training import memory
from ercnn_napari.ml.training.memory import (
    available_bytes,
    channels_per_pixel_step,
    check_fits,
    estimate_peak_bytes,
)

GIB = 2**30


class FullConfig:  # the published architecture, duck-typed like ModelConfig
    time_steps, sar_filters, opt_filters, head_filters = 92, 10, 26, 8


def test_channel_count_of_the_published_network() -> None:
    # 17 input + 3 x (10 + 2 x 26) conv-block tensors + 22 x (10 + 26) ConvLSTM tensors
    assert channels_per_pixel_step(FullConfig()) == 17 + 3 * 62 + 22 * 36 == 995


def test_estimate_arithmetic_by_hand() -> None:
    tape = 995 * 4 * 92 * 32 * 32  # one window, one sample
    inputs = memory.INPUT_COPIES * 2 * 10 * 92 * 32 * 32 * 17 * 4
    expected = 10 * 2 * tape + inputs + memory.STEP_OVERHEAD_BYTES
    assert estimate_peak_bytes(FullConfig(), batch=2, windows=10, lean=False) == expected
    lean = estimate_peak_bytes(FullConfig(), batch=2, windows=10, lean=True)
    assert lean == expected - 9 * 2 * tape
    with_runtime = estimate_peak_bytes(FullConfig(), 2, 10, lean=True, include_runtime=True)
    assert with_runtime == lean + memory.RUNTIME_BYTES


@pytest.mark.parametrize(("lean", "windows", "measured_gib"), [
    (False, 2, 1.03), (False, 10, 4.11), (True, 2, 0.54), (True, 10, 0.84),
])
def test_estimate_against_benchmark_measurements(lean: bool, windows: int, measured_gib: float) -> None:
    """Measured peaks of benchmarks/finetune_memory.py (batch 1): never under, at most 25 % over."""
    estimate = estimate_peak_bytes(FullConfig(), batch=1, windows=windows, lean=lean) / GIB
    assert measured_gib * 0.97 <= estimate <= measured_gib * 1.25 + 0.05


def test_lean_grows_only_with_inputs_and_scales_with_tile_area() -> None:
    small = estimate_peak_bytes(FullConfig(), 1, 2, lean=True)
    large = estimate_peak_bytes(FullConfig(), 1, 10, lean=True)
    assert large - small == 8 * memory.INPUT_COPIES * 92 * 32 * 32 * 17 * 4
    big_tile = estimate_peak_bytes(FullConfig(), 1, 10, lean=False, height=64, width=64)
    assert big_tile - memory.STEP_OVERHEAD_BYTES == 4 * (
        estimate_peak_bytes(FullConfig(), 1, 10, lean=False) - memory.STEP_OVERHEAD_BYTES)


def test_model_config_is_accepted() -> None:
    model = pytest.importorskip("ercnn_napari.ml.model.network")
    assert estimate_peak_bytes(model.ModelConfig(), 1, 10) == estimate_peak_bytes(FullConfig(), 1, 10)
    assert estimate_peak_bytes(model.ModelConfig.tiny(), 1, 4) < 0.5 * GIB


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        estimate_peak_bytes(FullConfig(), 0, 10)


def test_check_fits_refuses_with_the_numbers() -> None:
    estimate = estimate_peak_bytes(FullConfig(), 8, 10, lean=False)  # the authors' 8 x 10 per GPU
    with pytest.raises(ResourceError, match=r"needs an estimated 3[0-9]\.\d\d GiB but only 24\.00 GiB") as info:
        check_fits(estimate, 24 * GIB, device="GPU 0")
    assert info.value.kind == "out_of_memory" and "GPU 0" in str(info.value)
    check_fits(estimate_peak_bytes(FullConfig(), 8, 10, lean=True), 24 * GIB)  # lean fits
    check_fits(estimate, None)  # unknown: not refused
    with pytest.raises(ResourceError):  # 90 % of what is available is the limit
        check_fits(int(0.95 * GIB), GIB)


def test_available_bytes() -> None:
    psutil = pytest.importorskip("psutil")
    cpu = available_bytes("cpu")
    assert 0 < cpu <= psutil.virtual_memory().total
    with pytest.raises(ValueError, match="unknown device"):
        available_bytes("tpu")


def test_importing_memory_does_not_import_tensorflow() -> None:
    code = "import sys, ercnn_napari.ml.training.memory as m; m.estimate_peak_bytes(type('C', (), dict(time_steps=92, " \
           "sar_filters=10, opt_filters=26))(), 1, 10); assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
