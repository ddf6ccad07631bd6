"""``ercnn-napari baseline``: the index-difference baseline (NDVI, NDBI, SAR log-ratio), TF-free.

Scores every tile with observations (or ``--tiles``), fits each index's threshold on the split's
training labels, writes one GeoTIFF per index plus ``baseline.json`` (the Review dock shows them
as layers) and, when the project has an answer key, the held-out scores beside them. Nothing here
imports TensorFlow: an analyst can run it where no model is installed.
"""

from __future__ import annotations

import argparse
import json
import sys

NAME = "baseline"
HELP = "Index-difference change baseline (NDVI, NDBI, SAR log-ratio; thresholds fitted on training labels)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT", help="project folder (stacked observations)")
    parser.add_argument("--split", default="V1", help="split whose training tiles fit the thresholds (default V1)")
    parser.add_argument("--tiles", help="comma-separated tile ids y:x to score (default: every tile with observations)")
    parser.add_argument("--period-days", type=float, default=365.0,
                        help="length of the before and after periods in days (default 365)")
    parser.add_argument("--border", type=int, default=1, help="pixels ignored at each tile edge when fitting (1)")
    parser.add_argument("--out", help="output folder (default PROJECT/baselines/index_<split>)")
    parser.add_argument("--progress", choices=("text", "json", "none"), default="text")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ercnn_napari.baseline.run import fit_indices, score_tiles, write_layers
    from ercnn_napari.core.answer_key import has_answer_key, held_out_tiles, read_answer_key
    from ercnn_napari.core.errors import ErcnnError
    from ercnn_napari.core.heldout import map_report
    from ercnn_napari.core.messages import Finished, MessageWriter, Progress, Started
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.tiles import format_tile_id, parse_tile_id

    if args.period_days <= 0 or args.border < 0:
        raise ErcnnError("--period-days must be positive and --border >= 0")
    writer = MessageWriter(args.progress, job="baseline")
    project = Project.open(args.project)
    split = project.split(args.split)
    available = set(project.tiles_with_observations())
    wanted = ([parse_tile_id(t.strip()) for t in args.tiles.split(",") if t.strip()] if args.tiles
              else sorted(available))
    train = [t for t in split.train if t in available and project.labels.read(t) is not None]
    if not train:
        raise ErcnnError(f"split {args.split} has no labelled training tile with observations to fit thresholds on",
                         project.training_dir / args.split)
    tiles = sorted(set(wanted) | set(train))
    writer.emit(Started(run_dir="", total=len(tiles), config={"split": args.split, "tiles": len(tiles)}))

    def on_tile(done: int, total: int, tile: tuple[int, int]) -> None:
        writer.emit(Progress(done=done, total=total, desc=f"indices of {format_tile_id(tile)}", unit="tiles"))

    scores = score_tiles(project, tiles, args.period_days, on_tile)
    labels = {t: (project.labels.read(t) > 0).astype("float32") for t in train}
    fitted = fit_indices(scores, labels, args.border)
    extra = {"split": args.split, "period_days": args.period_days, "fitted_on": [format_tile_id(t) for t in train]}
    if has_answer_key(project.root):
        held = [t for t in held_out_tiles(project.root, [split]) if t in scores]
        truth = {t: read_answer_key(project.root, t) for t in held}
        extra["held_out"] = {name: map_report({t: scores[t][name] for t in held}, truth,
                                              fitted_threshold=fitted["indices"][name]["threshold"],
                                              border=args.border)
                             for name in fitted["indices"]}
    out = Path(args.out) if args.out else project.root / "baselines" / f"index_{args.split}"
    write_layers(out, project, scores, fitted, extra)
    summary = {"best": fitted["best"], "indices": fitted["indices"], "out": str(out)}
    if "held_out" in extra:
        summary["held_out_f1"] = {n: r["inner"].get("at_fitted", {}).get("f1") for n, r in extra["held_out"].items()}
        summary["held_out_auc"] = {n: r["inner"].get("auc") for n, r in extra["held_out"].items()}
    if args.progress == "text":
        sys.stdout.write(json.dumps(summary, indent=1, default=str) + "\n")
    writer.emit(Finished(status="completed", out=str(out), summary=_finite(summary)))
    return 0


def _finite(value):
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
