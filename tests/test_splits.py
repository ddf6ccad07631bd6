"""Split lists: the authors' layout, disjoint generation, clear errors for missing or broken lists."""

from __future__ import annotations

import pytest

from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.project import Project
from ercnn_napari.core.splits import Split, generate_splits, read_split, read_splits, write_splits
from ercnn_napari.core.tiles import format_tile_list

ALL_TILES = [(y, x) for y in range(12) for x in range(16)]  # 192 tiles, as the authors had


def test_generation_reproduces_the_authors_structure():
    not_used = ALL_TILES[:8]
    splits = generate_splits(ALL_TILES, n_versions=3, val_fraction=32 / 184, test_fraction=32 / 184,
                             seed=7, not_used=not_used)
    assert list(splits) == ["V1", "V2", "V3"]
    test = set(splits["V1"].test)
    assert len(test) == 32
    vals = [set(s.val) for s in splits.values()]
    for split, val in zip(splits.values(), vals, strict=True):
        assert len(split.train) == 120 and len(val) == 32
        assert set(split.test) == test                          # one common test set
        assert not (set(split.train) & val) and not (set(split.train) & test) and not (val & test)
        assert set(split.train) | val == set(ALL_TILES) - test - set(not_used)
        assert split.not_used == sorted(not_used)
    assert not (vals[0] & vals[1]) and not (vals[0] & vals[2]) and not (vals[1] & vals[2])
    always_train = set.intersection(*(set(s.train) for s in splits.values()))
    assert len(always_train) == 152 - 96                       # 56, the authors' figure
    assert generate_splits(ALL_TILES, seed=7, not_used=not_used) == generate_splits(
        list(reversed(ALL_TILES)), seed=7, not_used=not_used)  # depends on the set and seed only
    assert generate_splits(ALL_TILES, seed=7)["V1"].val != generate_splits(ALL_TILES, seed=8)["V1"].val


def test_generation_refuses_too_few_tiles():
    with pytest.raises(ProjectError, match="too few"):
        generate_splits(ALL_TILES[:4], n_versions=3, val_fraction=0.25, test_fraction=0.25)
    with pytest.raises(ProjectError, match="fractions"):
        generate_splits(ALL_TILES, val_fraction=0.0)


def test_write_read_round_trip_with_the_authors_file_names(tmp_path):
    splits = generate_splits(ALL_TILES, seed=1, not_used=ALL_TILES[:3])
    write_splits(tmp_path, splits)
    assert (tmp_path / "V2" / "tiles_train_cv2.txt").read_text().splitlines()[0].count(":") == 1
    assert (tmp_path / "V3" / "tiles_val_cv3.txt").is_file()
    assert (tmp_path / "V1" / "tiles_testing.txt").is_file() and (tmp_path / "V1" / "tiles_not_used.txt").is_file()
    assert read_splits(tmp_path) == splits


def test_rewriting_a_split_with_empty_test_and_not_used_lists_reads_back_empty(tmp_path):
    # a narrowed split (no test tile left) once kept the old tiles_testing.txt: the split read back
    # named tiles the writer had dropped, and training stopped on a test tile without observations
    splits = generate_splits(ALL_TILES, seed=1, not_used=ALL_TILES[:3])
    write_splits(tmp_path, splits)
    v1 = splits["V1"]
    assert v1.test and v1.not_used
    narrowed = Split("V1", v1.train[:5], v1.val[:2], [], [])
    write_splits(tmp_path, {"V1": narrowed})
    assert read_split(tmp_path, "V1") == narrowed
    # and an empty own copy is not mistaken for a missing one (no fall-back to V3's lists)
    assert read_split(tmp_path, "V3").test == v1.test


def authors_layout(tmp_path):
    """V1..V3 with train/val lists and the test/not-used lists in V3 only, as published."""
    tiles = ALL_TILES[:24]
    test, not_used, pool = tiles[:4], tiles[4:6], tiles[6:]
    for n in (1, 2, 3):
        val = pool[(n - 1) * 4:n * 4]
        train = [t for t in pool if t not in val]
        folder = tmp_path / f"V{n}"
        folder.mkdir(parents=True)
        (folder / f"tiles_train_cv{n}.txt").write_text(format_tile_list(train))
        (folder / f"tiles_val_cv{n}.txt").write_text(format_tile_list(val))
    (tmp_path / "V3" / "tiles_testing.txt").write_text(format_tile_list(test))
    (tmp_path / "V3" / "tiles_not_used.txt").write_text(format_tile_list(not_used))
    return test, not_used


def test_v3_testing_list_is_the_common_test_set(tmp_path):
    test, not_used = authors_layout(tmp_path)
    splits = read_splits(tmp_path)
    assert list(splits) == ["V1", "V2", "V3"]
    for split in splits.values():
        assert split.test == test and split.not_used == not_used
        assert len(split.train) == 14 and len(split.val) == 4
    assert splits["V2"].tiles("val") == splits["V2"].val
    with pytest.raises(ProjectError, match="unknown tile set"):
        splits["V2"].tiles("holdout")


def test_missing_or_broken_lists_name_the_file(tmp_path):
    authors_layout(tmp_path)
    (tmp_path / "V2" / "tiles_val_cv2.txt").unlink()
    with pytest.raises(ProjectError, match="missing") as info:
        read_split(tmp_path, "V2")
    assert info.value.path.endswith("V2/tiles_val_cv2.txt")
    with pytest.raises(ProjectError, match="missing") as info:
        read_split(tmp_path, "V9")
    assert info.value.path.endswith("V9/tiles_train_cv9.txt")
    with pytest.raises(ProjectError, match="V<n>"):
        read_split(tmp_path, "fold1")
    (tmp_path / "V1" / "tiles_train_cv1.txt").write_text("0:6\n0:7\nseven:8\n")
    with pytest.raises(ProjectError, match="line 3") as info:
        read_split(tmp_path, "V1")
    assert info.value.path.endswith("tiles_train_cv1.txt")


def test_overlapping_or_duplicated_lists_are_refused(tmp_path):
    authors_layout(tmp_path)
    (tmp_path / "V1" / "tiles_train_cv1.txt").write_text("0:6\n0:7\n")
    (tmp_path / "V1" / "tiles_val_cv1.txt").write_text("0:7\n0:8\n")
    with pytest.raises(ProjectError, match="share 1 tile.*0:7"):
        read_split(tmp_path, "V1")
    (tmp_path / "V1" / "tiles_val_cv1.txt").write_text("0:9\n0:9\n")
    with pytest.raises(ProjectError, match="0:9 is listed twice"):
        read_split(tmp_path, "V1")
    (tmp_path / "V1" / "tiles_val_cv1.txt").write_text("0:0\n")   # a test tile
    with pytest.raises(ProjectError, match="tiles_testing.txt shares"):
        read_split(tmp_path, "V1")


def test_project_splits_are_checked_against_the_grid(tmp_path):
    grid = TileGrid("EPSG:32631", 680000, 5610000, 10, 10, 4, 4)
    project = Project.create(tmp_path, "Liege", grid)
    assert project.splits() == {}
    with pytest.raises(ProjectError, match="tiles_train_cv1.txt"):
        project.split("V1")
    project.write_splits({"V1": Split("V1", [(0, 0), (1, 1)], [(2, 2)], [(3, 3)])})
    assert project.split("V1").val == [(2, 2)] and project.split_names() == ["V1"]
    with pytest.raises(ProjectError, match="tile 4:0 is outside"):
        project.write_splits({"V2": Split("V2", [(4, 0)], [(0, 1)], [])})
