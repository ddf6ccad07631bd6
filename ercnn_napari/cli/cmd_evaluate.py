"""``ercnn-napari evaluate``: precision/recall/F1/IoU of a model on a project's labelled tiles.

Scores are computed on the per-pixel maximum over windows spread across the period (the map the
transfer labels describe), per tile and pooled over all tiles. Tiles come from ``--tiles`` or
from a split's validation/test list.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

NAME = "evaluate"
HELP = "Score a model (file or run folder) on labelled project tiles: precision, recall, F1, IoU."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model file (*.ercnn.h5, published .hdf5) or run folder")
    parser.add_argument("--project", required=True, help="project folder")
    parser.add_argument("--split", default="V1", help="split whose tiles to score (default V1)")
    parser.add_argument("--set", dest="tile_set", choices=("val", "test"), default="val",
                        help="which tiles of the split (default val)")
    parser.add_argument("--tiles", help="comma-separated tile ids y:x (overrides --split/--set)")
    parser.add_argument("--threshold", type=float, default=0.5, help="change if probability >= this (0.5)")
    parser.add_argument("--windows", type=int, default=20,
                        help="evenly spaced windows per tile for the maximum (0 = all windows; default 20)")
    parser.add_argument("--border", type=int, default=1,
                        help="pixels ignored at each tile edge (default 1: the inner 30x30 the loss trains)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per inference batch")
    parser.add_argument("--gpus", default="all", help="'all' (default), 'none' or GPU numbers like 0,1")
    parser.add_argument("--out", help="write the result as JSON here (default: print it)")
    parser.add_argument("--progress", choices=("text", "json", "none"), default="text")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    from ercnn_napari.cli import checks  # the common mistakes, before TensorFlow (and rasterio) load

    checks.model(args.model)
    if not Path(args.project).exists():
        checks.project(args.project)
    from ercnn_napari.core.errors import ErcnnError
    from ercnn_napari.core.messages import Finished, MessageWriter, Progress, Started
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.tiles import format_tile_id, parse_tile_id
    from ercnn_napari.ml.distribute import select_devices

    if not 0.0 < args.threshold < 1.0:
        raise ErcnnError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.windows < 0 or args.border < 0 or args.batch_size < 1:
        raise ErcnnError("--windows and --border must be >= 0 and --batch-size >= 1")
    opened = checks.project(args.project)
    checks.tiles(args.tiles, grid=opened.grid) if args.tiles else checks.split(opened, args.split)
    select_devices(args.gpus)
    writer = MessageWriter(args.progress, job="evaluate")
    project = Project.open(args.project)
    if args.tiles:
        tiles = [parse_tile_id(t.strip()) for t in args.tiles.split(",") if t.strip()]
        what = "tiles " + args.tiles
    else:
        tiles = project.split(args.split).tiles(args.tile_set)
        what = f"{args.split} {args.tile_set}"
    if not tiles:
        raise ErcnnError(f"no tiles to evaluate in {what}", project.training_dir / args.split)

    from ercnn_napari.core.model_files import resolve_model_path
    from ercnn_napari.ml.evaluate import evaluate_tiles, load_labels
    from ercnn_napari.ml.observations import open_observations
    from ercnn_napari.ml.weights import load_model

    model_path = resolve_model_path(args.model)
    labels = load_labels(project.labels, tiles)
    source = open_observations(project)
    model, config = load_model(model_path)
    writer.emit(Started(run_dir="", total=len(tiles), config={"model": str(model_path), "tiles": what}))

    def on_tile(done: int, total: int, tile: tuple[int, int]) -> None:
        writer.emit(Progress(done=done, total=total, desc=f"evaluated {format_tile_id(tile)}", unit="tiles"))

    result = evaluate_tiles(model, config.time_steps, source, labels, windows_per_tile=args.windows,
                            threshold=args.threshold, border=args.border, batch_size=args.batch_size,
                            on_tile=on_tile)
    from ercnn_napari.ml.run_folder import strict_json

    result = strict_json({**result, "model": str(model_path), "project": str(project.root), "tiles": what})
    text = json.dumps(result, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"
    if args.out:
        from ercnn_napari.core.atomic import atomic_write_text

        atomic_write_text(args.out, text)
    elif args.progress != "json":
        sys.stdout.write(text)
    writer.emit(Finished(status="completed", out=args.out or "", summary={"overall": result["overall"]}))
    return 0
