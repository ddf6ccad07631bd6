"""The resumable intermediate store: every acquisition warped onto the project grid, block by block.

Stacking needs, for one tile, every acquisition in time order; warping needs, for one acquisition,
its whole footprint. Doing both at once would hold the AoI (or the time series) in memory. So
ingest runs in two passes through this store (``observations/.ingest/``):

1. per acquisition, warp it block by block (``BLOCK_TILES`` x ``BLOCK_TILES`` tiles at a time) and
   save each block that has a valid pixel as ``scenes/<id>/<by>_<bx>.npy`` (float32 [h, w, C],
   network units, NaN = not valid). The scene folder is built under a temporary name and renamed
   when complete, with ``meta.json`` inside, so an interrupted run leaves no half scene and a
   re-run skips finished ones;
2. per tile, read its 32 x 32 window of every scene (memory-mapped: only those pages are read).

Memory of either pass depends on the block and tile size, not on the AoI or the number of
acquisitions. Blocks with no valid pixel are not written, which is also how sparse swaths stay
cheap on disk.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import timezone
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from ercnn_napari.core.atomic import atomic_write_text
from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.tiles import TileId
from ercnn_napari.ingest.scene import Scene, SceneInfo, TargetGrid
from ercnn_napari.ingest.stacking import STREAM_CHANNELS

STORE_DIR = ".ingest"
SCENES_DIR = "scenes"
META_FILE = "meta.json"
#: Marker of an acquisition found empty on this grid (so a re-run neither warps nor reports it again).
EMPTY_SUFFIX = ".empty.json"
#: Tiles per side of a warping block (8 x 32 = 256 pixels: ~3.4 MB of S2 float32 per block).
BLOCK_TILES = 8


def scene_id(info: SceneInfo) -> str:
    """Stable folder name of an acquisition: its stream and second (unique after the duplicate check)."""
    return f"{info.stream}_{info.time.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%S')}"


def info_to_dict(info: SceneInfo) -> dict[str, Any]:
    data = asdict(info)
    data["time"] = info.time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    data["bands"] = list(info.bands)
    data["stream"] = info.stream
    data["epoch_seconds"] = info.epoch_seconds
    return data


@dataclass(frozen=True)
class Block:
    by: int
    bx: int
    row0: int      #: first pixel row in the grid
    col0: int
    height: int
    width: int


class SceneStore:
    """``<observations>/.ingest/scenes``: finished scenes, each a folder of block arrays."""

    def __init__(self, observations_dir: Path, grid: TileGrid, block_tiles: int = BLOCK_TILES) -> None:
        self.root = Path(observations_dir) / STORE_DIR
        self.scenes_dir = self.root / SCENES_DIR
        self.grid = grid
        self.block_tiles = block_tiles

    # ----------------------------------------------------------------- geometry
    def blocks(self) -> list[Block]:
        height, width = self.grid.shape_pixels
        side = self.block_tiles * self.grid.tile_size
        return [Block(r // side, c // side, r, c, min(side, height - r), min(side, width - c))
                for r in range(0, height, side) for c in range(0, width, side)]

    def block_grid(self, block: Block) -> TargetGrid:
        g = self.grid
        transform = g.transform @ Affine.translation(block.col0, block.row0)
        return TargetGrid(g.crs, transform, block.height, block.width)

    # ----------------------------------------------------------------- scenes
    def meta(self, sid: str) -> dict[str, Any] | None:
        path = self.scenes_dir / sid / META_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def empty_source(self, sid: str) -> str | None:
        """The source of an acquisition found to have no valid pixel on the grid, if it was."""
        try:
            return json.loads((self.scenes_dir / f".{sid}{EMPTY_SUFFIX}").read_text(encoding="utf-8"))["source"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remove_stale_temporaries(self) -> None:
        """Scene folders of a run that was killed mid-write (never read; safe to delete when no run is active)."""
        if self.scenes_dir.is_dir():
            for path in self.scenes_dir.glob(".*.tmp*"):
                shutil.rmtree(path, ignore_errors=True)

    def finished(self) -> list[dict[str, Any]]:
        """Metadata of every finished scene, sorted by time then stream."""
        if not self.scenes_dir.is_dir():
            return []
        metas = [m for d in self.scenes_dir.iterdir() if not d.name.startswith(".") and (m := self.meta(d.name))]
        return sorted(metas, key=lambda m: (m["epoch_seconds"], m["stream"]))

    def write_scene(self, scene: Scene, origin: str = "") -> dict[str, Any]:
        """Warp one acquisition into the store. Returns {"id", "status": ok|empty|error, "message"?}.

        Runs in a worker: errors come back as values (one sentence naming file and row), never as
        exceptions, so one bad file does not stop the others.
        """
        sid = scene_id(scene.info)
        final = self.scenes_dir / sid
        tmp = self.scenes_dir / f".{sid}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            valid_pixels = 0
            for block in self.blocks():
                values, valid = scene.read(self.block_grid(block))
                if not valid.any():
                    continue
                valid_pixels += int(valid.sum())
                array = np.where(valid[..., None], values, np.float32(np.nan)).astype(np.float32)
                np.save(tmp / f"{block.by}_{block.bx}.npy", array)
            if valid_pixels == 0:
                atomic_write_text(self.scenes_dir / f".{sid}{EMPTY_SUFFIX}", json.dumps({"source": scene.info.source}))
                return {"id": sid, "status": "empty", "source": scene.info.source,
                        "message": "no valid pixel on the project grid (all no-data, masked or outside the AoI); "
                                   "acquisition dropped as the authors dropped them"}
            meta = {**info_to_dict(scene.info), "id": sid, "origin": origin or scene.info.source,
                    "valid_pixels": valid_pixels}
            atomic_write_text(tmp / META_FILE, json.dumps(meta, indent=1))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            return {"id": sid, "status": "ok", "source": scene.info.source}
        except ErcnnError as exc:
            return {"id": sid, "status": "error", "source": scene.info.source, "message": str(exc)}
        except OSError as exc:   # a file vanished, a disk or network read failed: this scene only
            return {"id": sid, "status": "error", "source": scene.info.source,
                    "message": f"{scene.info.source}: cannot be read ({exc})"}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def read_tile(self, sid: str, stream: str, tile: TileId) -> tuple[np.ndarray, np.ndarray]:
        """A tile's window of one finished scene: (float32 [32, 32, C], valid bool [32, 32])."""
        ts = self.grid.tile_size
        y, x = tile
        by, bx = divmod(y, self.block_tiles), divmod(x, self.block_tiles)
        path = self.scenes_dir / sid / f"{by[0]}_{bx[0]}.npy"
        if not path.is_file():
            return np.zeros((ts, ts, STREAM_CHANNELS[stream]), np.float32), np.zeros((ts, ts), bool)
        block = np.load(path, mmap_mode="r")
        values = np.array(block[by[1] * ts:(by[1] + 1) * ts, bx[1] * ts:(bx[1] + 1) * ts])
        valid = ~np.isnan(values[..., 0])
        values[~valid] = 0.0
        return values, valid
