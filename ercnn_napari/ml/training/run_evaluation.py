"""The end of a training run: the "before" and "after" models scored on the validation and test tiles.

Written to ``evaluation.json`` with the index-difference baseline's row beside them, so every
before/after table also shows what a plain index difference reaches on the same tiles. Kept apart
from the loop because it runs once, after training, with models loaded back from the run folder.
"""

from __future__ import annotations

from typing import Any

from ercnn_napari.baseline.run import index_row_or_reason
from ercnn_napari.core.messages import Progress
from ercnn_napari.ml.inference.evaluate import compare, evaluate_tiles
from ercnn_napari.ml.model.weights import load_model


def evaluate_run(loop: Any) -> dict[str, Any] | None:
    """Baseline vs final model on the validation and test tiles -> evaluation.json."""
    run, cfg = loop.run, loop.config
    models = {"before": load_model(run.baseline_model), "after": load_model(run.final_model)}
    sets = {"val": loop.inputs.val_tiles, "test": loop.inputs.test_tiles}
    total = sum(len(t) for t in sets.values()) * 2
    done = 0
    result: dict[str, Any] = {"threshold": cfg.threshold, "border": cfg.border, "windows_per_tile": cfg.eval_windows,
                              "baseline": cfg.baseline, "model": str(run.final_model),
                              "best_epoch": loop.state["best_epoch"],
                              "skipped_test_tiles": loop.inputs.skipped_test_tiles, "sets": {}}
    for set_name, tiles in sets.items():
        if not tiles:
            continue
        labels = {t: loop.inputs.labels[t] for t in tiles}
        entry = {}
        for when, (model, model_config) in models.items():
            def on_tile(i: int, n: int, tile: Any, when: str = when, set_name: str = set_name,
                        offset: int = done) -> None:
                loop.sink.emit(Progress(done=offset + i, total=total, desc=f"evaluating {set_name} ({when})",
                                        unit="tiles"))
            entry[when] = evaluate_tiles(model, model_config.time_steps, loop.source, labels,
                                         windows_per_tile=cfg.eval_windows, threshold=cfg.threshold,
                                         border=cfg.border, should_stop=loop.stop, on_tile=on_tile,
                                         halo=cfg.context if when == "after" else 0)
            if not entry[when]["complete"]:
                return None
            done += len(tiles)
        entry["delta"] = compare(entry["before"], entry["after"])
        result["sets"][set_name] = entry
    result["index_baseline"] = index_row_or_reason(
        loop.project, {t: loop.inputs.labels[t] for t in loop.inputs.train_tiles},
        {name: {t: loop.inputs.labels[t] for t in tiles} for name, tiles in sets.items() if tiles}, cfg.border)
    run.write_json(run.evaluation_json, result)
    return result
