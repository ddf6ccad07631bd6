"""The viewer side imports no TensorFlow: every plugin module, checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "ercnn_napari.napari_plugin.reader", "ercnn_napari.napari_plugin.writer",
    "ercnn_napari.napari_plugin.sample", "ercnn_napari.napari_plugin.label_dock",
    "ercnn_napari.napari_plugin.finetune_dock", "ercnn_napari.napari_plugin.review_dock",
    "ercnn_napari.napari_plugin.project_dock",
    "ercnn_napari.cli.cmd_demo",
    "ercnn_napari.napari_plugin.pixel_dock", "ercnn_napari.napari_plugin.swipe",
    "ercnn_napari.napari_plugin.reference_cog", "ercnn_napari.cli.cmd_reference",
]


def test_plugin_modules_do_not_import_tensorflow() -> None:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in MODULES)
            + "bad = [m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules]\n"
            + "print(','.join(bad))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"TensorFlow/Keras imported by the viewer side: {result.stdout}"
