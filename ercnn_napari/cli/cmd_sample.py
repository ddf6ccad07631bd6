"""``ercnn-napari sample DIR``: generate the synthetic Liège sample project (and its observations).

The sample is deterministic for a seed: the same command always gives the same labels, reference
images, splits, answer key and observation values. Observations (the heavy part, ~25 MB per tile)
can be limited to a few tiles with ``--tiles`` or skipped with ``--no-observations``; running the
command again on the same folder keeps the project as it is (labels an analyst painted there stay)
and only adds missing observation files.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

NAME = "sample"
HELP = "Generate the synthetic Liège sample project (labels, reference pairs, splits, observations)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", metavar="DIR", help="folder to create (empty or an earlier sample of the same seed)")
    parser.add_argument("--tiles", default=None,
                        help="comma-separated tiles y:x to generate observations for (default: all)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the committed sample's)")
    parser.add_argument("--no-observations", action="store_true",
                        help="write the project only (labels, images, splits, answer key), no TFRecords")
    parser.add_argument("--workers", type=int, default=None, help="processes for the observations (default: CPUs)")
    parser.add_argument("--progress", choices=("text", "json", "none"), default="text")


def run(args: argparse.Namespace) -> int:
    from ercnn_napari.core.errors import ProjectError
    from ercnn_napari.core.messages import Finished, MessageWriter, Progress, Started
    from ercnn_napari.core.tiles import parse_tile_id
    from ercnn_napari.sample.prepare import generate_sample, prepare_sample_project, read_spec
    from ercnn_napari.sample.project_writer import ANSWER_DIR, SAMPLE_FILE
    from ercnn_napari.sample.site import DEFAULT_SEED

    seed = DEFAULT_SEED if args.seed is None else args.seed
    dest = Path(args.dest)
    tiles = None
    if args.tiles:
        tiles = [parse_tile_id(part, "--tiles") for part in args.tiles.split(",") if part.strip()]
    if dest.exists() and not dest.is_dir():
        raise ProjectError("is a file, not a folder", dest)
    existing_sample = dest.is_dir() and any(dest.iterdir())
    if existing_sample:
        if not (dest / ANSWER_DIR / SAMPLE_FILE).is_file():
            raise ProjectError("folder is not empty and holds no generated sample; choose an empty folder", dest)
        existing = read_spec(dest).seed
        if existing != seed:
            raise ProjectError(f"folder holds a sample of seed {existing}, not {seed}; choose an empty folder", dest)
    writer = MessageWriter(args.progress, job="sample")
    writer.emit(Started(run_dir=str(dest), config={"seed": seed, "tiles": args.tiles,
                                                   "observations": not args.no_observations}))
    start = time.monotonic()

    def progress(desc: str, done: int, total: int) -> None:
        if args.progress == "json" or done == total:
            writer.emit(Progress(done=done, total=total, desc=desc, unit="tiles"))

    if existing_sample:      # keep the project (an analyst may have labelled in it), add observations
        prepare_sample_project(dest, tiles=tiles, with_observations=not args.no_observations,
                               workers=args.workers, progress=progress)
    else:
        generate_sample(dest, seed=seed, tiles=tiles, with_observations=not args.no_observations,
                        workers=args.workers, progress=progress)
    writer.emit(Finished(out=str(dest), summary={"seconds": round(time.monotonic() - start, 1), "seed": seed}))
    return 0
