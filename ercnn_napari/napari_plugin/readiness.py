"""Why a dock's run button is disabled, as one sentence the dock shows next to it.

A grey button with no reason ("idle") left a new user stuck; these checks mirror what the workers
refuse (``ml.train_setup.collect_inputs``, ``ercnn-napari predict``) with file reads only, so the
dock can say what is missing before anything starts. Qt-free and TensorFlow-free.
"""

from __future__ import annotations

from typing import Any

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.tiles import TileId, format_tile_id

NO_PROJECT = "no project open: open a project folder with File › Open (or the Label dock's Open project…)"


def _tiles_text(tiles: list[TileId], limit: int = 4) -> str:
    shown = ", ".join(format_tile_id(t) for t in tiles[:limit])
    return shown + (f" and {len(tiles) - limit} more" if len(tiles) > limit else "")


def finetune_blocker(project: Any, split_name: str) -> str:
    """Why a fine-tune on ``split_name`` cannot start ("" when it can)."""
    if project is None:
        return NO_PROJECT
    with_obs = set(project.tiles_with_observations())
    if not with_obs:
        return ("this project has no observations yet: training needs them "
                "(for the sample: ercnn-napari sample DIR)")
    if split_name not in project.split_names():
        return (f"split {split_name} does not exist yet: assign train and validation tiles in the "
                "Label dock's split editor")
    try:
        split = project.split(split_name)
    except ErcnnError as exc:
        return str(exc)
    if not split.train:
        return f"split {split_name} has no training tiles: assign some in the Label dock's split editor"
    labelled = set(project.tiles_with_labels())
    unlabelled = [t for t in split.train + split.val if t not in labelled]
    if unlabelled:
        return (f"no labels in split {split_name} for tile(s) {_tiles_text(unlabelled)}: label them "
                "(or mark them labelled) first")
    missing = [t for t in split.train + split.val if t not in with_obs]
    if missing:
        return f"tile(s) {_tiles_text(missing)} of split {split_name} have no observations"
    return ""


def predict_blocker(project: Any, models: list[str], tiles: list[TileId] | None) -> str:
    """Why a prediction cannot start ("" when it can); ``tiles`` None means "not chosen yet"."""
    if project is None:
        return NO_PROJECT
    if not project.tiles_with_observations():
        return ("this project has no observations yet: prediction needs them "
                "(for the sample: ercnn-napari sample DIR)")
    if not models:
        return "no model ticked: tick the baseline, a run, or several for an ensemble"
    if tiles is not None and not tiles:
        return "none of the chosen tiles has observations: pan to them or choose other tiles"
    return ""
