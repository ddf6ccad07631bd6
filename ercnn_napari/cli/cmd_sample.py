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
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    from ercnn_napari.cli import checks
    from ercnn_napari.cli.cancel import cancellable
    from ercnn_napari.core.errors import ProjectError
    from ercnn_napari.core.messages import Finished, MessageWriter, Started
    from ercnn_napari.sample.site import DEFAULT_SEED, SampleSpec

    seed = DEFAULT_SEED if args.seed is None else args.seed
    dest = Path(args.dest)
    if dest.exists() and not dest.is_dir():
        raise ProjectError("is a file, not a folder", dest)
    existing_sample = dest.is_dir() and any(dest.iterdir())
    spec = SampleSpec(seed=seed)
    if existing_sample:
        from ercnn_napari.sample.files import ANSWER_DIR, SAMPLE_FILE
        from ercnn_napari.sample.prepare import read_spec

        if not (dest / ANSWER_DIR / SAMPLE_FILE).is_file():
            raise ProjectError("folder is not empty and holds no generated sample; choose an empty folder", dest)
        spec = read_spec(dest)
        if spec.seed != seed:
            raise ProjectError(f"folder holds a sample of seed {spec.seed}, not {seed}; choose an empty folder", dest)
    # before anything is written: a tile off the grid used to fail only after a whole project was made
    tiles = checks.tiles(args.tiles, grid=spec) if args.tiles else None
    from ercnn_napari.sample.prepare import generate_sample, prepare_sample_project

    writer = MessageWriter(args.progress, job="sample")
    writer.emit(Started(run_dir=str(dest), config={"seed": seed, "tiles": args.tiles,
                                                   "observations": not args.no_observations}))
    start = time.monotonic()
    progress = ProgressReporter(writer)
    # SIGTERM (the viewer's Cancel, a job scheduler) must also end the generator's worker processes:
    # as an interrupt, the pool's context exit terminates them instead of leaving them running
    with cancellable(writer, str(dest)):
        if existing_sample:      # keep the project (an analyst may have labelled in it), add observations
            prepare_sample_project(dest, tiles=tiles, with_observations=not args.no_observations,
                                   workers=args.workers, progress=progress)
        else:
            generate_sample(dest, seed=seed, tiles=tiles, with_observations=not args.no_observations,
                            workers=args.workers, progress=progress)
    writer.emit(Finished(out=str(dest), summary={"seconds": round(time.monotonic() - start, 1), "seed": seed}))
    return 0


class ProgressReporter:
    """Turns the generator's ``(stage, done, total)`` calls into typed progress messages.

    JSON mode gets every call (the viewer draws its bar from them). Text mode gets a line per
    observation tile (seconds each) with the time left, and for the fast stages at most one
    line a second plus the last, so a person sees it move without a wall of lines.
    """

    def __init__(self, writer: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.writer = writer
        self.clock = clock
        self.stage_start: dict[str, tuple[float, int]] = {}
        self.last_text = -1e9

    def __call__(self, desc: str, done: int, total: int) -> None:
        from ercnn_napari.core.messages import Progress

        now = self.clock()
        # the rate counts from the first finished tile: before it, workers start and import
        started, first = self.stage_start.setdefault(desc, (now, done)) if done else (now, done)
        if self.writer.mode != "text":
            self.writer.emit(Progress(done=done, total=total, desc=desc, unit="tiles"))
            return
        if done < total and now - self.last_text < 1.0 and desc != "observations":
            return
        self.last_text = now
        unit = "tiles"        # text only: "observations 12/48 tiles (about 3 min left)"
        if first < done < total and now > started:
            left = (total - done) * (now - started) / (done - first)
            unit += f" (about {_duration(left)} left)"
        self.writer.emit(Progress(done=done, total=total, desc=desc, unit=unit))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
