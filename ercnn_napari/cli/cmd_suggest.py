"""``ercnn-napari suggest``: which unlabelled tiles to label next (most uncertain, spread over the AoI).

Examples::

    ercnn-napari suggest liege/ --model runs/v1 --model runs/v2 --model runs/v3 --n 10
    ercnn-napari suggest liege/ --model runs/v1 --passes 8 --json

With several models the score is their disagreement on the max-over-windows map; with one model,
MC-dropout uncertainty. The ranking and the per-pixel uncertainty are saved in
``PROJECT/suggestions/`` for the Label dock (see ercnn_napari.core.suggestions).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

NAME = "suggest"
HELP = "rank unlabelled tiles by model disagreement or MC-dropout uncertainty (what to label next)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT", help="project folder")
    parser.add_argument("--model", action="append", required=True, metavar="MODEL_OR_RUN",
                        help="model file or run folder; two or more: disagreement, one: MC dropout")
    parser.add_argument("--n", type=int, default=10, help="how many tiles to suggest (default 10)")
    parser.add_argument("--tiles", help="comma-separated candidate tiles y:x (default: every unlabelled tile "
                        "with observations)")
    parser.add_argument("--passes", type=int, default=8, help="MC-dropout passes with one model (default 8)")
    parser.add_argument("--windows", type=int, default=6, help="evenly spaced windows per tile (default 6)")
    parser.add_argument("--min-distance", type=int, default=2,
                        help="keep suggestions this many tiles apart where possible (default 2)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout masks (default 0)")
    parser.add_argument("--gpus", default="all", help="'all' (default), 'none' or GPU numbers like 0,1")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--progress", choices=("text", "json", "none"), default="text")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    from ercnn_napari.cli.cancel import cancellable
    from ercnn_napari.core.errors import ErcnnError
    from ercnn_napari.core.messages import Finished, MessageWriter, Progress, Started
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.suggestions import spread_ranking, write_suggestions
    from ercnn_napari.core.tiles import format_tile_id, parse_tile_id

    if args.n < 1 or args.passes < 2 or args.windows < 0 or args.min_distance < 0:
        raise ErcnnError("--n must be >= 1, --passes >= 2, --windows and --min-distance >= 0")
    project = Project.open(args.project)
    labelled = set(project.tiles_with_labels())
    if args.tiles:
        candidates = [project.grid.check_tile(parse_tile_id(t.strip())) for t in args.tiles.split(",") if t.strip()]
    else:
        candidates = [t for t in project.tiles_with_observations() if t not in labelled]
    if not candidates:
        raise ErcnnError("no unlabelled tile with observations to rank", project.root)

    import keras
    import numpy as np

    from ercnn_napari.core.model_files import resolve_model_path
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.inference.suggest import tile_uncertainty
    from ercnn_napari.ml.model.weights import load_model
    from ercnn_napari.ml.training.distribute import select_devices

    select_devices(args.gpus)
    keras.utils.set_random_seed(args.seed)
    writer = MessageWriter(args.progress, job="suggest")
    paths = [resolve_model_path(m) for m in args.model]
    models = []
    for path in paths:
        model, config = load_model(path)
        models.append((model, config.time_steps))
    method = "disagreement" if len(models) >= 2 else "mc_dropout"
    source = open_observations(project)
    writer.emit(Started(total=len(candidates), config={"models": [str(p) for p in paths], "method": method}))

    def on_tile(done: int, total: int, tile: tuple[int, int]) -> None:
        writer.emit(Progress(done=done, total=total, desc=f"scored {format_tile_id(tile)}", unit="tiles"))

    with cancellable(writer, str(project.root / "suggestions")):  # the viewer's Cancel: nothing is saved
        result = tile_uncertainty(models, source, candidates, windows_per_tile=args.windows, passes=args.passes,
                                  batch_size=args.batch_size, on_tile=on_tile)
    scores = {tile: score for tile, (score, _pixels) in result.items()}
    ranked = spread_ranking(scores, args.n, args.min_distance)
    height, width = project.grid.shape_pixels
    size = project.grid.tile_size
    mosaic = np.full((height, width), np.nan, np.float32)
    for (y, x), (_score, pixels) in result.items():
        mosaic[y * size:(y + 1) * size, x * size:(x + 1) * size] = pixels
    document = write_suggestions(project.root, ranked, scores, mosaic,
                                 {"method": method, "models": [str(p) for p in paths], "passes": args.passes,
                                  "windows_per_tile": args.windows, "min_distance": args.min_distance})
    if args.json and args.progress != "json":
        sys.stdout.write(json.dumps(document, indent=1) + "\n")
    elif args.progress == "text":
        for rank, item in enumerate(document["suggested"], start=1):
            print(f"{rank:3d}. {item['tile']:>7}  {method} {item['score']:.4f}", file=sys.stderr)
    writer.emit(Finished(status="completed", out=str(project.root / "suggestions"),
                         summary={"suggested": [i["tile"] for i in document["suggested"]], "method": method}))
    return 0
