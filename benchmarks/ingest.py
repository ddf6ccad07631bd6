"""Ingest speed and peak memory for two AoI sizes, one with 4x the area of the other.

Ingest streams acquisition by acquisition (warping, in blocks of ``BLOCK_TILES`` tiles) and tile
by tile (stacking), so its peak memory should not depend on the AoI's area: the goal is a memory
ratio (large/small) of about 1. Each size runs in a fresh child process (``--workers 1``: every
byte is in that process) that reports its peak resident memory (``VmHWM``) after the imports
and after the ingest, so the increment ingest itself needs is visible too. The acquisitions are
synthetic GeoTIFFs like the ones analysts bring: S2 L1C DN (13 bands, uint16, with a cloud mask
file), S1 in dB (float32), each file a little larger than the AoI.

    python benchmarks/ingest.py [--tiles 8] [--acquisitions 12] [--huge]

``--tiles N``: the small AoI is N x N tiles, the large one 2N x 2N (``--huge``: also 4N x 4N).
Last line: key=value pairs.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CRS = "EPSG:32631"
ORIGIN = (682000.0, 5612000.0)
S2 = "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B10,B11,B12"
CHILD = r"""
import json, sys, time
from ercnn_napari.core.project import Project
from ercnn_napari.ingest.pipeline import ingest
def hwm():  # VmHWM: this process's peak RSS in KiB (unlike ru_maxrss, not inherited from the parent)
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
base = hwm()
start = time.perf_counter()
report = ingest(Project.open(sys.argv[1]), [sys.argv[2]], workers=1)
seconds = time.perf_counter() - start
peak = hwm()
print(json.dumps({"base_kib": base, "peak_kib": peak, "seconds": seconds, "warped": report.warped,
                  "tiles": report.tiles_stacked, "problems": report.problems}))
"""


def make_inputs(root: Path, tiles: int, acquisitions: int, rng: np.random.Generator) -> tuple[Path, Path]:
    """A project of tiles x tiles (via ``ercnn-napari new``) and a folder of acquisitions with a manifest."""
    import rasterio
    from affine import Affine

    from ercnn_napari.cli.main import main

    side = tiles * 32 + 8                      # files reach 4 pixels beyond the AoI on every side
    transform = Affine(10, 0, ORIGIN[0] - 40, 0, -10, ORIGIN[1] + 40)
    left, top = ORIGIN
    right, bottom = left + tiles * 320, top - tiles * 320
    aoi = root / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "Polygon", "crs": {"type": "name", "properties": {"name": CRS}},
                               "coordinates": [[[left, top], [right, top], [right, bottom], [left, bottom], [left, top]]]}))
    project = root / "project"
    assert main(["new", str(project), "--aoi", str(aoi), "--start", "2020-01-01", "--end", "2020-12-31"]) == 0
    folder = root / "acquisitions"
    folder.mkdir()
    rows = []

    def write(name: str, data: np.ndarray) -> None:
        with rasterio.open(folder / name, "w", driver="GTiff", width=side, height=side, count=data.shape[0],
                           dtype=data.dtype, crs=CRS, transform=transform, tiled=True) as dst:
            dst.write(data)

    for k in range(acquisitions):
        day = 1 + 3 * k
        kind = k % 3
        name = f"acq_{k:03d}.tif"
        if kind == 2:
            write(name, rng.integers(500, 4000, (13, side, side)).astype(np.uint16))
            write(f"acq_{k:03d}_mask.tif", (rng.uniform(size=(1, side, side)) > 0.3).astype(np.uint8))
            rows.append([name, f"2020-01-{day:02d}T10:47:00Z" if day <= 31 else f"2020-02-{day - 31:02d}T10:47:00Z",
                         "S2", "", "S2_L1C", "dn", S2, f"acq_{k:03d}_mask.tif"])
        else:
            write(name, rng.normal(-12, 3, (2, side, side)).astype(np.float32))
            orbit = "ascending" if kind == 0 else "descending"
            stamp = f"2020-01-{day:02d}" if day <= 31 else f"2020-02-{day - 31:02d}"
            rows.append([name, f"{stamp}T{'17:24' if kind == 0 else '05:50'}:00Z", "S1", orbit,
                         "S1_GRD_GAMMA0_ELLIPSOID", "db", "VV,VH", ""])
    with open(folder / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "time", "sensor", "orbit", "product", "units", "bands", "mask"])
        writer.writerows(rows)
    return project, folder


def measure(project: Path, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(project), str(folder)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=8, help="small AoI side in tiles (large: twice)")
    parser.add_argument("--acquisitions", type=int, default=12, help="acquisitions (a third each S1 asc/desc, S2)")
    parser.add_argument("--huge", action="store_true", help="also a third AoI of 16x the small one's area (slow)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    results = {}
    with tempfile.TemporaryDirectory(prefix="ercnn-ingest-bench-") as tmp:
        sizes = [("small", args.tiles), ("large", 2 * args.tiles)] + ([("huge", 4 * args.tiles)] if args.huge else [])
        for label, tiles in sizes:
            root = Path(tmp) / label
            root.mkdir()
            project, folder = make_inputs(root, tiles, args.acquisitions, rng)
            started = time.perf_counter()
            results[label] = {**measure(project, folder), "tiles_side": tiles, "wall": time.perf_counter() - started}
    for label, r in results.items():
        area = (r["tiles_side"] * 0.32) ** 2
        print(f"{label}: {r['tiles_side']} x {r['tiles_side']} tiles ({area:.2f} km²), {r['warped']} acquisitions: "
              f"{r['warped'] / r['seconds']:.2f} acquisitions/s ({r['seconds']:.1f} s), peak RSS "
              f"{r['peak_kib'] / 1024:.0f} MiB ({(r['peak_kib'] - r['base_kib']) / 1024:.0f} MiB above the imports)")
    small, large = results["small"], results["large"]
    ratio = large["peak_kib"] / small["peak_kib"]
    increment = max(large["peak_kib"] - large["base_kib"], 1) / max(small["peak_kib"] - small["base_kib"], 1)
    print(f"area ratio 4.0: peak memory ratio large/small = {ratio:.2f} (above imports: {increment:.2f}); "
          f"time ratio = {large['seconds'] / small['seconds']:.2f}")
    if "huge" in results:
        print(f"area ratio 16.0: peak memory ratio huge/small = {results['huge']['peak_kib'] / small['peak_kib']:.2f}")
    print(f"small_acq_per_s={small['warped'] / small['seconds']:.3f} large_acq_per_s={large['warped'] / large['seconds']:.3f} "
          f"small_peak_mib={small['peak_kib'] / 1024:.1f} large_peak_mib={large['peak_kib'] / 1024:.1f} "
          f"memory_ratio={ratio:.3f} memory_increment_ratio={increment:.3f} "
          f"time_ratio={large['seconds'] / small['seconds']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
