"""Fault matrix of the label store at full count: kill -9 mid-save, two writers, full disk, read-only.

    python benchmarks/label_faults.py [--kills 370] [--saves 120] [--seed 0]

Rows (each printed as one line, then a last line of ``key=value`` pairs):

- kill -9: a forked writer saves labels in a loop and is SIGKILLed at a random moment of a save,
  ``--kills`` times; after each kill every tile is read back with the product's reader.
  ``corrupt`` tiles do not read, ``lost`` tiles hold neither the last completed save nor the one
  in flight, ``split`` pairs (npy and GeoTIFF disagree after a kill between the two renames) are
  detected and healed; ``leftovers`` are temporary files still there once the project is opened
  again after they went stale (``temps`` before that).
- two writers: two processes, each a viewer's label session, save the same tile (and then two
  different tiles) ``--saves`` times each; ``lost`` counts saves that replaced a version their
  writer had never loaded; ``conflicts`` are saves refused and reported to the writer that lost
  the race. As a reference measured in the same run, the same hammering with the lock and the
  compare switched off (the behaviour before) gives ``lost_unlocked``.
- full disk / read-only: only as root with a mountable tmpfs (skipped otherwise, said so): a save
  with 0 .. 64 KiB free, and on a read-only remount; ``previous_kept`` counts tiles whose previous
  label survived every failed save, ``named`` failures whose message names the label file.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import label_fault_harness as harness  # noqa: E402

FREE_SIZES = (0, 4096, 8192, 12288, 16384, 65536)


def disk_rows() -> dict[str, int] | None:
    """Full disk at several free sizes and a read-only remount (None when no tmpfs can be mounted)."""
    from ercnn_napari.core.project import Project
    from ercnn_napari.napari_plugin.label_session import LabelSession

    if harness.can_mount() is not None:
        return None
    row = {"saves": 0, "failed": 0, "named": 0, "previous_kept": 0, "broken": 0, "saved_after_freeing": 0}
    for free in [*FREE_SIZES, "ro"]:
        with harness.tmpfs("512k") as mount:
            project = harness.make_project(mount / "project")
            good, new = harness.pattern(1, 0), harness.pattern(1, 1)
            project.labels.write((0, 0), good)
            session = LabelSession(Project.open(project.root))
            rows, cols = harness.GRID.tile_slices((0, 0))
            session.mosaic[rows, cols] = new
            filler = None
            if free == "ro":
                harness.remount(mount, "ro")
            else:
                filler = harness.fill_disk(mount, free)
            report = session.save()
            row["saves"] += 1
            on_disk = project.labels.read_values((0, 0))
            if report.errors:
                row["failed"] += 1
                message = report.errors[(0, 0)]
                row["named"] += message.split(": ")[0] in {str(project.labels.npy_path((0, 0))),
                                                            str(project.labels.tif_path((0, 0))),
                                                            str(project.labels.unsure_path((0, 0)))}
                if np.array_equal(on_disk, good):
                    row["previous_kept"] += 1
                else:
                    row["broken"] += 1
            elif not np.array_equal(on_disk, new):
                row["broken"] += 1
            if free == "ro":
                harness.remount(mount, "rw")
            elif filler is not None:
                filler.unlink()
            row["saved_after_freeing"] += session.save().ok and np.array_equal(
                project.labels.read_values((0, 0)), new)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=370)
    parser.add_argument("--saves", type=int, default=120, help="saves per writer in the two-writer rows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        kills = harness.kill_matrix(Path(folder) / "kills", args.kills, seed=args.seed)
        print(f"kill -9: {kills} ({time.perf_counter() - start:.0f} s)", flush=True)
        same = harness.hammer(Path(folder) / "same", [(0, 0), (0, 0)], args.saves)
        print(f"two writers, same tile: {same}", flush=True)
        different = harness.hammer(Path(folder) / "different", [(0, 0), (1, 1)], args.saves)
        print(f"two writers, different tiles: {different}", flush=True)
        from ercnn_napari.core import labels as labels_module

        compare, lock = labels_module.LabelStore._compare, labels_module.LabelStore.lock
        labels_module.LabelStore._compare = lambda self, tile, expect: None
        labels_module.LabelStore.lock = lambda self, tile, timeout=0: contextlib.nullcontext()
        try:
            unlocked = harness.hammer(Path(folder) / "unlocked", [(0, 0), (0, 0)], args.saves)
        finally:
            labels_module.LabelStore._compare, labels_module.LabelStore.lock = compare, lock
        print(f"reference, same tile without lock and compare: {unlocked}", flush=True)
    disk = disk_rows()
    if disk is None:
        print(f"full disk / read-only: skipped ({harness.can_mount()})")
        disk_text = "disk=skipped"
    else:
        print(f"full disk at {FREE_SIZES} bytes free + read-only: {disk}")
        disk_text = (f"disk_saves={disk['saves']} disk_failed={disk['failed']} disk_named={disk['named']} "
                     f"disk_previous_kept={disk['previous_kept']} disk_broken={disk['broken']}")
    print(f"kills={kills['kills']} corrupt={kills['corrupt']} lost={kills['lost']} "
          f"leftovers={kills['leftovers']} temps={kills['temps_after_kills']} split={kills['split']} "
          f"healed={kills['healed']} same_tile_saves={same['saves']} same_tile_conflicts={same['conflicts']} "
          f"same_tile_lost={same['lost']} lost_unlocked={unlocked['lost']} "
          f"different_tiles_saves={different['saves']} different_tiles_conflicts={different['conflicts']} "
          f"different_tiles_lost={different['lost']} {disk_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
