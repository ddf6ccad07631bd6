"""Where the benchmarks find the authors' published weights (not shipped with the project).

The same two variables as the tests (README, "Reference data for the tests"):
``ERCNN_PUBLISHED_WEIGHTS`` names the file, or ``ERCNN_SHARED_DIR`` a folder with ``models/``.
"""

from __future__ import annotations

import os
from pathlib import Path


def published_weights() -> Path:
    """The published weights file; stop with a sentence naming the variables when neither is set."""
    explicit = os.environ.get("ERCNN_PUBLISHED_WEIGHTS")
    if explicit:
        return Path(explicit)
    shared = os.environ.get("ERCNN_SHARED_DIR")
    if shared:
        return Path(shared) / "models" / "ercnn_drs_s12_pretrained.hdf5"
    raise SystemExit("set ERCNN_PUBLISHED_WEIGHTS or ERCNN_SHARED_DIR to find the published weights")
