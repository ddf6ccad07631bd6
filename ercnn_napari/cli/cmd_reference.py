"""``ercnn-napari reference``: cache before/after reference imagery (orthophotos, map services) in a project.

Examples::

    ercnn-napari reference liege/ --before ortho_2016.tif --after ortho_2021.vrt
    ercnn-napari reference liege/ --before wallonie_2016.xml --after wallonie_2021.xml

A SRC is anything GDAL opens: a GeoTIFF/COG/VRT in any CRS, or a GDAL WMS/WMTS/TMS XML
description (see docs/reference_imagery.md for a public example). The images are reprojected onto
the project grid, cached as COGs with overviews under ``reference/`` (rerun to resume an
interrupted download) and cut into the authors' per-tile ``<year>.png``.
"""

from __future__ import annotations

import argparse

NAME = "reference"
HELP = "cache before/after reference imagery (local rasters or GDAL WMS/WMTS/TMS) into a project"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT", help="project folder")
    parser.add_argument("--before", metavar="SRC", help="imagery before the change (raster or GDAL service XML)")
    parser.add_argument("--after", metavar="SRC", help="imagery after the change")
    parser.add_argument("--before-year", type=int, help="year of the before imagery (default: from its name)")
    parser.add_argument("--after-year", type=int, help="year of the after imagery (default: from its name)")
    parser.add_argument("--factor", type=int, help="cache pixels per 10 m grid pixel, 1-10 (default: the "
                        "imagery's own resolution, at most 10 = 1 m)")
    parser.add_argument("--no-png", action="store_true", help="do not write the per-tile <year>.png files")
    parser.add_argument("--progress", choices=("text", "json", "none"), default="text")


def run(args: argparse.Namespace) -> int:
    from ercnn_napari.cli.cancel import cancellable
    from ercnn_napari.core.errors import ErcnnError
    from ercnn_napari.core.messages import Finished, MessageWriter, Progress, Started
    from ercnn_napari.core.project import Project
    from ercnn_napari.reference.cache import cache_reference
    from ercnn_napari.reference.source import MAX_FACTOR, year_from_source

    jobs = [(role, src, year) for role, src, year in (("before", args.before, args.before_year),
                                                      ("after", args.after, args.after_year)) if src]
    if not jobs:
        raise ErcnnError("give --before SRC and/or --after SRC")
    if args.factor is not None and not 1 <= args.factor <= MAX_FACTOR:
        raise ErcnnError(f"--factor must be between 1 and {MAX_FACTOR}, got {args.factor}")
    resolved = []
    for role, src, year in jobs:
        year = year if year is not None else year_from_source(src)
        if year is None:
            raise ErcnnError(f"cannot tell the year of the {role} imagery from its name; give --{role}-year", src)
        resolved.append((role, src, year))
    if len(resolved) == 2 and resolved[0][2] >= resolved[1][2]:
        raise ErcnnError(f"the before year ({resolved[0][2]}) must be earlier than the after year "
                         f"({resolved[1][2]})")
    project = Project.open(args.project)
    writer = MessageWriter(args.progress, job="reference")
    writer.emit(Started(run_dir=str(project.root), total=len(resolved),
                        config={"sources": {r: s for r, s, _ in resolved}}))

    def progress(done: int, total: int, desc: str) -> None:
        writer.emit(Progress(done=done, total=total, desc=desc, unit=""))

    summary = {}
    with cancellable(writer, str(project.root / "reference")):  # the viewer's Cancel; a rerun resumes
        for role, src, year in resolved:
            image = cache_reference(project, src, role, year, factor=args.factor, progress=progress,
                                    write_pngs=not args.no_png)
            summary[role] = {"year": image.year, "file": str(image.path), "factor": image.factor}
    writer.emit(Finished(status="completed", out=str(project.root / "reference"), summary=summary))
    return 0
