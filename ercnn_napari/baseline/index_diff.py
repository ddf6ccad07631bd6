"""Per-pixel change scores from two periods of a tile's stacked series: NDVI, NDBI, SAR log-ratio.

The plainest change detector a remote-sensing reviewer would try first: take a robust summary of
each pixel in a "before" period and an "after" period and score the difference of a spectral
index. Here:

- periods: the first ``period_days`` (365) of the project period and the last ``period_days``
  before its end. A change that happened inside the period is a difference between them;
- summary: the per-pixel **median** over the period's time steps (robust to the clouds and
  shadows that the stacking's carry-forward still lets through, and to speckle);
- ``ndvi``: |NDVI_after - NDVI_before|, NDVI = (B08 - B04) / (B08 + B04): vegetation cleared or
  grown;
- ``ndbi``: |NDBI_after - NDBI_before|, NDBI = (B11 - B08) / (B11 + B08): built-up / bare surfaces;
- ``sar``: mean over the four S1 channels (asc/desc VV/VH) of |ln(median_after / median_before)|,
  the classic log-ratio: new walls give double-bounce, cleared sites lose volume scattering.

Scores are >= 0 with no natural cut; ``fit`` chooses one on training labels. Stacked steps hold
the last valid value of each stream (stage 2); zeros (a stream never observed yet) are ignored.
"""

from __future__ import annotations

import math

import numpy as np

from ercnn_napari.core.constants import CHANNEL_NAMES

INDICES = ("ndvi", "ndbi", "sar")
PERIOD_DAYS = 365.0
_CH = {name: i for i, name in enumerate(CHANNEL_NAMES)}
_SAR = [_CH["S1_asc_VV"], _CH["S1_asc_VH"], _CH["S1_desc_VV"], _CH["S1_desc_VH"]]
_EPS = 1e-6


def period_masks(timestamps: np.ndarray, start: float, end: float,
                 period_days: float = PERIOD_DAYS) -> tuple[np.ndarray, np.ndarray]:
    """bool [N] masks of the "before" (first ``period_days`` from ``start``) and "after" steps."""
    stamps = np.asarray(timestamps, np.float64)
    span = period_days * 86400.0
    before = (stamps >= start) & (stamps < start + span)
    after = (stamps > end - span) & (stamps <= end)
    return before, after


def _median(steps: np.ndarray) -> np.ndarray:
    """Per-pixel median over time [n, H, W, C] -> [H, W, C], ignoring zeros (never observed)."""
    data = np.where(steps == 0, np.nan, steps.astype(np.float64))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(data, axis=0)


def _ratio_index(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b) / np.maximum(a + b, _EPS)


def index_scores(timestamps: np.ndarray, observations: np.ndarray, start: float, end: float,
                 period_days: float = PERIOD_DAYS) -> dict[str, np.ndarray]:
    """``{"ndvi", "ndbi", "sar"}`` -> float32 [H, W] change scores of one tile (NaN-free, >= 0).

    ``observations`` is the stacked series [N, H, W, 17]. A period without any step (a series that
    does not reach that far) is refused: the score would be meaningless.
    """
    before, after = period_masks(timestamps, start, end, period_days)
    if not before.any() or not after.any():
        raise ValueError(f"the series has {int(before.sum())} steps in the first and {int(after.sum())} in the "
                         f"last {period_days:g} days of the period; both periods need observations")
    early = _median(observations[before])
    late = _median(observations[after])
    out = {}
    for name, (hi, lo) in (("ndvi", ("B08", "B04")), ("ndbi", ("B11", "B08"))):
        a = _ratio_index(early[..., _CH[hi]], early[..., _CH[lo]])
        b = _ratio_index(late[..., _CH[hi]], late[..., _CH[lo]])
        out[name] = np.abs(b - a)
    sar_early = np.maximum(early[..., _SAR], _EPS)
    sar_late = np.maximum(late[..., _SAR], _EPS)
    out["sar"] = np.abs(np.log(sar_late / sar_early)).mean(axis=-1)
    return {k: np.nan_to_num(v, nan=0.0).astype(np.float32) for k, v in out.items()}


def seconds_of(date: str) -> float:
    """UNIX seconds of an ISO date or date-time (UTC)."""
    from datetime import datetime, timezone

    text = date if "T" in date else f"{date}T00:00:00"
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    value = when.timestamp()
    if not math.isfinite(value):
        raise ValueError(f"not a date: {date!r}")
    return value
