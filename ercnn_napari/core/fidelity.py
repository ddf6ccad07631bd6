"""What each stream of a project's observations is, and where it differs from what the network saw.

The published ERCNN-DRS weights were trained on Sentinel Hub's S1 IW GRD gamma0 on the ellipsoid
(orthorectified, not terrain-flattened, linear power) and S2 L1C top-of-atmosphere reflectance
0-1 (ercnn_facts §8). Other products are usable for fine-tuning but are a different input
distribution: L2A is surface reflectance without B10, RTC backscatter is terrain-flattened. Ingest
records per stream the products, processing, source units and sources in
``<observations>/fidelity.json``; ``info``, ``train`` and the viewer turn that record into
warnings with :func:`fidelity_warnings`. Pure JSON: the viewer imports this module.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

FIDELITY_FILE = "fidelity.json"

#: What the published weights expect, per stream: product, and a sentence for the warnings.
EXPECTED: dict[str, tuple[str, str]] = {
    "S1_ascending": ("S1_GRD_GAMMA0_ELLIPSOID", "S1 GRD gamma0 on the ellipsoid (not terrain-flattened), linear power"),
    "S1_descending": ("S1_GRD_GAMMA0_ELLIPSOID", "S1 GRD gamma0 on the ellipsoid (not terrain-flattened), linear power"),
    "S2": ("S2_L1C", "S2 L1C top-of-atmosphere reflectance 0-1 with all 13 bands"),
}
#: What a known other product is, said in the warning.
KNOWN_DIFFERENCES: dict[str, str] = {
    "S2_L2A": "L2A is bottom-of-atmosphere (surface) reflectance and has no B10 (filled with 0)",
    "S1_RTC": "RTC backscatter is terrain-flattened gamma0",
    "S1_GRD_SIGMA0": "sigma0 is not gamma0 (brighter at steep incidence)",
}
#: Units the network saw, by stream (the record keeps the source units; ingest converts them).
NETWORK_UNITS = {"S1_ascending": "linear power", "S1_descending": "linear power", "S2": "reflectance 0-1"}


def build_record(scenes: list[dict[str, Any]]) -> dict[str, Any]:
    """The fidelity record of a project from the metadata of its ingested acquisitions.

    ``scenes`` are dicts with ``stream``, ``product``, ``units``, ``processing``, ``source`` (a file
    or URL) and optionally ``origin`` (the folder or catalogue it came through).
    """
    streams: dict[str, Any] = {}
    for name in EXPECTED:
        mine = [s for s in scenes if s["stream"] == name]
        processing: dict[str, list[str]] = {}
        for scene in mine:
            for key, value in (scene.get("processing") or {}).items():
                processing.setdefault(key, [])
                if str(value) not in processing[key]:
                    processing[key].append(str(value))
        streams[name] = {
            "acquisitions": len(mine),
            "products": dict(Counter(s["product"] for s in mine)),
            "source_units": dict(Counter(s["units"] for s in mine)),
            "converted_to": NETWORK_UNITS[name],
            "processing": processing,
            "sources": sorted({s.get("origin") or s["source"] for s in mine}),
        }
    return {"streams": streams, "expected": {k: v[0] for k, v in EXPECTED.items()}}


def fidelity_warnings(record: dict[str, Any] | None) -> list[str]:
    """One sentence per stream whose products differ from what the published weights expect."""
    if not record:
        return []
    out = []
    for name, (product, sentence) in EXPECTED.items():
        stream = record.get("streams", {}).get(name) or {}
        products = stream.get("products") or {}
        if not products:
            out.append(f"{name}: no acquisitions ingested; the network sees zeros for this stream")
            continue
        other = {p: n for p, n in products.items() if p.upper() != product}
        if other:
            detail = "; ".join(KNOWN_DIFFERENCES.get(p.upper(), p) for p in other)
            listed = ", ".join(f"{p} ({n})" for p, n in other.items())
            out.append(f"{name} holds {listed}, not {product}: {detail}. The published weights saw {sentence}; "
                       "fine-tune before trusting predictions")
    return out


def read_fidelity(observations_dir: Path | None) -> dict[str, Any] | None:
    """The record in ``observations_dir/fidelity.json``, or None (no ingest, or unreadable)."""
    if observations_dir is None:
        return None
    try:
        data = json.loads((Path(observations_dir) / FIDELITY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def project_fidelity_warnings(project: Any) -> list[str]:
    """Warnings for an opened :class:`~ercnn_napari.core.project.Project` (empty when nothing was ingested)."""
    return fidelity_warnings(read_fidelity(project.observations_path()))
