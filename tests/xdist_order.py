"""Hand the longest test files to the pytest-xdist processes first, so both finish at about the same time.

With ``-n 2 --dist loadfile`` each process takes whole files from one queue. xdist's default queue
order is "most tests first", which put the GUI's fine-tune file (7 tests, four minutes of TensorFlow
workers) near the end: one process then ran it alone while the other sat idle. Longest first (the
classic greedy schedule) keeps both busy to the end. The list holds the files that take a minute or
more on 2 cores, longest first, measured with ``pytest --durations=0``; it decides only the order,
never what runs. A file missing from it runs after these, in the usual order; a stale name does nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

START_FIRST = (
    # tests/gui (run by `pytest tests/gui -n 2 --dist loadfile`)
    "test_finetune_dock.py",
    "test_plugin_docks.py",
    "test_label_dock.py",
    "test_label_worker_panels.py",
    "test_sample_and_demo.py",
    "test_review_dock.py",
    "test_pixel_dock.py",
    # tests (the TensorFlow half)
    "test_frozen_backbone.py",
    "test_train_cli.py",
    "test_train_multiworker.py",
    "test_map_cli.py",
    "test_evaluate_cli.py",
    "test_predict_cli.py",
    "test_suggest_cli.py",
    "test_evaluate_heldout.py",
    "test_train_context.py",
    "test_lean_gradients.py",
    "test_model_oracle.py",
    "test_augment.py",
)


def keep_file_order(config: pytest.Config) -> None:
    """Make xdist's ``loadfile`` queue follow the collection order set by :func:`longest_first`."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def longest_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: files of START_FIRST in its order, then the rest as collected."""
    rank = {name: index for index, name in enumerate(START_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.path)).name, len(rank)))  # stable: tests keep their order
