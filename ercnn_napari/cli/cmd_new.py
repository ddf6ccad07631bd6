"""``ercnn-napari new PROJECT --aoi AOI``: an empty project (grid, layout, label store) over an AoI.

The grid is laid from the top-left of the AoI's bounds in the chosen CRS (default: the AoI's UTM
zone, 10 m pixels, 32-pixel tiles; ``--authors-grid`` for the authors' EPSG:4326 ~10 m grid);
the remainder at the right and bottom is dropped as the authors dropped it. Observations are added
afterwards with ``ercnn-napari ingest``. ``info`` describes the new project at once.
"""

from __future__ import annotations

import argparse
import json
import sys

NAME = "new"
HELP = "Create a project over an AoI polygon (.shp, .geojson, .gpkg): tile grid, folders, empty labels."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ercnn_napari.core.constants import PERIOD_END, PERIOD_START, PIXEL_SIZE_M, TILE_SIZE

    parser.add_argument("project", help="project folder to create (must not hold a project yet)")
    parser.add_argument("--aoi", required=True, help="AoI polygon file: .shp (with .prj), .geojson or .gpkg")
    parser.add_argument("--site", default=None, help="site name, used in file names (default: the AoI file name)")
    parser.add_argument("--crs", default="auto", help="grid CRS: auto (the AoI's UTM zone) or EPSG:xxxx")
    parser.add_argument("--start", default=PERIOD_START, help=f"period start date (default {PERIOD_START})")
    parser.add_argument("--end", default=PERIOD_END, help=f"period end date, included (default {PERIOD_END})")
    parser.add_argument("--pixel-size", type=float, default=PIXEL_SIZE_M, help="pixel size in CRS units (default 10)")
    parser.add_argument("--tile-size", type=int, default=TILE_SIZE, help="tile side in pixels (default 32)")
    parser.add_argument("--authors-grid", action="store_true",
                        help="the authors' grid: the AoI's box in EPSG:4326 with ~10 m pixels (ignores --crs)")
    parser.add_argument("--json", action="store_true", help="print the new project's summary as JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ercnn_napari.cli.cmd_info import format_summary, summarize
    from ercnn_napari.core.aoi import aoi_grid, read_aoi, site_name
    from ercnn_napari.core.errors import ProjectError
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.project_file import PROJECT_FILE_NAME, TRAINING_DIR, check_period

    dest = Path(args.project)
    if (dest / PROJECT_FILE_NAME).exists():
        raise ProjectError("a project already exists here; choose another folder", dest / PROJECT_FILE_NAME)
    if dest.exists() and not dest.is_dir():
        raise ProjectError("is a file, not a folder", dest)
    period = check_period((args.start, args.end), "--start/--end")
    geometry, crs = read_aoi(args.aoi)
    try:
        grid = aoi_grid(geometry, crs, args.crs, args.pixel_size, args.tile_size, args.authors_grid)
    except ProjectError as exc:
        raise ProjectError(exc.message, exc.path or args.aoi) from None
    project = Project.create(dest, args.site or site_name(args.aoi), grid, period=period)
    (dest / TRAINING_DIR).mkdir(parents=True, exist_ok=True)
    summary = summarize(Project.open(project.root))
    sys.stdout.write(json.dumps(summary, indent=2) + "\n" if args.json else format_summary(summary))
    return 0
