"""The acquisitions that leave a record: the schedule minus Sentinel-2 scenes that are all cloud.

The authors' retrieval (Sentinel Hub through eo-learn) drops a scene with no valid pixel in the
AoI, so a fully overcast Sentinel-2 pass writes nothing -- no record, and no 2-day step if it was
alone in its bucket. The satellite still flew: the weather, clouds and atmosphere of every pass
are keyed by its number in the full schedule (``Schedule.s2_ids``), so the kept passes are the
same with or without the drop. Cached per spec: every tile of a sample shares one schedule.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ercnn_napari.core.constants import PIXEL_SIZE_M, TILE_SIZE
from ercnn_napari.sample import acquisitions, clouds
from ercnn_napari.sample.scene import STREAM_WEATHER, stream
from ercnn_napari.sample.site import SampleSpec


def full_schedule(spec: SampleSpec) -> acquisitions.Schedule:
    """Every pass the satellites made over the AoI in the period (a few missing, as in archives)."""
    return acquisitions.schedule(spec, stream(spec.seed, STREAM_WEATHER, 1))


def weather(spec: SampleSpec) -> acquisitions.Weather:
    """The sample's daily weather (clouds, soil wetness)."""
    return acquisitions.weather(spec, stream(spec.seed, STREAM_WEATHER))


@lru_cache(maxsize=8)
def recorded_schedule(spec: SampleSpec) -> acquisitions.Schedule:
    """The passes with a record: S2 scenes with at least one valid pixel in the AoI."""
    sched = full_schedule(spec)
    cloudiness, _ = weather(spec).at(sched.s2)
    aoi_m = max(spec.rows, spec.cols) * TILE_SIZE * PIXEL_SIZE_M
    rows, cols = spec.rows * TILE_SIZE, spec.cols * TILE_SIZE
    keep = np.array([clouds.clear_anywhere(clouds.cloud_lattices(spec.seed, k, float(c), aoi_m), rows, cols)
                     for k, c in enumerate(cloudiness)], bool)
    return acquisitions.Schedule(sched.s1_asc, sched.s1_desc, sched.s2[keep], np.flatnonzero(keep))
