"""``ercnn-napari map``: seamless change maps of a whole AoI, predicted on Dask workers.

Examples::

    ercnn-napari map liege/ --model baseline.hdf5 --out liege_map/ --workers 2
    ercnn-napari map liege/ --model runs/v1 --model runs/v2 --model runs/v3 --combine max \\
        --tiles 3:5,3:6 --out liege_map/
    ercnn-napari map liege/ --model runs/v1 --scheduler tcp://10.0.0.5:8786 --out /shared/liege_map/
    ercnn-napari map liege/ --model runs/v1 --gpus all --out liege_map/    # one worker per GPU

Writes ``tiles/{y}_{x}.npy``, ``windows.csv``, ``change_max.tif`` (COG with overviews) and
``windows.zarr`` (per-window pyramid) into ``--out`` (see ercnn_napari.mapping.plan). A re-run
with the same settings resumes. TensorFlow is imported only inside the Dask worker processes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

NAME = "map"
HELP = "predict the change map of a whole AoI (seamless tiles, shared work, Dask workers)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT", help="project folder (with stacked observations)")
    parser.add_argument("--model", action="append", required=True, metavar="MODEL_OR_RUN",
                        help="model file (the authors' .hdf5 or our .ercnn.h5) or training run folder; "
                             "repeat for an ensemble")
    parser.add_argument("--combine", choices=("mean", "max"), default="mean",
                        help="how an ensemble's probabilities are combined (default: mean)")
    parser.add_argument("--stride", type=int, default=5, metavar="K",
                        help="predict every K-th window (default 5, as the authors' maps)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--tiles", metavar="y:x,...", help="only these tiles")
    which.add_argument("--all", action="store_true", help="every tile with observations (the default)")
    parser.add_argument("--halo", type=int, metavar="PX",
                        help="context halo in pixels read from neighbouring tiles (default: the context the "
                             "models were trained with (train --context), else 8; 0 = each tile alone, as "
                             "the authors' Liège maps)")
    parser.add_argument("--edge", choices=("reflect", "none"), default="reflect",
                        help="the halo at the AoI's outer edge: mirror the image (default) or none")
    parser.add_argument("--block", type=int, default=2, metavar="N",
                        help="tiles per task side: a task maps N x N neighbouring tiles (default 2)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="worker processes of a local Dask cluster "
                       "(default 1)")
    where.add_argument("--gpus", metavar="all|0,1,...",
                       help="one local worker process per listed GPU ('all' = every GPU 'nvidia-smi -L' lists), "
                            "worker i seeing only the i-th GPU (CUDA_VISIBLE_DEVICES); replaces --workers")
    where.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (e.g. tcp://host:8786); "
                       "its workers must see the project, the models and --out at the same paths")
    parser.add_argument("--batch-size", type=int, default=16, metavar="B", help="windows per model call")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (a re-run resumes)")
    parser.add_argument("--progress", choices=("text", "json", "none"), default="text",
                        help="progress on stderr (text), as JSON lines on stdout (json), or none")


def _check_args(args: argparse.Namespace) -> None:
    from ercnn_napari.core.errors import ErcnnError

    for name, low in (("stride", 1), ("halo", 0), ("block", 1), ("batch_size", 1)):
        if getattr(args, name) is not None and getattr(args, name) < low:
            raise ErcnnError(f"--{name.replace('_', '-')} must be at least {low}, not {getattr(args, name)}")
    if args.workers is not None and args.workers < 1:
        raise ErcnnError(f"--workers must be at least 1, not {args.workers}")


def _plan(args: argparse.Namespace) -> tuple[Any, Any, list[str]]:
    """(plan, grid, notices) from the project, without TensorFlow."""
    from pathlib import Path

    from ercnn_napari.core.errors import ProjectError
    from ercnn_napari.core.model_files import resolve_model_path, trained_context
    from ercnn_napari.core.project import Project
    from ercnn_napari.mapping.plan import MapPlan, parse_tiles

    project = Project.open(args.project)
    config = project.observations_config or {}
    files = project.observation_files()
    tiles = parse_tiles(args.tiles, files)
    if not tiles:
        raise ProjectError("project has no tiles with observations", project.root)
    notices = []
    halo = args.halo
    models = [resolve_model_path(m) for m in args.model]
    contexts = [trained_context(m) for m in models]
    if halo is None:
        halo = max(contexts) or 8  # a model trained with context is mapped with the halo it learned from
        if max(contexts):
            notices.append(f"halo {halo} pixels: the context the model(s) were trained with")
    elif halo < max(contexts):
        notices.append(f"--halo {halo} is smaller than the context the model(s) were trained with "
                       f"({max(contexts)} pixels): their tiles' borders see less than in training")
    if config.get("kind") != "stacked" and halo:
        notices.append("stage-3 observations have no neighbours: tiles are predicted alone (no halo), "
                       "each window through the whole network")
        halo = 0
    if halo > project.grid.tile_size:
        raise ProjectError(f"--halo {halo} is larger than a tile ({project.grid.tile_size} pixels)")
    models = [str(m.resolve()) for m in models]
    plan = MapPlan(str(Path(project.root).resolve()), Path(args.out), models, tiles, args.combine, args.stride,
                   halo, args.edge, args.block, args.batch_size, project.grid.tile_size,
                   extra={"site": project.site, "crs": project.grid.crs, "grid": project.grid.to_dict(),
                          "observations": config.get("kind")})
    return plan, project.grid, notices


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    from ercnn_napari.cli.cancel import cancellable
    from ercnn_napari.core.messages import MessageWriter
    from ercnn_napari.mapping.driver import run_map

    writer = MessageWriter(args.progress, job=NAME)
    gpus = None
    if args.gpus is not None:
        from ercnn_napari.mapping.gpus import resolve_gpus

        gpus = resolve_gpus(args.gpus) or None  # 'none' = CPU workers
    plan, grid, notices = _plan(args)
    for notice in notices:
        print(f"notice: {notice}", file=sys.stderr)
    with cancellable(writer, str(args.out)):  # the viewer's Cancel
        summary = run_map(plan, grid, writer, args.workers, args.scheduler, notices, gpus)
    rate = summary["windows_per_s"]
    line = (f"mapped {summary['tiles']} tiles ({summary['tiles_predicted']} predicted now, "
            f"{summary['windows_predicted']} windows, {rate or 0:.2f} windows/s) in {summary['seconds']:.1f} s "
            f"-> {args.out}")
    print(line, file=sys.stderr if args.progress == "json" else sys.stdout)
    return 0

