"""``ercnn-napari ingest PROJECT SOURCE...``: add Sentinel-1/2 acquisitions to a project's stacked series.

Each SOURCE is a folder with ``manifest.csv`` (local GeoTIFF/COG files) or a STAC catalogue
(``catalog.json`` or an API URL). Acquisitions are warped onto the project grid, converted to the
units the network saw, and stacked with the authors' rule into one GZIP stage-2 TFRecord per
tile (``ingest.pipeline``). Work is spread over a Dask ``LocalCluster`` (``--workers``) or an
existing cluster (``--scheduler``). A re-run resumes: finished acquisitions and tiles are kept.
Unusable inputs are reported one line each and skipped; the exit code is 0 when something was
stacked. No TensorFlow is imported: the files are written by a TF-free writer. SIGTERM (the
viewer's Cancel) stops the run cleanly; finished acquisitions and tiles are kept for the next run.
"""

from __future__ import annotations

import argparse
import os

NAME = "ingest"
HELP = "Add observations (local folder with manifest.csv, or STAC) to a project's stacked series."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="project folder (made with 'ercnn-napari new')")
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="folder with manifest.csv, STAC catalog.json or STAC API URL")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, default=None,
                       help="worker processes of a local Dask cluster (1 = in this process; default: CPUs, at most 4)")
    group.add_argument("--scheduler", default=None,
                       help="address of a running Dask scheduler (e.g. tcp://host:8786 from dask-jobqueue)")
    parser.add_argument("--progress", choices=("text", "json", "none"), default="text")


def run(args: argparse.Namespace) -> int:
    import sys

    from ercnn_napari.cli.cancel import cancellable
    from ercnn_napari.core.fidelity import project_fidelity_warnings
    from ercnn_napari.core.messages import Finished, MessageWriter, Problem, Progress, Started
    from ercnn_napari.core.project import Project
    from ercnn_napari.ingest.pipeline import ingest

    project = Project.open(args.project)
    workers = args.workers if args.workers is not None else max(1, min(4, os.cpu_count() or 1))
    if workers < 1:
        raise SystemExit("ercnn-napari ingest: --workers must be at least 1")
    writer = MessageWriter(args.progress, job="ingest")
    writer.emit(Started(run_dir=str(project.root), config={"sources": args.sources, "workers": workers,
                                                           "scheduler": args.scheduler}))

    def progress(desc: str, done: int, total: int) -> None:
        if args.progress == "json" or done == total:
            writer.emit(Progress(done=done, total=total, desc=desc,
                                 unit="tiles" if desc.startswith("stack") else "acquisitions"))

    def problem(text: str) -> None:
        if args.progress == "json":
            writer.emit(Problem(message=text))
        print(f"ercnn-napari: skipped: {text}", file=sys.stderr)

    with cancellable(writer, str(project.root)):   # the viewer's Cancel: close the cluster cleanly
        report = ingest(project, args.sources, workers=workers, scheduler=args.scheduler, progress=progress,
                        on_problem=problem)
    for warning in project_fidelity_warnings(Project.open(project.root)):
        print(f"ercnn-napari: warning: {warning}", file=sys.stderr)
    writer.emit(Finished(out=str(project.root), summary=report.to_dict()))
    if args.progress != "json":
        print(f"ingest: {report.warped} acquisition(s) warped, {report.reused} reused, {len(report.problems)} skipped; "
              f"{report.tiles_stacked} tile(s) stacked ({report.records} records from {report.acquisitions_stacked} "
              f"acquisitions), {report.tiles_reused} unchanged; {report.seconds:.1f} s on {report.runner}")
    return 0

