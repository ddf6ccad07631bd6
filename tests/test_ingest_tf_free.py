"""Ingest never loads TensorFlow: its workers (Dask processes, perhaps on a cluster) stay light, and
the viewer may import the fidelity note and the source table. Checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "ercnn_napari.ingest.pipeline", "ercnn_napari.ingest.local_source", "ercnn_napari.ingest.sources",
    "ercnn_napari.ingest.tfrecord_writer", "ercnn_napari.core.aoi", "ercnn_napari.core.fidelity",
    "ercnn_napari.cli.cmd_ingest", "ercnn_napari.cli.cmd_new",
]


def test_ingest_modules_do_not_import_tensorflow() -> None:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in MODULES)
            + "from ercnn_napari.cli.main import build_parser\nbuild_parser()\n"
            + "bad = [m for m in ('tensorflow', 'keras', 'tf_keras', 'qtpy', 'napari') if m in sys.modules]\n"
            + "print(','.join(bad))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"heavy modules imported by ingest: {result.stdout}"
