"""Fault matrix of the label store: kill -9 mid-save, two writers, full disk, read-only folder, silent edits.

Each row is a promise of the product ("an analyst's work is never lost") checked against real
faults (see tests/label_fault_harness.py). The full kill count runs in benchmarks/label_faults.py.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import label_fault_harness as harness  # noqa: E402

from ercnn_napari.core import labels as labels_module  # noqa: E402
from ercnn_napari.core.errors import LabelError  # noqa: E402
from ercnn_napari.core.labels import LabelConflictError  # noqa: E402
from ercnn_napari.core.project import Project  # noqa: E402
from ercnn_napari.napari_plugin.label_session import LabelSession  # noqa: E402

MOUNT_PROBLEM = harness.can_mount()
needs_tmpfs = pytest.mark.skipif(MOUNT_PROBLEM is not None, reason=f"no real tmpfs: {MOUNT_PROBLEM}")


def paint(session: LabelSession, tile, values) -> None:
    rows, cols = session.grid.tile_slices(tile)
    session.mosaic[rows, cols] = values


# ------------------------------------------------------------------------------- kill -9
def test_kill9_mid_save_loses_nothing_and_reopening_removes_the_temp_files(tmp_path):
    result = harness.kill_matrix(tmp_path / "project", kills=24, seed=1)
    assert result["kills"] == 24
    assert result["corrupt"] == 0, result
    assert result["lost"] == 0, result
    assert result["healed"] == result["split"], "every npy/GeoTIFF split is detected and healed"
    assert result["removed_on_open"] == result["temps_after_kills"] and result["leftovers"] == 0, result


# ------------------------------------------------------------------------------- two writers
def test_two_processes_on_one_tile_never_overwrite_unseen_work(tmp_path):
    result = harness.hammer(tmp_path / "project", [(0, 0), (0, 0)], saves=30)
    assert result["exit_failures"] == 0 and result["errors"] == 0, result
    assert result["saves"] + result["conflicts"] == 60, result
    assert result["lost"] == 0, result


def test_two_processes_on_different_tiles_both_save_everything(tmp_path):
    result = harness.hammer(tmp_path / "project", [(0, 0), (1, 1)], saves=30)
    assert result == {"saves": 60, "conflicts": 0, "errors": 0, "lost": 0, "exit_failures": 0}
    project = Project.open(tmp_path / "project")
    assert np.array_equal(project.labels.read_values((0, 0)), harness.pattern(1, 29))
    assert np.array_equal(project.labels.read_values((1, 1)), harness.pattern(2, 29))


def test_the_two_writer_check_catches_lost_updates_without_compare_and_swap(tmp_path, monkeypatch):
    """The check above can fail: with the lock and the compare switched off, saves are lost."""
    monkeypatch.setattr(labels_module.LabelStore, "_compare", lambda self, tile, expect: None)
    monkeypatch.setattr(labels_module.LabelStore, "lock", lambda self, tile, timeout=0: contextlib.nullcontext())
    result = harness.hammer(tmp_path / "project", [(0, 0), (0, 0)], saves=30)
    assert result["lost"] > 0, result


def test_the_loser_of_a_race_gets_a_conflict_naming_the_changed_file(tmp_path):
    project = harness.make_project(tmp_path / "project")
    project.labels.write((0, 0), harness.pattern(0, 0))
    mine, theirs = LabelSession(project), LabelSession(Project.open(project.root))
    paint(theirs, (0, 0), harness.pattern(2, 0))
    assert theirs.save().saved == [(0, 0)]
    paint(mine, (0, 0), harness.pattern(1, 0))
    report = mine.save()
    assert report.conflicts == [(0, 0)] and not report.saved
    assert str(project.labels.npy_path((0, 0))) in mine.conflicts[(0, 0)]
    assert np.array_equal(project.labels.read_values((0, 0)), harness.pattern(2, 0)), "the winner's label stays"
    assert (0, 0) in mine.changed_tiles(), "the loser's edit is kept in the viewer, unsaved"
    with pytest.raises(LabelConflictError):
        project.labels.write((0, 0), harness.pattern(3, 0), expect=mine.signatures[(0, 0)])


# ------------------------------------------------------------------------------- silent outside edits
def _same_size_same_mtime_edit(path: Path, write) -> None:  # noqa: ANN001
    stat = path.stat()
    write()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


def test_same_size_same_mtime_edit_of_the_npy_is_detected_and_named(tmp_path):
    project = harness.make_project(tmp_path / "project")
    project.labels.write((0, 1), harness.pattern(0, 0))
    session = LabelSession(project)
    npy = project.labels.npy_path((0, 1))
    _same_size_same_mtime_edit(npy, lambda: np.save(npy, np.ones((32, 32), np.uint8)))
    assert session.edited_outside() == [(0, 1)]
    paint(session, (0, 1), harness.pattern(1, 0))
    assert session.save().conflicts == [(0, 1)]
    assert str(npy) in session.conflicts[(0, 1)] and ".tif" not in session.conflicts[(0, 1)]
    assert np.load(npy).sum() == 32 * 32, "the outside edit was not overwritten"


def test_conflict_names_the_geotiff_when_the_geotiff_changed(tmp_path):
    project = harness.make_project(tmp_path / "project")
    project.labels.write((1, 0), harness.pattern(0, 0))
    session = LabelSession(project)
    tif = project.labels.tif_path((1, 0))

    def flip_last_byte() -> None:
        data = bytearray(tif.read_bytes())
        data[-1] ^= 1
        tif.write_bytes(bytes(data))

    _same_size_same_mtime_edit(tif, flip_last_byte)
    paint(session, (1, 0), harness.pattern(1, 0))
    assert session.save().conflicts == [(1, 0)]
    assert str(tif) in session.conflicts[(1, 0)]


# ------------------------------------------------------------------------------- full disk, read-only
@needs_tmpfs
@pytest.mark.parametrize("free", [0, 4096, 8192, 16384, 65536])
def test_full_disk_keeps_the_previous_label_and_names_the_file(free):
    with harness.tmpfs("512k") as mount:
        project = harness.make_project(mount / "project")
        good, new = harness.pattern(1, 0), harness.pattern(1, 1)
        project.labels.write((0, 0), good)
        session = LabelSession(Project.open(project.root))
        paint(session, (0, 0), new)
        paint(session, (1, 1), harness.pattern(1, 2))
        filler = harness.fill_disk(mount, free)
        report = session.save()
        on_disk = project.labels.read_values((0, 0))
        label_files = {str(project.labels.npy_path(t)) for t in ((0, 0), (1, 1))} | {
            str(project.labels.tif_path(t)) for t in ((0, 0), (1, 1))} | {
            str(project.labels.unsure_path(t)) for t in ((0, 0), (1, 1))}
        if report.errors:
            assert sorted(report.errors) == [(0, 0), (1, 1)] or len(report.saved) + len(report.errors) == 2
            for message in report.errors.values():
                assert message.split(": ")[0] in label_files, f"names a label file, not a temp file: {message}"
                assert "disk is full" in message
            assert set(report.errors) <= set(session.changed_tiles()), "failed tiles stay unsaved and visible"
        if (0, 0) in report.errors:
            assert np.array_equal(on_disk, good), "the previous label survives a full disk"
        else:
            assert np.array_equal(on_disk, new)
        assert harness.temp_files(project) == []
        if free == 0:
            assert report.errors, "nothing can be saved on a full disk"
        filler.unlink()
        assert session.save().ok and not session.dirty
        assert np.array_equal(project.labels.read_values((0, 0)), new)


@needs_tmpfs
def test_read_only_folder_every_tile_tried_each_named_then_saved_when_writable():
    with harness.tmpfs("1m") as mount:
        project = harness.make_project(mount / "project")
        project.labels.write((0, 0), harness.pattern(1, 0))
        session = LabelSession(Project.open(project.root))
        paint(session, (0, 0), harness.pattern(1, 1))
        paint(session, (1, 0), harness.pattern(1, 2))
        harness.remount(mount, "ro")
        try:
            reopened = Project.open(project.root)  # opening (and its temp cleanup) works read-only
            assert reopened.labels.tiles() == [(0, 0)]
            report = session.save()
            assert sorted(report.errors) == [(0, 0), (1, 0)] and not report.saved
            for message in report.errors.values():
                assert "read-only" in message
                assert message.startswith(str(project.root)) and ".tmp" not in message
            assert session.dirty
        finally:
            harness.remount(mount, "rw")
        assert session.save().ok and not session.dirty
        assert np.array_equal(project.labels.read_values((1, 0)), harness.pattern(1, 2))


# ------------------------------------------------------------------------------- temp files, grid, lists
def test_only_our_stale_temp_files_are_removed_on_open(tmp_path):
    project = harness.make_project(tmp_path / "project")
    project.labels.write((0, 0), harness.pattern(0, 0))
    folder = project.labels.npy_path((0, 0)).parent
    old = time.time() - 3600
    ours_stale = folder / ".Liege_0_0.ab12cd34.tmp.npy"
    ours_fresh = folder / ".Liege_0_0.zz99yy88.tmp.npy"
    not_ours = [folder / ".Liege_0_0.npy.swp", folder / "notes.tmp", folder / ".Liege_0_0.short.tmp.npy"]
    for path in [ours_stale, ours_fresh, *not_ours]:
        path.write_bytes(b"x")
    a_folder = folder / ".x.abcdefgh.tmp.npy"
    a_folder.mkdir()
    for path in [ours_stale, *not_ours, a_folder]:
        os.utime(path, (old, old))
    reopened = Project.open(project.root)
    assert reopened.removed_temp_files == [ours_stale]
    assert not ours_stale.exists() and ours_fresh.exists() and a_folder.is_dir()
    assert all(p.exists() for p in not_ours)
    assert np.array_equal(reopened.labels.read_values((0, 0)), harness.pattern(0, 0))


def test_split_list_naming_a_tile_outside_the_grid_is_reported_with_file_and_line(tmp_path):
    from ercnn_napari.cli.cmd_info import summarize
    from ercnn_napari.core.errors import ProjectError

    project = harness.make_project(tmp_path / "project")
    folder = project.training_dir / "V1"
    folder.mkdir(parents=True)
    (folder / "tiles_train_cv1.txt").write_text("0:0\n# a comment\n0:1\n")
    (folder / "tiles_val_cv1.txt").write_text("1:0\n\n7:9\n")
    with pytest.raises(ProjectError) as raised:
        project.split("V1")
    assert raised.value.path == str(folder / "tiles_val_cv1.txt")
    assert "line 3" in raised.value.message and "7:9" in raised.value.message
    summary = summarize(Project.open(project.root))
    assert "line 3" in summary["splits"]["V1"]["error"]


def test_grid_size_has_an_upper_bound_with_a_clear_message():
    from ercnn_napari.core.errors import ProjectError
    from ercnn_napari.core.geo import MAX_GRID_PIXELS, TileGrid

    with pytest.raises(ProjectError, match="split the AoI into several projects"):
        TileGrid("EPSG:32631", 0.0, 0.0, 10.0, 10.0, 20000, 20000)
    side = int((MAX_GRID_PIXELS // 1024) ** 0.5)
    TileGrid("EPSG:32631", 0.0, 0.0, 10.0, 10.0, side, side)  # the bound itself is allowed


def test_a_folder_named_like_observations_is_not_a_tile(tmp_path):
    project = harness.make_project(tmp_path / "project")
    observations = project.root / "observations"
    (observations / "0_0.tfrecords").mkdir(parents=True)
    (observations / "1_1.tfrecords").write_bytes(b"\0" * 16)
    project.set_observations({"kind": "stacked", "path": "observations"})
    assert Project.open(project.root).tiles_with_observations() == [(1, 1)]


def test_io_errors_never_escape_save_as_raw_oserror(tmp_path, monkeypatch):
    """Any OSError inside a save becomes a LabelError naming the label file; other tiles still save."""
    project = harness.make_project(tmp_path / "project")
    session = LabelSession(project)
    paint(session, (0, 0), harness.pattern(1, 0))
    paint(session, (1, 1), harness.pattern(1, 1))
    real = labels_module.write_label_geotiff

    def failing(path, label, grid, tile, unsure=None):  # noqa: ANN001
        if tile == (0, 0):
            raise OSError(5, "Input/output error", str(path))
        return real(path, label, grid, tile, unsure=unsure)

    monkeypatch.setattr(labels_module, "write_label_geotiff", failing)
    report = session.save()
    assert report.saved == [(1, 1)] and list(report.errors) == [(0, 0)]
    assert report.errors[(0, 0)].startswith(str(project.labels.tif_path((0, 0))) + ": ")
    assert "Input/output error" in report.errors[(0, 0)]
    with pytest.raises(LabelError):
        project.labels.write((0, 0), harness.pattern(1, 0))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions; the read-only tmpfs test covers root")
def test_read_only_folder_by_permissions(tmp_path):
    project = harness.make_project(tmp_path / "project")
    project.labels.write((0, 0), harness.pattern(1, 0))
    session = LabelSession(Project.open(project.root))
    paint(session, (0, 0), harness.pattern(1, 1))
    paint(session, (1, 0), harness.pattern(1, 2))
    folders = [project.root, *project.root.rglob("*")]
    folders = [p for p in folders if p.is_dir()]
    for folder in folders:
        folder.chmod(0o555)
    try:
        report = session.save()
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert sorted(report.errors) == [(0, 0), (1, 0)] and not report.saved
    assert all("read-only" in message and ".tmp" not in message for message in report.errors.values())
    assert np.array_equal(project.labels.read_values((0, 0)), harness.pattern(1, 0))
    assert session.save().ok
