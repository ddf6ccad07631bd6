"""How each 1 m land cover looks to Sentinel-2 (L1C reflectance) and Sentinel-1 (backscatter).

End-members are the land covers, with roofs split by material because a red clay tile and a
metal sheet differ more than grass and a field. Values are top-of-atmosphere reflectances (L1C
includes the atmosphere: high blue from path radiance, the B09 water-vapour and B10 cirrus bands
dark) in the typical ranges published for these materials: vegetation with a red edge and a high
NIR plateau, water dark beyond green, soil and built surfaces bright in the SWIR (B11/B12).
Vegetation moves between a dormant and a peak spectrum along a phenology curve whose amplitude was
calibrated against a real Sentinel-2 NDVI series (see ``sample/calibration.py``).
Backscatter values are typical C-band sigma-nought levels in dB per cover; the weather (wetness,
wind) and the season shift them, and speckle is applied per acquisition by the observation code.
The network was trained on Sentinel Hub's default, gamma-nought on the ellipsoid, not sigma-nought:
gamma0 = sigma0 / cos(incidence) (Small 2011, IEEE TGRS 49(8)), so the levels are raised by
``SIGMA0_TO_GAMMA0_DB`` for the middle of the IW swath (incidence 29-46 degrees, about 39 at Liege).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from ercnn_napari.sample.landcover import N_COVERS, Cover, Roof

#: End-member index of a roof material: land covers first, then one per roof material.
N_ENDMEMBERS = N_COVERS + len(Roof) - 1


def endmember_index(cover: np.ndarray, roof: np.ndarray) -> np.ndarray:
    """Per-cell end-member: the cover, or for buildings ``N_COVERS + roof - 1``."""
    index = cover.astype(np.int16)
    is_roof = (cover == Cover.BUILDING) & (roof > 0)
    index[is_roof] = N_COVERS + roof[is_roof].astype(np.int16) - 1
    return index


#                  B01   B02   B03   B04   B05   B06   B07   B08   B8A   B09   B10    B11   B12
_S2 = {
    "water":     [.115, .085, .065, .042, .035, .030, .028, .025, .022, .010, .0015, .010, .007],
    "grass_pk":  [.105, .078, .075, .045, .095, .215, .265, .280, .290, .095, .003, .170, .085],
    "grass_dm":  [.115, .090, .090, .088, .108, .132, .148, .155, .160, .058, .003, .215, .145],
    "crop_pk":   [.105, .077, .078, .040, .100, .240, .300, .320, .330, .105, .003, .180, .085],
    "tree_pk":   [.100, .070, .062, .040, .078, .185, .230, .245, .255, .085, .003, .140, .060],
    "tree_dm":   [.108, .080, .075, .068, .085, .115, .135, .150, .155, .055, .003, .190, .120],
    "bare":      [.125, .105, .115, .135, .155, .170, .180, .195, .205, .080, .004, .290, .240],
    "road":      [.120, .095, .090, .088, .092, .097, .101, .105, .108, .045, .003, .125, .115],
    "paved":     [.150, .135, .140, .145, .150, .155, .160, .165, .168, .070, .004, .200, .185],
    "red_tile":  [.125, .100, .100, .150, .175, .185, .195, .205, .210, .085, .004, .260, .200],
    "slate":     [.110, .080, .075, .072, .075, .078, .080, .083, .085, .035, .002, .090, .080],
    "flat_grey": [.150, .135, .138, .140, .145, .150, .153, .157, .160, .065, .004, .190, .175],
    "metal":     [.210, .200, .205, .210, .215, .220, .222, .225, .226, .095, .005, .230, .200],
    "bitumen":   [.105, .075, .068, .066, .068, .070, .072, .075, .077, .032, .002, .085, .078],
}
#: Thick cloud top (bright and flat across VNIR/SWIR, dark in the absorption bands).
CLOUD_S2 = np.array([.48, .46, .45, .45, .46, .47, .47, .48, .48, .32, .06, .36, .24], np.float32)
#: Aerosol path radiance added per unit haze (strongest in the blue).
HAZE_S2 = np.array([.030, .025, .018, .011, .008, .006, .005, .004, .004, .002, 0, .001, 0], np.float32)

_STATIC_S2 = {
    Cover.WATER: "water", Cover.BARE: "bare", Cover.ROAD: "road", Cover.PAVED: "paved",
    Cover.BUILDING: "flat_grey",
}
_ROOF_S2 = {Roof.RED_TILE: "red_tile", Roof.SLATE: "slate", Roof.FLAT_GREY: "flat_grey",
            Roof.METAL: "metal", Roof.BITUMEN: "bitumen"}

# Sentinel-1 sigma-nought (dB): (VV, VH) base levels per end-member.
_S1_DB = {
    Cover.WATER: (-21.0, -28.0), Cover.GRASS: (-12.5, -20.0), Cover.CROP: (-13.5, -22.0),
    Cover.TREE: (-9.0, -15.0), Cover.BARE: (-12.5, -21.5), Cover.ROAD: (-17.0, -25.0),
    Cover.PAVED: (-13.0, -21.0), Cover.BUILDING: (-1.5, -9.5),
}
#: gamma0 / sigma0 on the ellipsoid at the middle incidence of the IW swath (39 degrees): +1.1 dB.
SIGMA0_TO_GAMMA0_DB = float(-10.0 * np.log10(np.cos(np.radians(39.0))))
_ROOF_S1_OFFSET_DB = {Roof.RED_TILE: 0.0, Roof.SLATE: 0.0, Roof.FLAT_GREY: -1.0, Roof.METAL: 1.5,
                      Roof.BITUMEN: -1.0}


def phenology(seconds: float) -> tuple[float, float]:
    """(deciduous/grass greenness, arable crop greenness), each in [0, 1], for a date.

    Green-up around mid-April and leaf fall around late October (double logistic), the arable
    curve a winter cereal: green from March, harvested in July, bare until the autumn sowing.
    """
    day = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).timetuple().tm_yday
    green = _logistic(day - 105, 11) - _logistic(day - 295, 13)
    crop = _logistic(day - 85, 10) - _logistic(day - 198, 6) + 0.3 * _logistic(day - 315, 12)
    return float(np.clip(green, 0, 1)), float(np.clip(crop, 0, 1))


def _logistic(x: float, width: float) -> float:
    return 1.0 / (1.0 + np.exp(-x / width))


def s2_endmembers(seconds: float, wetness: float) -> np.ndarray:
    """float32 [N_ENDMEMBERS, 13]: reflectance of every end-member on a date.

    ``wetness`` in [0, 1] darkens bare soil (wet soil is darker across the spectrum).
    """
    green, crop = phenology(seconds)
    table = np.zeros((N_ENDMEMBERS, 13), np.float32)
    s = {k: np.array(v, np.float32) for k, v in _S2.items()}
    soil = s["bare"] * (1.0 - 0.18 * wetness)
    for cover, name in _STATIC_S2.items():
        table[cover] = s[name]
    table[Cover.BARE] = soil
    table[Cover.GRASS] = s["grass_dm"] + green * (s["grass_pk"] - s["grass_dm"])
    table[Cover.TREE] = s["tree_dm"] + green * (s["tree_pk"] - s["tree_dm"])
    table[Cover.CROP] = soil + crop * (s["crop_pk"] - soil)
    for roof, name in _ROOF_S2.items():
        table[N_COVERS + roof - 1] = s[name]
    return table


def s1_endmembers(seconds: float, wetness: float, wind: float, ascending: bool) -> np.ndarray:
    """float32 [N_ENDMEMBERS, 2]: linear VV, VH gamma-nought (ellipsoid) of every end-member on a date.

    Vegetation backscatter rises with biomass (VH most), soil with wetness, water with wind; the
    two orbit directions see buildings from opposite sides (a per-pixel orientation term is added
    by the observation code).
    """
    green, crop = phenology(seconds)
    db = np.zeros((N_ENDMEMBERS, 2), np.float32)
    for cover, (vv, vh) in _S1_DB.items():
        db[cover] = (vv, vh)
    db[Cover.GRASS] += (1.5 * wetness + 1.0 * green, 2.0 * green + 0.8 * wetness)
    db[Cover.CROP] += (2.0 * crop + 1.2 * wetness, 5.0 * crop)
    db[Cover.TREE] += (0.6 * green, 1.2 * green)
    db[Cover.BARE] += (2.5 * wetness, 1.5 * wetness)
    db[Cover.WATER] += (4.0 * wind, 2.0 * wind)
    for roof, offset in _ROOF_S1_OFFSET_DB.items():
        vv, vh = _S1_DB[Cover.BUILDING]
        db[N_COVERS + roof - 1] = (vv + offset + (0.0 if ascending else -0.8), vh + 0.5 * offset)
    return (10.0 ** ((db + SIGMA0_TO_GAMMA0_DB) / 10.0)).astype(np.float32)


def ndvi(s2: np.ndarray) -> np.ndarray:
    """NDVI from an array whose last axis holds the 13 bands (B08 = index 7, B04 = index 3)."""
    nir, red = s2[..., 7].astype(np.float64), s2[..., 3].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(nir + red > 0, (nir - red) / (nir + red), 0.0)
