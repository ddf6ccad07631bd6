"""Session fixtures with the synthetic Liège sample, for every test that needs a real project.

``sample_project_no_obs``: a writable copy of the committed sample (labels, polygons, reference
pairs, splits, answer key; no observations). ``sample_project``: another copy with stacked
observations for five tiles and its split lists narrowed to those tiles, so a training or
evaluation run on any version finds data for every tile it lists: each version validates on one
tile (the three validation tiles are disjoint), trains on the other two plus one more tile, and
all share one test tile. Both are made once per session in a temporary folder (``sample_project``
once per run, see ``xdist_shared``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from xdist_shared import build_once


def _fixture_tiles(root: Path) -> dict:
    """Pick the five tiles: one validation tile per version, one test tile, one more training tile."""
    import numpy as np

    from ercnn_napari.core.project import Project

    project = Project.open(root)
    splits = project.splits()
    changed = lambda t: bool(np.load(root / "answer_key" / f"{t[0]}_{t[1]}.npy").any())  # noqa: E731
    vals = [sorted(s.val, key=lambda t: (not changed(t), t))[0] for s in splits.values()]
    test = sorted(next(iter(splits.values())).test, key=lambda t: (not changed(t), t))[0]
    common = sorted(set.intersection(*(set(s.train) for s in splits.values())) - set(vals),
                    key=lambda t: (changed(t), t))[0]               # an unchanged tile: negatives matter
    return {"vals": vals, "test": test, "common": common}


def narrow_splits(root: Path, vals: list, test: tuple, common: tuple) -> None:
    """Rewrite the sample's V1-V3 so they only list the tiles that have observations."""
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.splits import Split

    project = Project.open(root)
    narrowed = {}
    for k, name in enumerate(sorted(project.splits())):
        train = sorted([v for j, v in enumerate(vals) if j != k] + [common])
        narrowed[name] = Split(name, train, [vals[k]], [test], [])
    project.write_splits(narrowed)            # empty not-used lists replace the full sample's


@pytest.fixture(scope="session")
def sample_project_no_obs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ercnn_napari.sample import prepare_sample_project

    return prepare_sample_project(tmp_path_factory.mktemp("sample_no_obs") / "liege", with_observations=False)


def _build_sample_project(folder: Path) -> Path:
    from ercnn_napari.sample import prepare_sample_project

    root = prepare_sample_project(folder / "liege", with_observations=False)
    chosen = _fixture_tiles(root)
    tiles = [*chosen["vals"], chosen["test"], chosen["common"]]
    prepare_sample_project(root, tiles=tiles, with_observations=True, workers=2)
    narrow_splits(root, chosen["vals"], chosen["test"], chosen["common"])
    return root


@pytest.fixture(scope="session")
def sample_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated once per run (the observations take a while) and copied into each xdist process."""
    return build_once(tmp_path_factory, "sample", _build_sample_project)
