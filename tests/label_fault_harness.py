"""Fault injection for the label store, shared by tests/test_label_faults.py and benchmarks/label_faults.py.

Real faults only: a real ``kill -9`` (SIGKILL) of a forked writer in the middle of saving, real
concurrent writer processes taking the real file lock, a real tmpfs filled to a given number of
free bytes, a real read-only mount. The checks read the files back with the product's own reader.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ercnn_napari.core.atomic import STALE_AFTER_S, is_temp_name
from ercnn_napari.core.errors import LabelError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.labels import LabelConflictWarning
from ercnn_napari.core.project import Project

GRID = TileGrid("EPSG:32631", 682000.0, 5612000.0, 10.0, 10.0, 2, 2)
TILES = [(0, 0), (0, 1), (1, 0), (1, 1)]


def make_project(root: Path) -> Project:
    return Project.create(root, "Liege", GRID)


def pattern(writer: int, counter: int) -> np.ndarray:
    """A label unique to (writer, counter): change, no change and some unsure pixels (value 2)."""
    rng = np.random.default_rng([writer, counter])
    values = (rng.random((32, 32)) > 0.6).astype(np.uint8)
    values[rng.random((32, 32)) > 0.95] = 2
    return values


def temp_files(project: Project) -> list[Path]:
    """Temporary files of interrupted saves anywhere in the project."""
    return [p for p in project.root.rglob("*") if is_temp_name(p.name)]


# ------------------------------------------------------------------------------- kill -9
def _writer_loop(root: Path, journal: Path, start: int) -> None:
    """Child: save labels forever, journaling each save before ("S i") and after ("D i")."""
    project = Project.open(root)
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    i = start
    while True:
        tile = TILES[i % len(TILES)]
        os.write(fd, f"S {i}\n".encode())
        project.labels.write(tile, pattern(0, i))
        os.write(fd, f"D {i}\n".encode())
        i += 1


def _fork(target, *args) -> int:  # noqa: ANN001 - a callable run in the child
    pid = os.fork()
    if pid == 0:  # child: never return into the parent's code (pytest)
        code = 0
        try:
            target(*args)
        except BaseException:  # noqa: BLE001 - report through the exit code only
            code = 3
        finally:
            os._exit(code)
    return pid


def kill_matrix(root: Path, kills: int, seed: int = 0, min_delay: float = 0.0,
                max_delay: float = 0.08) -> dict[str, int]:
    """SIGKILL a writer ``kills`` times mid-save; check every tile after each kill.

    corrupt: a tile that does not read (LabelError); lost: a tile whose label is neither the
    last completed save (or its state after the previous kill) nor the one in flight; split:
    .npy and GeoTIFF disagreed (detected, the newer one used), healed: splits rewritten; mid_save: kills that hit while a save was in flight; leftovers: temporary
    files still there after the project is opened again later (when they are stale).
    """
    project = make_project(root)
    journal = root / "journal.txt"
    rng = random.Random(seed)
    counts = {"kills": 0, "mid_save": 0, "corrupt": 0, "lost": 0, "split": 0, "healed": 0}
    start = 0
    observed: dict[tuple[int, int], np.ndarray | None] = {}
    done_before: dict[tuple[int, int], int] = {}
    for _ in range(kills):
        before = journal.read_text().count("D ") if journal.exists() else 0
        pid = _fork(_writer_loop, root, journal, start)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait for one completed save: the child is in its loop
            if journal.exists() and journal.read_text().count("D ") > before:
                break
            time.sleep(0.002)
        time.sleep(rng.uniform(min_delay, max_delay))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        counts["kills"] += 1
        done, in_flight = _read_journal(journal)
        if in_flight is not None:
            counts["mid_save"] += 1
        start = max([*done.values(), in_flight if in_flight is not None else -1, start - 1]) + 1
        for tile in TILES:
            # what the tile may hold: the last save completed in this round, else what it held after
            # the previous kill; or the save in flight when the kill came
            completed_now = done.get(tile) != done_before.get(tile)
            allowed = [pattern(0, done[tile]) if completed_now else observed.get(tile)]
            if in_flight is not None and TILES[in_flight % len(TILES)] == tile:
                allowed.append(pattern(0, in_flight))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", LabelConflictWarning)
                try:
                    values = project.labels.read_values(tile)
                except LabelError:
                    counts["corrupt"] += 1
                    continue
            split = sum(issubclass(w.category, LabelConflictWarning) for w in caught)
            if split:
                counts["split"] += 1
                counts["healed"] += project.labels.heal(tile)
            if not any(_same(values, a) for a in allowed):
                counts["lost"] += 1
            observed[tile] = values
        done_before = dict(done)
    counts["temps_after_kills"] = len(temp_files(project))
    past = time.time() - STALE_AFTER_S - 1  # "the next day": reopening removes what is stale
    for path in temp_files(project):
        os.utime(path, (past, past))
    reopened = Project.open(root)
    counts["removed_on_open"] = len(reopened.removed_temp_files)
    counts["leftovers"] = len(temp_files(reopened))
    return counts


def _same(values: np.ndarray | None, expected: np.ndarray | None) -> bool:
    if values is None or expected is None:
        return values is None and expected is None
    return bool(np.array_equal(values, expected))


def _read_journal(journal: Path) -> tuple[dict[tuple[int, int], int], int | None]:
    done: dict[tuple[int, int], int] = {}
    started = None
    for line in journal.read_text().splitlines():
        kind, _, number = line.partition(" ")
        if not number.isdigit():
            continue  # a torn last line
        i = int(number)
        if kind == "S":
            started = i
        elif kind == "D":
            done[TILES[i % len(TILES)]] = i
            started = None if started == i else started
    return done, started


# ------------------------------------------------------------------------------- two writers
def _session_writer(root: Path, writer: int, tile: tuple[int, int], saves: int, log: Path, go: int) -> None:
    """Child: a viewer's session saving ``tile`` over and over; logs (expected, written) signatures."""
    from ercnn_napari.napari_plugin.label_session import LabelSession

    session = LabelSession(Project.open(root))
    os.read(go, 1)  # both writers start together
    rows, cols = GRID.tile_slices(tile)
    with open(log, "w") as out:
        counter = 0
        while counter < saves:
            session.mosaic[rows, cols] = pattern(writer, counter)
            expected = session.signatures.get(tile)
            report = session.save([tile])
            if report.saved:
                out.write(json.dumps({"saved": True, "expected": expected, "written": session.signatures[tile],
                                      "counter": counter}) + "\n")
            elif report.conflicts:
                out.write(json.dumps({"saved": False, "message": session.conflicts[tile]}) + "\n")
                session.take_theirs(tile)  # the loser reloads and tries again
            else:
                out.write(json.dumps({"saved": False, "error": report.errors.get(tile)}) + "\n")
            counter += 1


def hammer(root: Path, tiles: list[tuple[int, int]], saves: int) -> dict[str, int]:
    """Two processes save ``tiles[0]`` and ``tiles[1]`` (the same tile, or two) ``saves`` times each.

    lost: a successful save that replaced a version the writer had not seen (two saves replacing
    the same version, or a chain of versions with a gap), or a final file that is not the last
    successful save; conflicts: saves refused and reported to the writer that lost the race.
    """
    project = make_project(root)
    initial = {tile: json.dumps(list(project.labels.write(tile, np.zeros((32, 32), np.uint8))))
               for tile in set(tiles)}
    read_end, write_end = os.pipe()
    logs = [root / f"writer{w}.jsonl" for w in (1, 2)]
    pids = [_fork(_session_writer, root, w, tiles[w - 1], saves, logs[w - 1], read_end) for w in (1, 2)]
    time.sleep(0.5)
    os.write(write_end, b"gg")
    codes = [os.waitpid(pid, 0)[1] for pid in pids]
    result = {"saves": 0, "conflicts": 0, "errors": 0, "lost": 0, "exit_failures": sum(c != 0 for c in codes)}
    for tile in set(tiles):
        entries = []
        for w, log in zip((1, 2), logs, strict=True):
            if tiles[w - 1] != tile:
                continue
            for line in log.read_text().splitlines():
                entry = json.loads(line)
                entry["writer"] = w
                entries.append(entry)
        saved = [e for e in entries if e["saved"]]
        result["saves"] += len(saved)
        result["conflicts"] += sum(1 for e in entries if "message" in e)
        result["errors"] += sum(1 for e in entries if e.get("error"))
        result["lost"] += _broken_chain(project, tile, saved, initial[tile])
    return result


def _broken_chain(project: Project, tile: tuple[int, int], saved: list[dict], initial: str) -> int:
    """Saves that replaced a version their writer had not seen (0 for a sound history).

    Every pattern is unique, so a sound history is one chain of versions: each save replaces
    exactly the version written by the save before it, starting from ``initial``, and the file
    on disk is the chain's last version.
    """
    by_expected: dict[str, dict] = {}
    lost = 0
    for entry in saved:
        key = json.dumps(entry["expected"])
        if key in by_expected:
            lost += 1  # two saves replaced the same version: one overwrote work it had never loaded
        by_expected[key] = entry
    current, visited = initial, 0
    while current in by_expected and visited <= len(saved):
        current = json.dumps(by_expected[current]["written"])
        visited += 1
    lost += max(0, len(by_expected) - visited)
    if json.dumps(list(project.labels.signature(tile))) != current:
        lost += 1  # the file on disk is not the last successful save
    return lost


# ------------------------------------------------------------------------------- tmpfs
def can_mount() -> str | None:
    """None if a tmpfs can be mounted here, else the reason why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (these runs are not root)"
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder],
                                capture_output=True, text=True)
        if result.returncode != 0:
            return f"mount -t tmpfs failed: {result.stderr.strip() or result.returncode}"
        subprocess.run(["umount", folder], check=False)
    return None


@contextlib.contextmanager
def tmpfs(size: str = "1m") -> Iterator[Path]:
    """A real, small tmpfs mounted on a fresh folder (unmounted afterwards)."""
    folder = Path(tempfile.mkdtemp(prefix="ercnn-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        with contextlib.suppress(OSError):
            folder.rmdir()


def remount(folder: Path, mode: str) -> None:
    """``mode`` = "ro" or "rw": a read-only folder that even root cannot write to."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def fill_disk(folder: Path, leave_free: int) -> Path:
    """Fill the filesystem of ``folder`` completely, then give back ``leave_free`` bytes."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    chunk = b"\0" * 4096
    try:
        while True:
            os.write(fd, chunk)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave_free))
    return filler
