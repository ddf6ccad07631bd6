"""Where a sample project keeps its generated files: names only, cheap to import.

``demo`` asks on every start whether the cached sample is complete. That question needs these
names and nothing of the generator (scipy, rasterio: seconds to import on a busy machine), so
they live here and the writers import them from here.
"""

from __future__ import annotations

from pathlib import Path

from ercnn_napari.core.tiles import tile_stem

ANSWER_DIR = "answer_key"
OBSERVATIONS_DIR = "observations"
TIMESTAMPS_FILE = "timestamps.json"
SAMPLE_FILE = "sample.json"


def observation_path(folder: Path, tile: tuple[int, int]) -> Path:
    """The stacked observation file of ``tile`` in the observations ``folder``."""
    return folder / f"{tile_stem(tile)}.tfrecords"
