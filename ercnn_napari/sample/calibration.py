"""Statistics that compare the synthetic series with a real Sentinel-2 series.

The same functions are applied to the real eopatch (NDVI + cloud mask, reference material outside
the project) and to the synthetic acquisitions, so "realistic" is a measured claim: similar
seasonal NDVI amplitude of vegetation, similar cloud cover, similar share of clear and overcast
scenes over a ~1 km patch, similar persistence of clouds between acquisitions ~10 days apart,
and Sentinel-2 revisit gaps of 10 days (one satellite) and 5 days (two).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

SUMMER_MONTHS = (6, 7, 8)
WINTER_MONTHS = (12, 1, 2)


def months_of(times: np.ndarray) -> np.ndarray:
    return np.array([dt.datetime.fromtimestamp(float(t), dt.timezone.utc).month for t in times])


def ndvi_amplitude(ndvi: np.ndarray, cloud: np.ndarray, times: np.ndarray, min_clear: float = 0.5) -> float:
    """Summer (JJA) median minus winter (DJF) median of per-acquisition NDVI medians.

    ``ndvi`` and ``cloud`` are [N, P] over the pixels of one land cover; only acquisitions where
    at least ``min_clear`` of those pixels are cloud-free count, and only their clear pixels.
    """
    months = months_of(times)
    per_acq, acq_months = [], []
    for k in range(ndvi.shape[0]):
        clear = ~cloud[k]
        if clear.mean() >= min_clear:
            per_acq.append(float(np.median(ndvi[k][clear])))
            acq_months.append(months[k])
    per_acq_arr, acq_months_arr = np.array(per_acq), np.array(acq_months)
    summer = per_acq_arr[np.isin(acq_months_arr, SUMMER_MONTHS)]
    winter = per_acq_arr[np.isin(acq_months_arr, WINTER_MONTHS)]
    if summer.size == 0 or winter.size == 0:
        raise ValueError("need clear acquisitions in both summer and winter")
    return float(np.median(summer) - np.median(winter))


def cloud_statistics(cloud: np.ndarray, times: np.ndarray, lag_days: float = 10.0) -> dict[str, float]:
    """Cover and persistence of a cloud-mask series ``cloud`` [N, H, W] (bool) at ``times``.

    ``persistence_lift`` = P(cloudy now | cloudy ``lag_days`` earlier) / P(cloudy): 1 means no
    memory, larger means cloudy spells span several acquisitions.
    """
    cloud = cloud.astype(bool)
    fraction = cloud.reshape(cloud.shape[0], -1).mean(axis=1)
    lag = lag_days * 86400.0
    pairs = [(i, j) for i in range(len(times)) for j in range(i + 1, min(i + 4, len(times)))
             if abs(times[j] - times[i] - lag) < 1.5 * 86400.0]
    if pairs:
        before = cloud[[i for i, _ in pairs]]
        after = cloud[[j for _, j in pairs]]
        lift = float((before & after).sum() / max(before.sum(), 1) / max(cloud.mean(), 1e-9))
    else:
        lift = float("nan")
    return {
        "mean_cloud_fraction": float(fraction.mean()),
        "clear_share": float((fraction < 0.05).mean()),
        "overcast_share": float((fraction > 0.95).mean()),
        "persistence_lift": lift,
        "pairs": float(len(pairs)),
    }


def revisit_gaps_days(times: np.ndarray) -> np.ndarray:
    """Days between consecutive acquisitions."""
    return np.diff(np.sort(np.asarray(times, np.float64))) / 86400.0


def modal_gap_days(times: np.ndarray) -> float:
    """The most common revisit gap (days, rounded), robust to a few missing acquisitions."""
    gaps = np.round(revisit_gaps_days(times)).astype(int)
    values, counts = np.unique(gaps[gaps > 0], return_counts=True)
    return float(values[np.argmax(counts)])
