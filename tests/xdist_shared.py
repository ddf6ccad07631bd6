"""Build an expensive session fixture once per test run, even when pytest-xdist runs several processes.

A session fixture is made once per *process*: with ``-n 2`` each xdist worker would build the sample
project (observation generation) or the GUI tests' worker project (a TensorFlow subprocess) again,
the same bytes twice on a 2-core CI machine. Here the first worker builds it in the run's shared
temporary folder under a file lock, and every worker then takes a private copy, so tests that write
into their project (run folders, labels) never see another process's writes. Without xdist the
fixture is built straight into the process's own temporary folder, as before.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

BUILD_TIMEOUT_S = 1200  # a worker waits this long for the other one's build before failing


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    """``build(folder)`` once per run; this process's own copy of what it returned.

    ``build`` gets an empty folder and returns the path it built in it (a file or folder inside).
    A build that failed in one worker is tried again by the next one (nothing is marked done).
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent / f"shared-{name}"  # one folder per xdist run
    done = shared / "built.txt"
    with FileLock(f"{shared}.lock", timeout=BUILD_TIMEOUT_S):
        if not done.is_file():
            if shared.exists():
                shutil.rmtree(shared)  # a failed build's leftovers
            (shared / "build").mkdir(parents=True)
            built = build(shared / "build")
            done.write_text(str(built.relative_to(shared / "build")))
    relative = done.read_text()
    own = tmp_path_factory.mktemp(name)
    shutil.copytree(shared / "build", own / "build")
    return own / "build" / relative
