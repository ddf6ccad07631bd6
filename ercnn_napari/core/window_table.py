"""Window tables: which observations each 6-month window holds, and when it starts and ends.

The authors publish one CSV per dataset (``ID, Start Time, End Time, # Observations``) that gives
the time range of every window of a tile's series; the same table is what the viewer needs to
label its time slider, and what a prediction writes next to its ``.npy`` so that row ``i`` of the
prediction can be placed in time. This module is numpy-only because the viewer imports it.

Times are UNIX seconds (float64, UTC). A time that a table does not know (a stage-3 file read
without a window CSV) is NaN and is written as an empty CSV cell.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ercnn_napari.core.atomic import atomic_write_text
from ercnn_napari.core.constants import WINDOW_CSV_COLUMNS
from ercnn_napari.core.errors import InputDataError

#: How the authors wrote times in their window CSVs ("2017-01-01 05:50:05", UTC).
CSV_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class WindowTable:
    """One row per window; all arrays have the same length.

    ``ids`` are the window numbers as the authors count them (1-based, in file order).
    ``start_index`` is the position of the window's first observation on the stacked time axis
    (-1 when the table came from a CSV or a stage-3 file, which do not say).
    """

    ids: np.ndarray          # int64
    start_index: np.ndarray  # int64, -1 = unknown
    n_obs: np.ndarray        # int64
    start_time: np.ndarray   # float64 UNIX s, NaN = unknown
    end_time: np.ndarray     # float64 UNIX s (time of the last observation), NaN = unknown

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("start_index", "n_obs", "start_time", "end_time"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"WindowTable.{name} has {len(getattr(self, name))} rows, ids has {n}")

    @classmethod
    def build(cls, ids: Sequence[int] | np.ndarray, n_obs: Sequence[int] | np.ndarray,
              start_time: Sequence[float] | np.ndarray | None = None,
              end_time: Sequence[float] | np.ndarray | None = None,
              start_index: Sequence[int] | np.ndarray | None = None) -> WindowTable:
        """Make a table with the right dtypes; missing columns become unknown (-1 / NaN)."""
        n = len(ids)
        return cls(
            ids=np.asarray(ids, dtype=np.int64).reshape(n),
            start_index=(np.full(n, -1, np.int64) if start_index is None
                         else np.asarray(start_index, dtype=np.int64).reshape(n)),
            n_obs=np.asarray(n_obs, dtype=np.int64).reshape(n),
            start_time=(np.full(n, np.nan) if start_time is None
                        else np.asarray(start_time, dtype=np.float64).reshape(n)),
            end_time=(np.full(n, np.nan) if end_time is None
                      else np.asarray(end_time, dtype=np.float64).reshape(n)),
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def mid_time(self) -> np.ndarray:
        """Middle of each window (start + (end - start) / 2): what the viewer's slider shows."""
        return self.start_time + (self.end_time - self.start_time) / 2.0

    @property
    def has_times(self) -> bool:
        return bool(len(self)) and bool(np.all(np.isfinite(self.start_time)))

    def select(self, indices: Sequence[int] | np.ndarray) -> WindowTable:
        """The rows at ``indices`` (positions, not ids), keeping their ids."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"window positions {idx.min()}..{idx.max()} outside a table of {len(self)} windows")
        return WindowTable(self.ids[idx], self.start_index[idx], self.n_obs[idx],
                           self.start_time[idx], self.end_time[idx])

    def every(self, stride: int) -> np.ndarray:
        """Positions of every ``stride``-th window (0, K, 2K, ...), as ``predict --stride K`` uses."""
        if stride < 1:
            raise ValueError(f"stride must be at least 1, not {stride}")
        return np.arange(0, len(self), stride, dtype=np.int64)

    def equals(self, other: WindowTable) -> bool:
        """Same rows (NaN equals NaN, times compared to the second)."""
        return (len(self) == len(other) and np.array_equal(self.ids, other.ids)
                and np.array_equal(self.n_obs, other.n_obs)
                and np.allclose(self.start_time, other.start_time, rtol=0.0, atol=1.0, equal_nan=True)
                and np.allclose(self.end_time, other.end_time, rtol=0.0, atol=1.0, equal_nan=True))


def format_time(seconds: float) -> str:
    """UNIX seconds -> the authors' "YYYY-MM-DD HH:MM:SS" (UTC); NaN -> empty string."""
    if not math.isfinite(seconds):
        return ""
    return datetime.fromtimestamp(round(seconds), tz=timezone.utc).strftime(CSV_TIME_FORMAT)


def parse_time(text: str) -> float:
    """Read a time the way people and tools write it; returns UNIX seconds (UTC) or NaN if empty.

    Accepts the authors' "2017-01-01 05:50:05", ISO-8601 with "T", fractions, "Z" or an offset,
    a bare date, and plain UNIX seconds. Times without a zone are UTC (as the authors' are).
    Raises ValueError for anything else.
    """
    text = text.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        pass
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    stamp = datetime.fromisoformat(iso)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def _normalise_header(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_HEADER_ALIASES = {
    "id": "id", "windowid": "id", "window": "id",
    "starttime": "start", "start": "start",
    "endtime": "end", "end": "end",
    "observations": "n_obs", "nobservations": "n_obs", "numobservations": "n_obs",
    "numberofobservations": "n_obs", "nobs": "n_obs", "count": "n_obs",
}


def read_window_csv(path: str | os.PathLike) -> WindowTable:
    """Read a window table in the authors' CSV format (liberal: column case/spacing, time styles).

    Raises InputDataError naming the file and the line for a missing column, a bad number or
    time, or a window with fewer than one observation.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputDataError("window table not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(f"window table cannot be read ({exc})", path) from None
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InputDataError("window table is empty", path)
    columns = {_HEADER_ALIASES.get(_normalise_header(h)): i for i, h in enumerate(rows[0])}
    columns.pop(None, None)
    missing = [c for c, key in zip(WINDOW_CSV_COLUMNS, ("id", "start", "end", "n_obs"), strict=True) if key not in columns]
    if missing:
        raise InputDataError(f"window table lacks column(s) {', '.join(missing)} "
                             f"(expected {', '.join(WINDOW_CSV_COLUMNS)})", path)
    ids, n_obs, starts, ends = [], [], [], []
    for line_no, row in enumerate(rows[1:], start=2):
        try:
            cells = {key: row[i] if i < len(row) else "" for key, i in columns.items()}
            ids.append(int(float(cells["id"])))
            n_obs.append(int(float(cells["n_obs"])))
            starts.append(parse_time(cells["start"]))
            ends.append(parse_time(cells["end"]))
        except ValueError as exc:
            raise InputDataError(f"line {line_no}: cannot read {row!r} ({exc})", path) from None
        if n_obs[-1] < 1:
            raise InputDataError(f"line {line_no}: window {ids[-1]} has {n_obs[-1]} observations", path)
    return WindowTable.build(ids, n_obs, starts, ends)


def window_csv_text(table: WindowTable) -> str:
    """The table as CSV text in the authors' columns and time format."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(WINDOW_CSV_COLUMNS)
    for wid, start, end, n in zip(table.ids, table.start_time, table.end_time, table.n_obs, strict=True):
        writer.writerow([int(wid), format_time(float(start)), format_time(float(end)), int(n)])
    return out.getvalue()


def write_window_csv(table: WindowTable, path: str | os.PathLike) -> None:
    """Write the table atomically in the authors' CSV format."""
    atomic_write_text(path, window_csv_text(table))
