"""Source pixel units -> what the published network saw (ercnn_facts §8).

The network has no input normalisation, so a factor of ten or a logarithm anywhere changes its
output silently. Every source therefore converts through this one module:

* S2 ``dn`` (L1C digital numbers) -> TOA reflectance 0-1. Products of processing baseline 04.00
  and later (acquired from 2022-01-25) carry a radiometric offset of -1000:
  ``(DN - 1000) / 10000``; earlier ones ``DN / 10000`` (a source may state the offset instead). Negative results are clamped to 0, as
  Sentinel Hub's default harmonisation does.
* S2 ``reflectance``: taken as it is (negatives clamped to 0 likewise).
* S1 ``db`` -> linear power ``10 ** (dB / 10)``; ``amplitude`` -> power (square); ``linear`` as is.

Arithmetic is done in float64 and only the result is rounded to float32, so an exact value
written as dB or DN comes back bit-identical (the round-trip tests rely on it).
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

#: First acquisition day of S2 processing baseline 04.00 (radiometric offset of -1000 DN).
BASELINE_04_START = datetime(2022, 1, 25, tzinfo=timezone.utc)
S2_OFFSET_DN = 1000.0
S2_QUANTIFICATION = 10000.0

#: Units a sensor's pixels may come in.
SENSOR_UNITS: dict[str, tuple[str, ...]] = {"S2": ("reflectance", "dn"), "S1": ("linear", "db", "amplitude")}


def s2_dn_offset(time: datetime) -> float:
    """The DN offset of an L1C product acquired at ``time`` (1000 from baseline 04.00 on, else 0)."""
    return S2_OFFSET_DN if time.astimezone(timezone.utc) >= BASELINE_04_START else 0.0


def check_units(sensor: str, units: str) -> str | None:
    """None if ``units`` make sense for ``sensor``, else a sentence saying what would."""
    allowed = SENSOR_UNITS.get(sensor)
    if allowed is None:
        return f"unknown sensor {sensor!r} (expected S1 or S2)"
    if units not in allowed:
        return f"units {units!r} do not apply to {sensor} (expected one of {', '.join(allowed)})"
    return None


def to_network_units(values: np.ndarray, sensor: str, units: str, time: datetime,
                     dn_offset: float | None = None) -> np.ndarray:
    """Convert source values (any float/int dtype, NaN = no data) to float32 network units.

    ``dn_offset`` overrides the date rule for S2 DN: ESA's reprocessed archive (Collection 1,
    baseline 05.xx) carries the offset before 2022 too; the product metadata
    (``RADIO_ADD_OFFSET``) says which applies.
    """
    data = np.asarray(values, dtype=np.float64)
    problem = check_units(sensor, units)
    if problem:
        raise ValueError(problem)
    if sensor == "S2":
        if units == "dn":
            offset = s2_dn_offset(time) if dn_offset is None else float(dn_offset)
            data = (data - offset) / S2_QUANTIFICATION
        return np.maximum(data, 0.0, where=~np.isnan(data), out=data.copy()).astype(np.float32)
    if units == "db":
        data = np.power(10.0, data / 10.0)
    elif units == "amplitude":
        data = data * data
    return data.astype(np.float32)
