"""Make the sample available: generate it, or copy the committed one, and add observations.

The repository commits the small part (``sample_data/liege``: labels, polygons, reference pairs,
splits, answer key) and the heavy part, the stacked observations, is generated on demand into a
writable folder. The spec of a project is recorded in ``answer_key/sample.json``, so observations
added later match the land cover the rest of the project was drawn from.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.tiles import format_tile_id
from ercnn_napari.sample.files import ANSWER_DIR, OBSERVATIONS_DIR, SAMPLE_FILE, observation_path
from ercnn_napari.sample.site import DEFAULT_SEED, SampleSpec

Progress = Callable[[str, int, int], None]

#: The committed sample inside a source checkout (absent from an installed wheel).
COMMITTED_SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "liege"
CACHE_ENV = "ERCNN_NAPARI_CACHE"


def default_sample_dir() -> Path:
    """``$ERCNN_NAPARI_CACHE/sample-liege``, else ``~/.cache/ercnn-napari/sample-liege``."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "ercnn-napari"
    return root / "sample-liege"


def generate_sample(dest: str | os.PathLike, seed: int = DEFAULT_SEED, tiles: list[tuple[int, int]] | None = None,
                    with_observations: bool = True, workers: int | None = None,
                    progress: Progress | None = None, spec: SampleSpec | None = None) -> Path:
    """Generate the whole sample into ``dest`` (observations for ``tiles``, default all)."""
    from ercnn_napari.sample.project_writer import write_project  # the generator: scipy, rasterio
    from ercnn_napari.sample.scene import build_scene

    spec = spec or SampleSpec(seed=seed)
    dest = Path(dest)
    scene, _ = build_scene(spec)
    write_project(dest, spec, scene, progress)
    if with_observations:
        _add_observations(dest, spec, scene, tiles, workers, progress)
    return dest


def read_spec(root: Path) -> SampleSpec:
    """The spec a sample project was generated with (from its ``answer_key/sample.json``)."""
    path = root / ANSWER_DIR / SAMPLE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SampleSpec(rows=int(data["rows"]), cols=int(data["cols"]), origin_x=float(data["origin_x"]),
                          origin_y=float(data["origin_y"]), period_start=str(data["period_start"]),
                          period_end=str(data["period_end"]), seed=int(data["seed"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProjectError(f"not a generated sample project (cannot read its spec: {exc})", path) from exc


def missing_observation_tiles(root: Path, spec: SampleSpec, tiles: list[tuple[int, int]] | None) -> list:
    wanted = spec.tiles() if tiles is None else [(int(y), int(x)) for y, x in tiles]
    for tile in wanted:
        if not (0 <= tile[0] < spec.rows and 0 <= tile[1] < spec.cols):
            raise ProjectError(f"tile {format_tile_id(tile)} is outside the sample grid of {spec.rows} x {spec.cols}")
    return [t for t in wanted if not observation_path(root / OBSERVATIONS_DIR, t).is_file()]


def _add_observations(root: Path, spec: SampleSpec, scene, tiles, workers, progress) -> None:
    from ercnn_napari.sample.observation_writer import write_observations

    missing = missing_observation_tiles(root, spec, tiles)
    if not missing:
        return
    if scene is None:
        from ercnn_napari.sample.scene import build_scene

        scene, _ = build_scene(spec)
    write_observations(root / OBSERVATIONS_DIR, spec, scene, missing, workers, progress)


def prepare_sample_project(dest: str | os.PathLike | None = None, tiles: list[tuple[int, int]] | None = None,
                           with_observations: bool = True, workers: int | None = None,
                           progress: Progress | None = None) -> Path:
    """A writable copy of the sample at ``dest`` (default: the cache folder), with observations.

    An existing sample at ``dest`` is reused (only missing observation files are generated); else
    the committed sample is copied if this is a source checkout, or the sample is generated.
    The copy is made in a temporary sibling folder and renamed into place, so two processes
    preparing the same folder never see a half-copied project.
    """
    dest = Path(dest) if dest is not None else default_sample_dir()
    if not (dest / ANSWER_DIR / SAMPLE_FILE).is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            if (COMMITTED_SAMPLE / ANSWER_DIR / SAMPLE_FILE).is_file():
                shutil.copytree(COMMITTED_SAMPLE, staging, dirs_exist_ok=True)
            else:
                generate_sample(staging, spec=SampleSpec(), with_observations=False, progress=progress)
            if dest.exists() and not any(dest.iterdir()):
                dest.rmdir()
            try:
                os.rename(staging, dest)
            except OSError as exc:
                if not (dest / ANSWER_DIR / SAMPLE_FILE).is_file():
                    raise ProjectError("cannot create the sample here: the folder exists and is not a sample",
                                       dest) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if with_observations:
        _add_observations(dest, read_spec(dest), None, tiles, workers, progress)
    return dest
