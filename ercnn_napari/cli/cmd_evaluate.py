"""``ercnn-napari evaluate``: precision/recall/F1/IoU of a model on a project's labelled tiles.

Scores are computed on the per-pixel maximum over windows spread across the period (the map the
transfer labels describe), per tile and pooled over all tiles. Tiles come from ``--tiles`` or
from a split's validation/test list. ``--set heldout`` scores against the project's answer key
(a generated sample has one) on every tile in no training or validation list, with AUC/AP, a
threshold fitted on the training tiles, ring and inner scores, dated events and the index
baseline beside the network (``ml.heldout_eval``); several ``--model`` (one per ``--split``)
add pooled cross-validation and the ensemble.
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
    parser.add_argument("--model", required=True, action="append",
                        help="model file (*.ercnn.h5, published .hdf5) or run folder; repeat it with "
                             "--set heldout and --split V1,V2,V3 for cross-validation and the ensemble")
    parser.add_argument("--project", required=True, help="project folder")
    parser.add_argument("--split", default="V1",
                        help="split whose tiles to score (default V1); with --set heldout a comma list, one per --model")
    parser.add_argument("--set", dest="tile_set", choices=("val", "test", "heldout"), default="val",
                        help="which tiles of the split (default val); heldout = the answer key on every tile in "
                             "no training or validation list")
    parser.add_argument("--no-index-baseline", action="store_true",
                        help="with --set heldout: skip the index-difference baseline rows")
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

    for model in args.model:
        checks.model(model)
    if not Path(args.project).exists():
        checks.project(args.project)
    from ercnn_napari.core.errors import ErcnnError
    from ercnn_napari.core.messages import Finished, MessageWriter, Progress, Started
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.tiles import format_tile_id, parse_tile_id
    from ercnn_napari.ml.training.distribute import select_devices

    if not 0.0 < args.threshold < 1.0:
        raise ErcnnError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.windows < 0 or args.border < 0 or args.batch_size < 1:
        raise ErcnnError("--windows and --border must be >= 0 and --batch-size >= 1")
    opened = checks.project(args.project)
    if args.tiles:
        checks.tiles(args.tiles, grid=opened.grid)
    elif args.tile_set != "heldout":  # held out: the answer key comes first, its report checks the splits
        for split in args.split.split(","):
            checks.split(opened, split.strip())
    select_devices(args.gpus)
    writer = MessageWriter(args.progress, job="evaluate")
    project = Project.open(args.project)
    if args.tile_set == "heldout":
        return _run_heldout(args, project, writer)
    if len(args.model) > 1:
        raise ErcnnError("several --model need --set heldout (cross-validation against the answer key)")
    args.model = args.model[0]
    if args.tiles:
        tiles = [parse_tile_id(t.strip()) for t in args.tiles.split(",") if t.strip()]
        what = "tiles " + args.tiles
    else:
        tiles = project.split(args.split).tiles(args.tile_set)
        what = f"{args.split} {args.tile_set}"
    if not tiles:
        raise ErcnnError(f"no tiles to evaluate in {what}", project.training_dir / args.split)

    from ercnn_napari.core.model_files import resolve_model_path, trained_context
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.inference.evaluate import evaluate_tiles, load_labels
    from ercnn_napari.ml.model.weights import load_model

    model_path = resolve_model_path(args.model)
    labels = load_labels(project.labels, tiles)
    source = open_observations(project)
    model, config = load_model(model_path)
    writer.emit(Started(run_dir="", total=len(tiles), config={"model": str(model_path), "tiles": what}))

    def on_tile(done: int, total: int, tile: tuple[int, int]) -> None:
        writer.emit(Progress(done=done, total=total, desc=f"evaluated {format_tile_id(tile)}", unit="tiles"))

    result = evaluate_tiles(model, config.time_steps, source, labels, windows_per_tile=args.windows,
                            threshold=args.threshold, border=args.border, batch_size=args.batch_size,
                            on_tile=on_tile, halo=trained_context(model_path))
    from ercnn_napari.ml.training.run_folder import strict_json

    result = strict_json({**result, "model": str(model_path), "project": str(project.root), "tiles": what})
    text = json.dumps(result, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"
    if args.out:
        from ercnn_napari.core.atomic import atomic_write_text

        atomic_write_text(args.out, text)
    elif args.progress != "json":
        sys.stdout.write(text)
    writer.emit(Finished(status="completed", out=args.out or "", summary={"overall": result["overall"]}))
    return 0


def _run_heldout(args: argparse.Namespace, project, writer) -> int:
    """``--set heldout``: every model against the answer key, beside the index baseline."""
    from ercnn_napari.core.answer_key import has_answer_key
    from ercnn_napari.core.atomic import atomic_write_text
    from ercnn_napari.core.errors import ErcnnError
    from ercnn_napari.core.messages import Finished, Progress, Started
    from ercnn_napari.core.model_files import resolve_model_path, trained_context
    from ercnn_napari.core.tiles import format_tile_id
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.inference.heldout_eval import evaluate_heldout
    from ercnn_napari.ml.model.weights import load_model
    from ercnn_napari.ml.training.run_folder import strict_json

    if not has_answer_key(project.root):
        raise ErcnnError("--set heldout needs an answer key (answer_key/{y}_{x}.npy, as the sample has)",
                         project.root)
    names = [s.strip() for s in args.split.split(",") if s.strip()]
    if len(set(names)) != len(names):
        raise ErcnnError(f"--split {args.split} names a split twice; cross-validation needs one model per split")
    if len(names) != len(args.model):
        raise ErcnnError(f"{len(args.model)} --model for {len(names)} splits ({args.split}); give one split per model")
    paths = [resolve_model_path(m) for m in args.model]
    models = []
    for path in paths:
        model, config = load_model(path)
        models.append((str(path), model, config.time_steps))
    source = open_observations(project)
    writer.emit(Started(run_dir="", total=0, config={"models": [str(p) for p in paths], "splits": names}))
    count = [0]

    def on_tile(what: str, tile: tuple[int, int]) -> None:
        count[0] += 1
        writer.emit(Progress(done=count[0], total=0, desc=f"{what} {format_tile_id(tile)}", unit="tiles"))

    result = evaluate_heldout(project, source, models, names, windows=args.windows or 0, border=args.border,
                              batch_size=args.batch_size, index_baseline=not args.no_index_baseline,
                              on_tile=on_tile, contexts=[trained_context(p) for p in paths])
    result = strict_json({**result, "project": str(project.root)})
    text = json.dumps(result, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
    elif args.progress != "json":
        sys.stdout.write(text)
    if args.progress == "text":
        sys.stderr.write(format_table(result["table"]))
    writer.emit(Finished(status="completed", out=args.out or "", summary={"table": result["table"]}))
    return 0


def format_table(rows: list) -> str:
    """The before/after table as text: one line per (split, scorer)."""
    def cell(value) -> str:
        return "   -  " if value is None else f"{value:6.3f}"

    lines = ["split  scorer                               tiles    AUC     AP  F1@0.5  F1@fit  cut"]
    for r in rows:
        lines.append(f"{r['split']:6s} {r['scorer'][:36]:36s} {r['tiles']:5d} {cell(r['auc'])} {cell(r['ap'])} "
                     f"{cell(r['f1_at_0_5'])}  {cell(r['f1_at_fitted'])} {cell(r['fitted_threshold'])}")
    return "\n".join(lines) + "\n"
