"""The authors' windowing of a stacked time series into 6-month windows (numpy only).

A stacked series has one time step per 2-day bucket that holds any acquisition (S1 ascending,
S1 descending or S2), so consecutive steps are 2 or more days apart. ERCNN-DRS sees the series
through windows:

* a window may start at every ``stride``-th step (the stride counts steps, not days: 1 for
  training data, 5 in the authors' Liège inference);
* the window starting at step ``s`` holds the steps ``s, s+1, ...`` whose timestamp is at most
  ``t_s + 182 days``. The end is **inclusive**: on the densest possible series (one step every
  2 days) that gives steps at +0, +2, ..., +182 days, i.e. ceil(182 / 2) + 1 = 92 observations,
  exactly the network's T. With an exclusive end T would be 91, so the published T = 92 fixes
  the choice. (On the authors' Liège 2017-2020 table both rules give the same windows because
  no step falls exactly on the boundary; the inclusive rule reproduces their observation counts.)
* a window keeps at most 92 observations (later ones are cut) and is dropped when it has fewer
  than 35. Windows near the end of the series are truncated by the series end, shrink step by
  step and are kept as long as they still hold 35 observations; they all end on the last date,
  as in the authors' table (540 windows of 35-82 observations for 2017-01-01 .. 2021-01-16).
* the window's End Time is the time of its last observation; its mid-point is
  start + (end - start) / 2, which labels the viewer's time slider.

Kept windows are numbered 1, 2, ... in start order, like the IDs of the authors' CSV.
"""

from __future__ import annotations

import os

import numpy as np

from ercnn_napari.core.constants import MAX_OBSERVATIONS, MIN_OBSERVATIONS, WINDOW_DAYS
from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.window_table import WindowTable

SECONDS_PER_DAY = 86400.0


def check_timestamps(timestamps: np.ndarray, source: str | os.PathLike | None = None) -> np.ndarray:
    """Return the timestamps as float64 [N] or raise InputDataError naming the first bad step.

    A stacked series must be finite and strictly increasing: a repeated or backwards step means
    the file was stacked wrongly or two series were concatenated, and windows would silently
    hold the wrong observations.
    """
    stamps = np.asarray(timestamps, dtype=np.float64)
    if stamps.ndim != 1:
        raise InputDataError(f"timestamps must be one-dimensional, got shape {stamps.shape}", source)
    bad = np.flatnonzero(~np.isfinite(stamps))
    if bad.size:
        raise InputDataError(f"record {bad[0]}: timestamp is {stamps[bad[0]]}", source)
    back = np.flatnonzero(np.diff(stamps) <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise InputDataError(
            f"record {i}: timestamp {stamps[i]:.0f} is not after the previous one ({stamps[i - 1]:.0f}); "
            "a stacked series must be strictly increasing in time", source)
    return stamps


def compute_windows(timestamps: np.ndarray, window_days: float = WINDOW_DAYS,
                    min_obs: int = MIN_OBSERVATIONS, max_obs: int = MAX_OBSERVATIONS,
                    stride: int = 1, source: str | os.PathLike | None = None) -> WindowTable:
    """Windows of a stacked series by the rules in the module docstring.

    ``timestamps``: float64 UNIX seconds of the stacked steps, strictly increasing.
    ``source`` only names the file in error messages.
    """
    if stride < 1:
        raise ValueError(f"stride must be at least 1, not {stride}")
    if not 1 <= min_obs <= max_obs:
        raise ValueError(f"need 1 <= min_obs <= max_obs, got {min_obs}, {max_obs}")
    stamps = check_timestamps(timestamps, source)
    starts = np.arange(0, len(stamps), stride, dtype=np.int64)
    limits = stamps[starts] + window_days * SECONDS_PER_DAY
    stops = np.searchsorted(stamps, limits, side="right")  # inclusive end
    counts = np.minimum(stops - starts, max_obs)
    keep = counts >= min_obs
    starts, counts = starts[keep], counts[keep]
    return WindowTable.build(
        ids=np.arange(1, len(starts) + 1),
        n_obs=counts,
        start_time=stamps[starts] if len(starts) else np.zeros(0),
        end_time=stamps[starts + counts - 1] if len(starts) else np.zeros(0),
        start_index=starts,
    )


def window_step_indices(table: WindowTable, position: int) -> np.ndarray:
    """Positions on the stacked time axis of the observations of window row ``position``."""
    start = int(table.start_index[position])
    if start < 0:
        raise ValueError("this window table does not know where its windows start on the time axis")
    return np.arange(start, start + int(table.n_obs[position]))
