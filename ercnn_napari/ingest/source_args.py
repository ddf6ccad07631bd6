"""What a source factory is handed, in the form a remote source needs: a target grid and a UTC range.

``ingest`` calls every source factory as ``factory(SOURCE, grid=<project TileGrid>, period=<Period>)``;
a catalogue or a service needs the grid's extent as a :class:`TargetGrid` and the period as two
timezone-aware instants (the end day included). Tests and library users may pass a
:class:`TargetGrid` and explicit datetimes instead; both forms end up here so every source reads
them the same way.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ingest.scene import TargetGrid


def as_target_grid(grid: Any) -> TargetGrid:
    """A :class:`TargetGrid` from itself or from a project ``TileGrid`` (the whole grid)."""
    if isinstance(grid, TargetGrid):
        return grid
    try:
        height, width = grid.shape_pixels
        return TargetGrid(grid.crs, grid.transform, int(height), int(width))
    except AttributeError as exc:
        raise InputDataError(f"a source needs the project grid, got {grid!r}") from exc


def utc_range(period: Any = None, start: datetime | None = None,
              end: datetime | None = None) -> tuple[datetime, datetime]:
    """(start, end) in UTC: explicit datetimes win; else the period's first day 00:00 to its last
    day's end (a ``Period`` of ISO dates, or any pair)."""
    if start is None or end is None:
        if period is None:
            raise InputDataError("a source needs the project period (start and end dates)")
        first, last = period[0], period[1]
        start = start if start is not None else datetime.combine(_day(first), time(0), timezone.utc)
        end = end if end is not None else datetime.combine(_day(last) + timedelta(days=1), time(0), timezone.utc) \
            - timedelta(microseconds=1)
    return to_utc(start), to_utc(end)


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise InputDataError(f"not an ISO date: {value!r}") from exc


def to_utc(when: datetime) -> datetime:
    """A timezone-aware UTC instant (naive datetimes are taken as UTC, as STAC and Sentinel Hub mean them)."""
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
