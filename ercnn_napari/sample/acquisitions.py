"""When the satellites look, what the weather is, and the authors' 2-day stacking of the streams.

Revisits follow the real constellations over Liège: Sentinel-1 A+B give one pass every 6 days per
orbit direction (descending at 05:50 UTC, ascending at 17:24 UTC, the times in the authors'
window table); Sentinel-2A alone every 10 days until Sentinel-2B joined in July 2017, every 5 days
after, at about 10:47 UTC. A few acquisitions are missing, as in real archives.
The weather is a daily random process with a few days' memory: it drives cloud cover (so cloudy
spells persist between acquisitions), soil wetness and wind on water.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ercnn_napari.core.constants import STEP_DAYS
from ercnn_napari.sample.site import SampleSpec, utc

DAY = 86400.0
S1_REPEAT_DAYS = 6
S2_REPEAT_DAYS_ONE = 10
S2B_START = "2017-07-08T10:47:00"
S1_DESC_FIRST = "2017-01-01T05:50:00"
S1_ASC_FIRST = "2017-01-03T17:24:00"
S2A_FIRST = "2017-01-04T10:47:00"
MISSING_S1 = 0.02
MISSING_S2 = 0.03
#: e-folding time of the weather's memory, days (fitted to the real series' cloud persistence).
WEATHER_MEMORY_DAYS = 4.0


@dataclass(frozen=True)
class Schedule:
    """Acquisition times (UNIX s, sorted) of the three streams.

    ``s2_ids`` numbers each S2 acquisition in the full schedule (its clouds and atmosphere are
    keyed by it), so dropping fully cloudy scenes (``records.py``) changes no other acquisition.
    """

    s1_asc: np.ndarray
    s1_desc: np.ndarray
    s2: np.ndarray
    s2_ids: np.ndarray | None = None

    def s2_numbers(self) -> np.ndarray:
        """The S2 acquisitions' numbers in the full schedule (0..n-1 when nothing was dropped)."""
        return np.arange(self.s2.size) if self.s2_ids is None else self.s2_ids


def _periodic(first: str, step_days: float, end: float) -> np.ndarray:
    start = utc(first)
    return start + step_days * DAY * np.arange(int((end - start) // (step_days * DAY)) + 1)


def schedule(spec: SampleSpec, rng: np.random.Generator) -> Schedule:
    """Acquisition times of every stream inside the spec's period."""
    end = spec.end_seconds
    asc = _periodic(S1_ASC_FIRST, S1_REPEAT_DAYS, end)
    desc = _periodic(S1_DESC_FIRST, S1_REPEAT_DAYS, end)
    s2a = _periodic(S2A_FIRST, S2_REPEAT_DAYS_ONE, end)
    s2b = _periodic(S2B_START, S2_REPEAT_DAYS_ONE, end)
    s2 = np.sort(np.concatenate([s2a, s2b]))
    keep = lambda t, p: t[(t >= spec.start_seconds) & (t <= end) & (rng.uniform(size=t.size) >= p)]  # noqa: E731
    return Schedule(keep(asc, MISSING_S1), keep(desc, MISSING_S1), keep(s2, MISSING_S2))


@dataclass(frozen=True)
class Weather:
    """Daily weather state: ``cloudiness`` ~ N(0, 1) with memory, ``wetness`` in [0, 1]."""

    day0: float
    cloudiness: np.ndarray
    wetness: np.ndarray

    def at(self, seconds: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(cloudiness, wetness) at times (linear interpolation between days)."""
        days = (np.asarray(seconds, np.float64) - self.day0) / DAY
        grid = np.arange(self.cloudiness.size)
        return np.interp(days, grid, self.cloudiness), np.interp(days, grid, self.wetness)


def weather(spec: SampleSpec, rng: np.random.Generator) -> Weather:
    """An AR(1) daily cloudiness series; wetness follows recent cloudiness (rain) and dries out."""
    day0 = spec.start_seconds - 30 * DAY
    n = int((spec.end_seconds - day0) / DAY) + 32
    phi = np.exp(-1.0 / WEATHER_MEMORY_DAYS)
    shocks = rng.standard_normal(n) * np.sqrt(1 - phi * phi)
    cloud = np.empty(n)
    cloud[0] = rng.standard_normal()
    for k in range(1, n):
        cloud[k] = phi * cloud[k - 1] + shocks[k]
    wet = np.empty(n)
    wet[0] = 0.5
    rain = 1.0 / (1.0 + np.exp(-2.5 * (cloud - 0.6)))
    for k in range(1, n):
        wet[k] = 0.7 * wet[k - 1] + 0.3 * rain[k]
    return Weather(day0, cloud, np.clip(wet, 0, 1))


def stack_steps(times: np.ndarray, start: float, step_days: int = STEP_DAYS) -> tuple[np.ndarray, np.ndarray]:
    """The authors' temporal stacking: (bucket of each acquisition, timestamp of each written step).

    Buckets are ``step_days`` wide from ``start``; one step is written per bucket holding any
    acquisition, stamped with the time of the bucket's latest acquisition (the state it shows).
    """
    times = np.asarray(times, np.float64)
    buckets = np.floor((times - start) / (step_days * DAY)).astype(np.int64)
    order = np.argsort(times, kind="stable")
    unique = np.unique(buckets)
    step_times = np.array([times[order][buckets[order] == b].max() for b in unique])
    return buckets, step_times


def stacked_timestamps(spec: SampleSpec, sched: Schedule) -> np.ndarray:
    """Timestamps (UNIX s) of the stacked time steps, identical for every tile of the AoI."""
    all_times = np.concatenate([sched.s1_asc, sched.s1_desc, sched.s2])
    return stack_steps(all_times, spec.start_seconds)[1]
