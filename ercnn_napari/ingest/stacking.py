"""The authors' temporal stacking rule (ercnn_facts §8.2), for one tile at a time.

Three float32 state frames (S1 ascending, S1 descending, S2) start at zero. Every acquisition, in
time order, overwrites its own stream only where its mask is valid, so cloudy or missing pixels
keep their last valid value (or 0 if never valid). Time is cut into 2-day buckets aligned to the
period start; after the last acquisition of a non-empty bucket one record is written, stamped with
that acquisition's time and holding the current state of all three streams. Acquisitions before
the start only pre-fill the state; empty buckets write nothing.

The plan (:func:`plan_steps`) depends on acquisition times only, so it is computed once for the
whole AoI (every tile shares the same time axis, as in the authors' whole-AoI stacking), and
:func:`stack_tile` streams the records of one tile without holding its series in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ercnn_napari.core.constants import STEP_DAYS
from ercnn_napari.ingest.scene import S1_BANDS, S2_BANDS, STREAMS

DAY_SECONDS = 86400.0
#: Channels of each stream's state frame.
STREAM_CHANNELS: dict[str, int] = {"S1_ascending": len(S1_BANDS), "S1_descending": len(S1_BANDS), "S2": len(S2_BANDS)}


@dataclass(frozen=True)
class StackPlan:
    """Which acquisitions close a record, and the records' timestamps."""

    times: np.ndarray        #: float64 [A] acquisition times (UNIX s), non-decreasing
    buckets: np.ndarray      #: int64 [A] 2-day bucket of each acquisition (negative: before the start)
    closes: np.ndarray       #: int64 [A]: index of the record written after acquisition a, or -1
    timestamps: np.ndarray   #: float64 [N] record stamps: the last acquisition of each non-empty bucket

    @property
    def prefill(self) -> np.ndarray:
        """bool [A]: acquisitions before the start (they only pre-fill the state)."""
        return self.buckets < 0


def bucket_of(times: np.ndarray, start_seconds: float, step_days: int = STEP_DAYS) -> np.ndarray:
    """2-day bucket index of each time, aligned to the start (negative before it)."""
    return np.floor((np.asarray(times, np.float64) - start_seconds) / (step_days * DAY_SECONDS)).astype(np.int64)


def plan_steps(times: np.ndarray, start_seconds: float, step_days: int = STEP_DAYS) -> StackPlan:
    """The record plan for acquisitions at ``times`` (which must be sorted, non-decreasing)."""
    times = np.asarray(times, np.float64)
    if times.size and np.any(np.diff(times) < 0):
        raise ValueError("acquisition times must be sorted")
    buckets = bucket_of(times, start_seconds, step_days)
    closes = np.full(times.size, -1, np.int64)
    stamps: list[float] = []
    for a in range(times.size):
        last_of_bucket = a == times.size - 1 or buckets[a + 1] != buckets[a]
        if last_of_bucket and buckets[a] >= 0:
            closes[a] = len(stamps)
            stamps.append(float(times[a]))
    return StackPlan(times, buckets, closes, np.asarray(stamps, np.float64))


#: One record of the stacked series: (timestamp, S1 ascending, S1 descending, S2).
Record = tuple[float, np.ndarray, np.ndarray, np.ndarray]
#: Reads acquisition ``a`` for the tile: (stream name, float32 [H, W, C] values, bool [H, W] valid).
AcquisitionReader = Callable[[int], tuple[str, np.ndarray, np.ndarray]]


def stack_tile(plan: StackPlan, read: AcquisitionReader, height: int, width: int) -> Iterator[Record]:
    """Yield the tile's records in time order, applying the carry-forward rule.

    Only the three state frames are held; each yielded record is a fresh copy, so a consumer may
    keep it (the writer does not).
    """
    state = {name: np.zeros((height, width, STREAM_CHANNELS[name]), np.float32) for name in STREAMS}
    for a in range(plan.times.size):
        stream, values, valid = read(a)
        frame = state[stream]
        if values.shape != frame.shape or valid.shape != frame.shape[:2]:
            raise ValueError(f"acquisition {a} of {stream} has shape {values.shape}/{valid.shape}, "
                             f"expected {frame.shape}")
        frame[valid] = values[valid]
        record = plan.closes[a]
        if record >= 0:
            yield (float(plan.timestamps[record]), state["S1_ascending"].copy(),
                   state["S1_descending"].copy(), state["S2"].copy())
