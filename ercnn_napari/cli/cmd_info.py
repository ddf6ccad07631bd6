"""``ercnn-napari info PROJECT [--json]``: what a project folder holds and what it lacks.

Before labelling or training an analyst wants to know, without opening the viewer: which site
and CRS, how large the grid is, how many tiles have observations, labels and reference pairs
(and which pairs are incomplete), the splits and their sizes, and how many windows each tile's
time series gives. It must work on a folder with labels only (no observations yet), so it never
touches TensorFlow: window counts come from the window CSV or from ``observations/timestamps.json``
through the numpy windowing rules.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

NAME = "info"
HELP = "Summarise a project folder: site, CRS, grid, observations, labels, reference pairs, splits, windows."

#: A stacked folder may carry the time axis as JSON so windows can be counted without TensorFlow:
#: {"timestamps": [UNIX s or ISO strings]} shared by all tiles, or {"tiles": {"y_x": [...], ...}}.
TIMESTAMPS_FILE = "timestamps.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="project folder (authors' layout, with or without ercnn_project.json)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    from ercnn_napari.cli import checks

    project = checks.project(args.project)
    summary = summarize(project)
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        sys.stdout.write(format_summary(summary))
    return 0


def summarize(project: Any) -> dict[str, Any]:
    """Everything ``info`` reports, as plain JSON values (the viewer can show the same)."""
    from ercnn_napari.core.errors import ErcnnError
    from ercnn_napari.core.tiles import format_tile_id

    grid = project.grid
    problems: list[str] = []
    labelled, with_change, unsure_tiles, unsure_pixels = [], 0, 0, 0
    for tile in project.tiles_with_labels():
        try:
            label = project.labels.read_detailed(tile)
        except ErcnnError as exc:
            problems.append(str(exc))
            continue
        if label is None:
            continue
        labelled.append(tile)
        with_change += int(label.array.any())
        if label.unsure is not None:
            unsure_tiles += 1
            unsure_pixels += int(label.unsure.sum())
        if label.warning:
            problems.append(label.warning)
    splits: dict[str, Any] = {}
    for name in project.split_names():
        try:
            split = project.split(name)
        except ErcnnError as exc:
            splits[name] = {"error": str(exc)}
            problems.append(str(exc))
            continue
        splits[name] = {"train": len(split.train), "val": len(split.val), "test": len(split.test),
                        "not_used": len(split.not_used)}
    observation_tiles = project.tiles_with_observations()
    from ercnn_napari.core.fidelity import fidelity_warnings, read_fidelity

    fidelity = read_fidelity(project.observations_path())
    incomplete = project.tiles_with_incomplete_reference()
    reference_tiles = project.tiles_with_reference()
    return {
        "project": str(project.root),
        "project_file": "inferred" if project.inferred else str(project.file_path),
        "site": project.site,
        "crs": grid.crs,
        "grid": {**grid.to_dict(), "tiles": grid.rows * grid.cols,
                 "bounds": list(grid.bounds), "bounds_lonlat": [round(v, 6) for v in grid.bounds_4326()]},
        "period": {"start": project.period.start, "end": project.period.end},
        "observations": {"config": project.observations_config, "tiles": len(observation_tiles)},
        "windows": windows_per_tile(project, observation_tiles),
        "labels": {"tiles": len(labelled), "with_change": with_change,
                   "with_unsure": unsure_tiles, "unsure_pixels": unsure_pixels},
        "reference": {
            "tiles_with_images": len(reference_tiles),
            "complete_pairs": sum(1 for t in reference_tiles if t not in incomplete),
            "incomplete": {format_tile_id(t): why for t, why in incomplete.items()},
        },
        "splits": splits,
        "fidelity": fidelity,
        "warnings": list(project.warnings) + problems + fidelity_warnings(fidelity),
    }


def windows_per_tile(project: Any, observation_tiles: list[tuple[int, int]]) -> dict[str, Any]:
    """Window counts per tile from the window CSV, else from the stacked time axis (JSON).

    Returns ``{"count": n | None, "min"/"max" when tiles differ, "source": how it was found}``.
    """
    from ercnn_napari.core.window_table import read_window_csv
    from ercnn_napari.core.windowing import compute_windows

    csv = project.window_csv_path()
    if csv is not None:
        table = read_window_csv(csv)
        return {"count": len(table), "source": f"window CSV {csv}"}
    config = project.observations_config
    if config is None:
        return {"count": None, "source": "no observations configured"}
    folder = project.observations_path()
    timestamps_file = folder / TIMESTAMPS_FILE if folder is not None else None
    if config.get("kind") != "stacked" or timestamps_file is None or not timestamps_file.is_file():
        return {"count": None, "source": f"unknown: no window CSV in the project file and no {TIMESTAMPS_FILE}"}
    series = read_timestamps_json(timestamps_file)
    counts = {key: len(compute_windows(stamps, source=timestamps_file)) for key, stamps in series.items()}
    if None in counts:
        return {"count": counts[None], "source": f"{timestamps_file} (one time axis for all tiles)"}
    values = list(counts.values()) or [0]
    result: dict[str, Any] = {"count": values[0] if min(values) == max(values) else None,
                              "min": min(values), "max": max(values), "source": str(timestamps_file)}
    missing = [t for t in observation_tiles if f"{t[0]}_{t[1]}" not in counts]
    if missing:
        result["tiles_without_timestamps"] = len(missing)
    return result


def read_timestamps_json(path: Path) -> dict[str | None, Any]:
    """``{None: stamps}`` for one shared axis, else ``{"y_x": stamps}``; stamps as float64 UNIX seconds."""
    import numpy as np

    from ercnn_napari.core.errors import InputDataError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"timestamps file is not readable JSON: {exc}", path) from exc

    def convert(values: Any) -> Any:
        if not isinstance(values, list):
            raise InputDataError("timestamps must be a list of UNIX seconds or ISO-8601 strings", path)
        out = []
        for value in values:
            if isinstance(value, str):
                try:
                    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError as exc:
                    raise InputDataError(f"{value!r} is not an ISO-8601 time", path) from exc
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=dt.timezone.utc)
                out.append(moment.timestamp())
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append(float(value))
            else:
                raise InputDataError(f"{value!r} is not a timestamp", path)
        return np.asarray(out, dtype=np.float64)

    if isinstance(data, list):
        return {None: convert(data)}
    if isinstance(data, dict) and "timestamps" in data:
        return {None: convert(data["timestamps"])}
    if isinstance(data, dict) and isinstance(data.get("tiles"), dict):
        return {str(key).replace(":", "_"): convert(values) for key, values in data["tiles"].items()}
    raise InputDataError('expected {"timestamps": [...]} or {"tiles": {"y_x": [...]}}', path)


def format_summary(summary: dict[str, Any]) -> str:
    """The text form: one fact per line, problems last."""
    grid = summary["grid"]
    lon0, lat0, lon1, lat1 = grid["bounds_lonlat"]
    obs = summary["observations"]
    obs_text = (f"{obs['config']['kind']} in {obs['config']['path']}: {obs['tiles']} tile(s)"
                if obs["config"] else "none yet")
    windows = summary["windows"]
    if windows.get("count") is not None:
        win_text = f"{windows['count']} ({windows['source']})"
    elif "min" in windows:
        win_text = f"{windows['min']}-{windows['max']} ({windows['source']})"
    else:
        win_text = f"unknown ({windows['source']})"
    ref = summary["reference"]
    lines = [
        f"Project:      {summary['project']} (settings: {summary['project_file']})",
        f"Site:         {summary['site']}",
        f"CRS:          {summary['crs']}",
        f"Grid:         {grid['rows']} rows x {grid['cols']} columns = {grid['tiles']} tiles of "
        f"{grid['tile_size']} px, pixel {grid['pixel_width']:g} x {grid['pixel_height']:g}, "
        f"origin ({grid['origin_x']:.3f}, {grid['origin_y']:.3f})",
        f"Extent:       lon {lon0:.5f}..{lon1:.5f}, lat {lat0:.5f}..{lat1:.5f}",
        f"Period:       {summary['period']['start']} .. {summary['period']['end']}",
        f"Observations: {obs_text}",
        f"Windows/tile: {win_text}",
        f"Labels:       {summary['labels']['tiles']} tile(s), {summary['labels']['with_change']} with change"
        + (f", {summary['labels']['with_unsure']} with unsure pixels ({summary['labels']['unsure_pixels']})"
           if summary["labels"].get("with_unsure") else ""),
        f"Reference:    {ref['complete_pairs']} complete pair(s), {len(ref['incomplete'])} incomplete",
    ]
    for tile, why in ref["incomplete"].items():
        lines.append(f"              {tile}: {why}")
    if summary["splits"]:
        for name, sizes in summary["splits"].items():
            if "error" in sizes:
                lines.append(f"Split {name}:     unusable - {sizes['error']}")
            else:
                lines.append(f"Split {name}:     train {sizes['train']}, val {sizes['val']}, test {sizes['test']}"
                             + (f", not used {sizes['not_used']}" if sizes["not_used"] else ""))
    else:
        lines.append("Splits:       none (training/V<n>/ lists not found)")
    for stream, record in ((summary.get("fidelity") or {}).get("streams") or {}).items():
        products = ", ".join(f"{p} x{n}" for p, n in record["products"].items()) or "none"
        units = ", ".join(record["source_units"]) or "-"
        lines.append(f"Fidelity:     {stream}: {products} (from {units} -> {record['converted_to']})")
    for warning in summary["warnings"]:
        lines.append(f"Warning:      {warning}")
    return "\n".join(lines) + "\n"
