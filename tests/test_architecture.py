"""The house's rooms import one way: a room may use the rooms below it, never the rooms above it.

Read from the source (every import, including the lazy ones inside functions, because a lazy
import is still a dependency), so a circle between rooms fails here before it fails at run time.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import ercnn_napari

PACKAGE = Path(ercnn_napari.__file__).parent

# Each room and the rooms it may import (besides itself). ml is split into its own rooms.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "baseline": {"core"},
    "reference": {"core"},
    "ingest": {"core"},
    "sample": {"core", "ml.model", "ml.data"},
    "ml.model": {"core"},
    "ml.data": {"core", "ml.model"},
    "ml.inference": {"core", "baseline", "ml.model", "ml.data"},
    "ml.training": {"core", "ml.model", "ml.data", "ml.inference", "baseline"},
    "mapping": {"core", "ml.model", "ml.data", "ml.inference", "ml.training"},
    "cli": {"core", "baseline", "reference", "ingest", "sample", "ml.model", "ml.data", "ml.inference",
            "ml.training", "mapping", "napari_plugin"},  # demo opens the viewer
    # The viewer runs the command line as a worker process (a string, not an import).
    "napari_plugin": {"core", "baseline", "reference", "sample", "mapping"},
}
# Rooms the napari process imports: never TensorFlow or Keras (software OpenGL crashes with it).
TF_FREE = {"core", "baseline", "reference", "ingest", "napari_plugin"}


def room_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "ercnn_napari" or len(parts) < 2:
        return None
    if parts[1] == "ml" and len(parts) > 2:
        return f"ml.{parts[2]}"
    return parts[1] if parts[1] in ALLOWED or parts[1] == "ml" else None


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def room_imports() -> dict[str, dict[str, set[str]]]:
    """room -> imported room -> the files that do it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        room = room_of(module)
        if room is None:
            continue
        for name in imports_of(path):
            target = room_of(name) if name.startswith("ercnn_napari.") else name.split(".")[0]
            if target is not None and target != room:
                graph[room][target].add(str(path.relative_to(PACKAGE)))
    return graph


def test_every_room_imports_only_the_rooms_below_it() -> None:
    graph = room_imports()
    wrong = [f"{room} -> {target} ({', '.join(sorted(files))})"
             for room, targets in graph.items() for target, files in targets.items()
             if target in ALLOWED or target == "ml"
             if target not in ALLOWED.get(room, set())]
    assert not wrong, "imports against the house's direction:\n" + "\n".join(wrong)


def test_the_allowed_directions_have_no_circle() -> None:
    seen: dict[str, int] = {}

    def visit(room: str, trail: tuple[str, ...]) -> None:
        assert room not in trail, f"circle: {' -> '.join((*trail, room))}"
        if seen.get(room):
            return
        for below in ALLOWED[room]:
            visit(below, (*trail, room))
        seen[room] = 1

    for room in ALLOWED:
        visit(room, ())


def test_the_viewer_side_never_imports_tensorflow() -> None:
    graph = room_imports()
    wrong = [f"{room} -> {lib} ({', '.join(sorted(files))})" for room in TF_FREE
             for lib, files in graph.get(room, {}).items() if lib in {"tensorflow", "keras", "tf_keras"}]
    assert not wrong, "\n".join(wrong)


def test_ml_has_no_loose_modules() -> None:
    loose = sorted(p.name for p in (PACKAGE / "ml").glob("*.py") if p.name != "__init__.py")
    assert not loose, f"ml/ is split into rooms (model, data, inference, training); place {loose} in one"
