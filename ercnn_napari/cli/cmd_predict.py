"""``ercnn-napari predict``: per-window change probabilities for TFRecord files or project tiles.

Examples::

    ercnn-napari predict --model baseline.hdf5 --out preds/ --stride 5 Liege_3_5.tfrecords
    ercnn-napari predict --model runs/v1 --model runs/v2 --model runs/v3 --combine max \\
        --out preds/ --project liege/ --tiles 3:5,3:6

Writes ``<stem>.npy`` + ``<stem>_windows.csv`` per input and ``prediction.json`` into ``--out``
(see ercnn_napari.ml.inference.predict). TensorFlow is imported inside :func:`run` only, so that
``ercnn-napari --help`` stays instant and the viewer can import this module.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

NAME = "predict"
HELP = "predict per-window change probabilities for TFRecord files or project tiles"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT.tfrecords",
                        help="stage-2 (stacked) or stage-3 (windowed) GZIP TFRecord files")
    parser.add_argument("--model", action="append", required=True, metavar="MODEL_OR_RUN",
                        help="model file (the authors' .hdf5 or our .ercnn.h5) or training run folder; "
                             "repeat for an ensemble")
    parser.add_argument("--combine", choices=("mean", "max"), default="mean",
                        help="how an ensemble's probabilities are combined (default: mean)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--project", metavar="PROJECT", help="predict a project's tiles instead of files")
    parser.add_argument("--tiles", metavar="y:x,...", help="with --project: only these tiles (default: all "
                        "tiles with observations)")
    parser.add_argument("--windows", metavar="CSV", help="window table giving stage-3 input files' window "
                        "times (the authors' ID, Start Time, End Time, # Observations)")
    parser.add_argument("--stride", type=int, default=1, metavar="K",
                        help="predict every K-th window (default 1 = all; the authors' maps used 5)")
    parser.add_argument("--batch-size", type=int, default=16, metavar="B", help="windows per model call")
    parser.add_argument("--per-window", action="store_true",
                        help="run every window through the whole network, as the authors did (default for "
                             "stacked inputs: compute each observation's per-step work once for all its windows; "
                             "same results to float32 rounding, faster)")
    parser.add_argument("--progress", choices=("text", "json", "none"), default="text",
                        help="progress on stderr (text), as JSON lines on stdout (json), or none")


def _check_args(args: argparse.Namespace) -> None:
    from ercnn_napari.core.errors import ErcnnError

    if bool(args.inputs) == bool(args.project):
        raise ErcnnError("give either INPUT.tfrecords files or --project PROJECT (one of the two)")
    if args.tiles and not args.project:
        raise ErcnnError("--tiles needs --project")
    if args.stride < 1:
        raise ErcnnError(f"--stride must be at least 1, not {args.stride}")
    if args.batch_size < 1:
        raise ErcnnError(f"--batch-size must be at least 1, not {args.batch_size}")
    from ercnn_napari.cli import checks  # the common mistakes, before TensorFlow loads

    for model in args.model:
        checks.model(model)
    checks.input_files(args.inputs)
    if args.windows:
        checks.input_files([args.windows])
    if args.project:
        project = checks.project(args.project)
        if args.tiles:
            wanted = checks.tiles(args.tiles, grid=project.grid)
            have = project.observation_files()   # TFRecord kinds; other sources are checked later
            missing = [f"{y}:{x}" for y, x in wanted if have and (y, x) not in have]
            if missing:
                raise ErcnnError(f"no observations for tile(s) {', '.join(missing)}", project.observations_path())


def _halo_notice(args: argparse.Namespace, source: Any, context: int) -> tuple[int, str | None]:
    """(halo, notice): a model trained with ``train --context N`` is predicted with its N-pixel halo
    (its neighbours' observations) where a stacked project provides neighbours, else alone with a notice."""
    from ercnn_napari.ml.data.observations import StackedSource

    if not context:
        return 0, None
    if not isinstance(source, StackedSource):
        return 0, (f"the model was trained with a {context}-pixel context halo, but stage-3 observations have "
                   "no neighbours: tiles are predicted alone")
    if args.per_window:
        return 0, (f"the model was trained with a {context}-pixel context halo; --per-window predicts each "
                   "tile alone (leave it out, or use 'map', to predict with the halo)")
    return context, f"predicting with the model's {context}-pixel context halo (neighbours' observations)"


def _jobs(args: argparse.Namespace, context: int = 0) -> tuple[list[Any], dict[str, Any]]:
    from ercnn_napari.core.errors import ProjectError
    from ercnn_napari.core.tiles import format_tile_id, parse_tile_id
    from ercnn_napari.ml.inference import predict

    if not args.project:
        if context:
            print(f"notice: the model was trained with a {context}-pixel context halo; single files have "
                  "no neighbours and are predicted alone (predict --project ... uses the halo)", file=sys.stderr)
        jobs = [predict.file_job(path, args.stride, args.windows) for path in args.inputs]
        return jobs, {"mode": "files", "halo": 0}
    from ercnn_napari.core.project import Project
    from ercnn_napari.ml.data.observations import open_observations

    project = Project.open(args.project)
    source = open_observations(project)
    available = source.tiles()
    if args.tiles:
        tiles = [parse_tile_id(t) for t in args.tiles.split(",") if t.strip()]
        missing = [format_tile_id(t) for t in tiles if t not in available]
        if missing:
            raise ProjectError(f"no observations for tile(s) {', '.join(missing)}", source.folder)
    else:
        tiles = available
    if not tiles:
        raise ProjectError("project has no tiles with observations", project.root)
    halo, notice = _halo_notice(args, source, context)
    if notice:
        print(f"notice: {notice}", file=sys.stderr)
    reader = None
    if halo:
        from ercnn_napari.ml.data.halo import HaloReader

        reader = HaloReader(source, min(halo, project.grid.tile_size), "reflect")
    jobs = [predict.tile_job(source, tile, args.stride, reader) for tile in tiles]
    grid = project.grid
    return jobs, {"mode": "project", "halo": halo, "project": str(Path(project.root).resolve()), "site": project.site,
                  "crs": grid.crs, "grid": grid.to_dict(), "tiles": [format_tile_id(t) for t in tiles],
                  "observations": source.describe()}


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    from ercnn_napari.cli.cancel import cancellable
    from ercnn_napari.core.messages import MessageWriter
    from ercnn_napari.core.model_files import resolve_model_path
    from ercnn_napari.ml.inference import predict
    from ercnn_napari.ml.model.weights import load_model

    writer = MessageWriter(args.progress, job=NAME)
    with cancellable(writer, str(args.out)):  # the viewer's Cancel: clean up temp files
        model_paths = [resolve_model_path(m) for m in args.model]
        models = [load_model(path)[0] for path in model_paths]
        predictor = predict.Predictor(models, args.combine, args.batch_size, shared_steps=not args.per_window)
        from ercnn_napari.core.model_files import trained_context

        jobs, description = _jobs(args, max(trained_context(p) for p in model_paths))
        description.update(models=[str(p.resolve()) for p in model_paths], stride=args.stride)
        summary = predict.run_prediction(jobs, predictor, args.out, writer, description)
    rate = summary["windows_per_s"]
    line = (f"predicted {summary['windows']} windows of {summary['inputs']} input(s) in {summary['seconds']:.1f} s "
            f"({rate:.2f} windows/s) -> {args.out}")
    print(line, file=sys.stderr if args.progress == "json" else sys.stdout)
    return 0

