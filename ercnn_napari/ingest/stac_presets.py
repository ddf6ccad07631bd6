"""What the STAC collections users actually have hold, in our terms: band names, units, product.

A STAC item names its files by asset keys that differ between catalogues (Earth Search calls B02
``blue``, the Planetary Computer calls it ``B02``) and its pixels are in units and at a processing
level that differ from what the published network saw (ercnn_facts §8). A preset records, per
collection, which asset holds which of our bands, what units the pixels are in, which asset is the
cloud/valid mask, and how far the product is from the authors' S1 GRD gamma0-ellipsoid / S2 L1C
so that the fidelity record says it. Nothing here reads pixels or talks to a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ercnn_napari.ingest.scene import S1_BANDS, S2_BANDS

EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
#: The Planetary Computer hands out assets only through signed URLs (a short-lived SAS token).
PLANETARY_COMPUTER_SIGN = "planetary_computer:sign"

#: Earth Search v1 asset keys (common names of the eo extension) for the S2 bands.
_EARTH_SEARCH_S2 = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1",
    "B06": "rededge2", "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B09": "nir09",
    "B10": "cirrus", "B11": "swir16", "B12": "swir22",
}
#: Why L2A cannot give the network its 13 bands: Sen2Cor drops the cirrus band.
L2A_NO_B10 = ("L2A has no B10 (cirrus, removed by the atmospheric correction): "
              "the B10 channel is filled with 0, a value the published network never saw there")


@dataclass(frozen=True)
class CollectionPreset:
    """How to read one catalogue's collection as one of our sensors."""

    name: str                       #: "<catalogue>/<collection>", what a user types
    collection: str                 #: the STAC collection id
    sensor: str                     #: "S1" | "S2"
    product: str                    #: our product name for the fidelity record
    units: str                      #: units of the asset pixels (before raster:bands scaling)
    assets: dict[str, str]          #: our band name -> asset key (bands absent here are missing)
    mask_asset: str | None = None   #: asset holding a classification/valid mask
    mask_kind: str | None = None    #: "scl" (Sen2Cor scene classes) or "clm" (0 clear/1 cloud/255 none)
    processing: dict[str, str] = field(default_factory=dict)
    catalog_url: str | None = None  #: the API this preset's name stands for
    sign: str | None = None         #: dotted path of the URL signer the catalogue needs
    missing: dict[str, str] = field(default_factory=dict)  #: band -> what is done about it and why

    @property
    def bands(self) -> tuple[str, ...]:
        return S1_BANDS if self.sensor == "S1" else S2_BANDS

    def matches(self, collection: str | None, asset_keys: set[str]) -> bool:
        """True if an item of ``collection`` with these assets can be read with this preset."""
        if collection is not None and collection != self.collection:
            return False
        return set(self.assets.values()) <= asset_keys

    def fidelity_notes(self) -> list[str]:
        """Sentences for the fidelity record where this product differs from the authors' data."""
        notes = list(self.missing.values())
        if self.product == "S2_L2A":
            notes.append("L2A is surface reflectance (atmospherically corrected); the published network saw "
                         "L1C top-of-atmosphere reflectance")
        if self.product == "S1_RTC":
            notes.append("RTC backscatter is terrain-flattened gamma0; the published network saw gamma0 on the "
                         "ellipsoid (GRD, orthorectified, no terrain flattening)")
        return notes


PRESETS: dict[str, CollectionPreset] = {p.name: p for p in (
    CollectionPreset(
        name="earth-search/sentinel-2-l1c", collection="sentinel-2-l1c", sensor="S2", product="S2_L1C",
        units="dn", assets=dict(_EARTH_SEARCH_S2),
        processing={"level": "L1C", "reflectance": "TOA"}, catalog_url=EARTH_SEARCH_URL,
    ),
    CollectionPreset(
        name="earth-search/sentinel-2-l2a", collection="sentinel-2-l2a", sensor="S2", product="S2_L2A",
        units="dn", assets={k: v for k, v in _EARTH_SEARCH_S2.items() if k != "B10"},
        mask_asset="scl", mask_kind="scl",
        processing={"level": "L2A", "reflectance": "BOA", "B10": "filled with 0"},
        catalog_url=EARTH_SEARCH_URL, missing={"B10": L2A_NO_B10},
    ),
    CollectionPreset(
        name="planetary-computer/sentinel-2-l2a", collection="sentinel-2-l2a", sensor="S2", product="S2_L2A",
        units="dn", assets={b: b for b in S2_BANDS if b != "B10"},
        mask_asset="SCL", mask_kind="scl",
        processing={"level": "L2A", "reflectance": "BOA", "B10": "filled with 0"},
        catalog_url=PLANETARY_COMPUTER_URL, sign=PLANETARY_COMPUTER_SIGN, missing={"B10": L2A_NO_B10},
    ),
    CollectionPreset(
        name="planetary-computer/sentinel-1-rtc", collection="sentinel-1-rtc", sensor="S1", product="S1_RTC",
        units="linear", assets={"VV": "vv", "VH": "vh"},
        processing={"backscatter": "GAMMA0_TERRAIN", "terrain_flattening": "yes", "orthorectify": "yes"},
        catalog_url=PLANETARY_COMPUTER_URL, sign=PLANETARY_COMPUTER_SIGN,
    ),
)}

#: Sen2Cor scene classes that are not a clear view of the ground as CLM would see it: no data (0),
#: cloud medium/high probability (8, 9) and thin cirrus (10). Shadows (3) stay valid: the authors'
#: mask (dataMask AND CLM != 1) had no shadow mask either.
SCL_INVALID: tuple[int, ...] = (0, 8, 9, 10)


def preset_by_name(name: str) -> CollectionPreset | None:
    return PRESETS.get(name)


def preset_for_item(collection: str | None, asset_keys: set[str],
                    wanted: str | None = None) -> CollectionPreset | None:
    """The preset that can read an item: the named one if given, else the first whose collection id
    and asset keys fit (two catalogues may share a collection id but not their asset names)."""
    if wanted is not None:
        preset = PRESETS.get(wanted)
        return preset if preset is not None and preset.matches(None, asset_keys) else None
    for preset in PRESETS.values():
        if preset.matches(collection, asset_keys):
            return preset
    for preset in PRESETS.values():  # a copied collection under another id still has the same assets
        if preset.matches(None, asset_keys):
            return preset
    return None


def describe_presets() -> list[dict[str, Any]]:
    """The presets as plain values (for ``--help`` text and the docs)."""
    return [{"name": p.name, "collection": p.collection, "product": p.product, "url": p.catalog_url}
            for p in PRESETS.values()]
