"""``ingest``: sources -> warped acquisitions -> the stacked series of every tile, resumably.

Pass 1 warps each acquisition onto the project grid into the intermediate store (``store``), in
parallel over acquisitions; pass 2 stacks each tile from the store with the authors' rule
(``stacking``) and writes its stage-2 GZIP TFRecord (``tfrecord_writer``), in parallel over tiles.
Both passes stream (one acquisition block or one tile at a time), so memory does not grow with
the AoI or the number of acquisitions.

Resuming: acquisitions already in the store (same stream, second and source) are not warped again;
tiles already stacked from the same set of acquisitions (``.ingest/stacked.json``) are not stacked
again. Adding acquisitions later re-stacks every tile from the store (the carry-forward state makes
later records depend on earlier acquisitions), which is cheap next to warping.

Bad input never stops the others: each unusable row/acquisition becomes one sentence in
``IngestReport.problems`` (file and row), and nothing of it is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ercnn_napari.core.atomic import atomic_write_text
from ercnn_napari.core.errors import InputDataError, ProjectError
from ercnn_napari.core.fidelity import FIDELITY_FILE, build_record
from ercnn_napari.core.project import Project
from ercnn_napari.core.project_file import STACKED_OBSERVATIONS_DIR
from ercnn_napari.core.tiles import TileId, tile_stem
from ercnn_napari.ingest.manifest import row_error
from ercnn_napari.ingest.parallel import TaskRunner
from ercnn_napari.ingest.sources import open_source
from ercnn_napari.ingest.stacking import StackPlan, plan_steps, stack_tile
from ercnn_napari.ingest.store import BLOCK_TILES, SceneStore, scene_id
from ercnn_napari.ingest.tfrecord_writer import write_stacked_records

LEDGER_FILE = "stacked.json"
TIMESTAMPS_FILE = "timestamps.json"
LEDGER_FLUSH_SECONDS = 10.0

Progress = Callable[[str, int, int], None]


@dataclass
class IngestReport:
    """What a run did, for the command's summary and the viewer."""

    acquisitions_listed: int = 0
    warped: int = 0
    reused: int = 0
    dropped_empty: int = 0
    acquisitions_stacked: int = 0
    records: int = 0
    tiles_stacked: int = 0
    tiles_reused: int = 0
    runner: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StackJob:
    """Everything a worker needs to stack one tile (small and picklable)."""

    store: SceneStore
    ids: tuple[str, ...]
    streams: tuple[str, ...]
    plan: StackPlan
    folder: Path


def observations_folder(project: Project) -> Path:
    """Where the stacked files go: the project's stacked folder, or ``observations/`` for a new one."""
    config = project.observations_config
    if config is None:
        return project.root / STACKED_OBSERVATIONS_DIR
    if config.get("kind") != "stacked":
        raise ProjectError(f"the project's observations are {config.get('kind')} windows; ingest writes stacked "
                           "series (stage 2) - create a new project with 'ercnn-napari new'", project.file_path)
    path = project.observations_path()
    assert path is not None
    return path


def period_seconds(project: Project) -> tuple[float, float]:
    """(start, end) of the project period in UNIX s; the end day is included."""
    start = dt.datetime.fromisoformat(project.period.start).replace(tzinfo=dt.timezone.utc)
    end = dt.datetime.fromisoformat(project.period.end).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    return start.timestamp(), end.timestamp()


def _scene_problem(scene: Any, what: str) -> str:
    if hasattr(scene, "manifest") and hasattr(scene, "row"):
        return str(row_error(scene.manifest, scene.row, Path(scene.info.source).name, what))
    return str(InputDataError(what, scene.info.source))


def ingest(project: Project, sources: list[str], workers: int = 1, scheduler: str | None = None,
           progress: Progress | None = None, on_problem: Callable[[str], None] | None = None,
           block_tiles: int = BLOCK_TILES) -> IngestReport:
    """Add the acquisitions of ``sources`` to the project's stacked series (see the module doc).

    ``block_tiles`` is the warping block side in tiles (memory per warp task; tests make it small).
    """
    began = time.monotonic()
    report = IngestReport()
    say = progress or (lambda desc, done, total: None)

    def problem(text: str) -> None:
        report.problems.append(text)
        if on_problem is not None:
            on_problem(text)

    folder = observations_folder(project)
    store = SceneStore(folder, project.grid, block_tiles)
    store.remove_stale_temporaries()
    start, end = period_seconds(project)
    scenes, origins = [], {}
    for spec in sources:
        source = open_source(spec, grid=project.grid, period=project.period)
        listed = list(source.scenes())
        for text in getattr(source, "problems", []):
            problem(str(text))
        for scene in listed:
            origins[scene.info.source] = getattr(source, "description", spec)
        scenes += listed
    report.acquisitions_listed = len(scenes) + len(report.problems)
    to_warp = _select(scenes, store, end, problem, report)

    with TaskRunner(workers, scheduler) as runner:
        report.runner = runner.description
        done = 0
        say("warping acquisitions", 0, len(to_warp))

        def warped(result: dict[str, Any]) -> None:
            nonlocal done
            done += 1
            if result["status"] == "ok":
                report.warped += 1
            elif result["status"] == "empty":
                report.dropped_empty += 1
                problem(_scene_problem(by_id[result["id"]], result["message"]))
            else:
                problem(result["message"])
            say("warping acquisitions", done, len(to_warp))

        by_id = {scene_id(s.info): s for s in to_warp}
        runner.map(_warp_task, [(s, origins.get(s.info.source, "")) for s in to_warp], store, on_result=warped)
        metas = store.finished()
        if not metas:
            raise InputDataError("no usable acquisition to stack (see the problems above)", folder)
        plan = plan_steps([m["epoch_seconds"] for m in metas], start)
        if plan.timestamps.size == 0:
            raise InputDataError(f"every acquisition is before the project period start {project.period.start}",
                                 folder)
        report.acquisitions_stacked = len(metas)
        report.records = int(plan.timestamps.size)
        job = StackJob(store, tuple(m["id"] for m in metas), tuple(m["stream"] for m in metas), plan, folder)
        _stack_all(project, job, metas, start, runner, say, report)

    _write_sidecars(folder, plan, metas)
    if project.observations_config is None:
        project.set_observations({"kind": "stacked", "path": STACKED_OBSERVATIONS_DIR})
    report.seconds = round(time.monotonic() - began, 2)
    return report


def _select(scenes: list[Any], store: SceneStore, end: float, problem: Callable[[str], None],
            report: IngestReport) -> list[Any]:
    """Acquisitions to warp: inside the period, not duplicated, not already in the store."""
    by_id: dict[str, list[Any]] = defaultdict(list)
    for scene in scenes:
        if scene.info.epoch_seconds >= end:
            when = scene.info.time.astimezone(dt.timezone.utc)
            problem(_scene_problem(scene, f"acquired {when:%Y-%m-%dT%H:%M:%SZ}, after the project period; not used"))
            continue
        by_id[scene_id(scene.info)].append(scene)
    selected = []
    for sid, group in by_id.items():
        if len(group) > 1:
            for scene in group:
                others = ", ".join(o.info.source for o in group if o is not scene)
                problem(_scene_problem(scene, f"same {scene.info.stream} acquisition second as {others}; "
                                              "none of them used"))
            continue
        scene = group[0]
        meta = store.meta(sid)
        if meta is not None and meta.get("source") == scene.info.source:
            report.reused += 1
        elif meta is None and store.empty_source(sid) == scene.info.source:
            report.dropped_empty += 1          # reported when it was found empty; not again
        elif meta is not None:
            problem(_scene_problem(scene, f"{sid} was already ingested from {meta.get('source')}; not used"))
        else:
            selected.append(scene)
    return selected


def _warp_task(item: tuple[Any, str], store: SceneStore) -> dict[str, Any]:
    scene, origin = item
    return store.write_scene(scene, origin)


def _stack_task(tile: TileId, job: StackJob) -> tuple[TileId, int]:
    def read(a: int):
        return (job.streams[a], *job.store.read_tile(job.ids[a], job.streams[a], tile))

    size = job.store.grid.tile_size
    count = write_stacked_records(job.folder / f"{tile_stem(tile)}.tfrecords", stack_tile(job.plan, read, size, size))
    return tile, count


def _stack_all(project: Project, job: StackJob, metas: list[dict[str, Any]], start: float, runner: TaskRunner,
               say: Progress, report: IngestReport) -> None:
    """Stack every tile not yet stacked from this set of acquisitions; keep the ledger current."""
    digest = hashlib.sha256(json.dumps([start, [(m["id"], m["source"]) for m in metas]]).encode()).hexdigest()
    ledger_path = job.store.root / LEDGER_FILE
    try:
        ledger = json.loads(ledger_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        ledger = {}
    done_tiles = set(ledger.get("tiles", [])) if ledger.get("digest") == digest else set()
    if ledger.get("digest") != digest:   # the time axis changes: no stale axis while tiles are re-stacked
        (job.folder / TIMESTAMPS_FILE).unlink(missing_ok=True)
    tiles = [t for t in project.grid.tiles()
             if not (tile_stem(t) in done_tiles and (job.folder / f"{tile_stem(t)}.tfrecords").is_file())]
    report.tiles_reused = project.grid.rows * project.grid.cols - len(tiles)
    finished = set(done_tiles)
    last_flush = time.monotonic()

    def flush() -> None:
        atomic_write_text(ledger_path, json.dumps({"digest": digest, "tiles": sorted(finished)}))

    def stacked(result: tuple[TileId, int]) -> None:
        nonlocal last_flush
        finished.add(tile_stem(result[0]))
        report.tiles_stacked += 1
        say("stacking tiles", report.tiles_stacked, len(tiles))
        if time.monotonic() - last_flush > LEDGER_FLUSH_SECONDS:
            flush()
            last_flush = time.monotonic()

    say("stacking tiles", 0, len(tiles))
    try:
        runner.map(_stack_task, tiles, job, on_result=stacked)
    finally:
        flush()


def _write_sidecars(folder: Path, plan: StackPlan, metas: list[dict[str, Any]]) -> None:
    """``timestamps.json`` (the shared time axis, read TF-free by ``info``) and ``fidelity.json``."""
    stamps = [float(t) for t in plan.timestamps]
    iso = [dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") for t in stamps]
    atomic_write_text(folder / TIMESTAMPS_FILE, json.dumps(
        {"timestamps": stamps, "iso": iso, "note": "UNIX seconds (UTC) of the stacked 2-day steps, identical for "
                                                   "every tile"}, indent=0))
    atomic_write_text(folder / FIDELITY_FILE, json.dumps(build_record(metas), indent=1))
