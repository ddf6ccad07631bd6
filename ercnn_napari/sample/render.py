"""Very-high-resolution "reference imagery" of a tile: an RGB picture of its 1 m land cover.

The authors labelled from Google Earth image pairs. These renderings play that role: roofs with a
lit and a shaded facet, cast shadows of buildings and trees, asphalt and pavement, lawns and
crowns whose greenness follows the season of the image date, fields with tractor lines, bare
construction sites. A person can see where a meadow became a building site and paint the change.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ercnn_napari.sample.landcover import Cover, LandCover, Roof
from ercnn_napari.sample.noise import smooth_field
from ercnn_napari.sample.shading import cast_shadow
from ercnn_napari.sample.spectra import phenology

#: Colours (sRGB 0-255) of the covers at full and at no greenness (vegetation) or fixed.
_GREEN = {
    Cover.GRASS: ((84, 118, 50), (128, 126, 88)),
    Cover.TREE: ((42, 72, 34), (98, 88, 72)),
}
_FIXED = {
    Cover.WATER: (40, 62, 66),
    Cover.BARE: (168, 142, 112),
    Cover.ROAD: (78, 78, 82),
    Cover.PAVED: (158, 155, 148),
}
_ROOF = {
    Roof.NONE: (150, 150, 148),
    Roof.RED_TILE: (152, 74, 52),
    Roof.SLATE: (72, 74, 80),
    Roof.FLAT_GREY: (152, 152, 150),
    Roof.METAL: (192, 197, 202),
    Roof.BITUMEN: (62, 62, 64),
}
_CROP_GREEN, _CROP_RIPE, _SOIL = np.array((96, 128, 48)), np.array((196, 176, 104)), np.array((150, 122, 92))
SHADOW_FACTOR = np.array((0.48, 0.5, 0.58))      # shadows are dark and a little blue (skylight)


def render_tile(state: LandCover, margin: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """uint8 [H, W, 3] picture of ``state`` without its ``margin`` cells (kept for shadows).

    ``seconds`` sets the season (vegetation colour, crop stage); ``rng`` the textures and the
    colour balance of this "acquisition".
    """
    green, crop = phenology(seconds)
    shape = state.shape
    rgb = np.zeros((*shape, 3), np.float32)
    for cover, (full, bare) in _GREEN.items():
        colour = np.array(bare) + green * (np.array(full) - np.array(bare))
        rgb[state.cover == cover] = colour
    for cover, colour in _FIXED.items():
        rgb[state.cover == cover] = colour
    rgb[state.cover == Cover.CROP] = _crop_colour(seconds, crop)
    roofs = state.cover == Cover.BUILDING
    for roof, colour in _ROOF.items():
        rgb[roofs & (state.roof == roof)] = colour
    # facets and crowns: brighter toward the sun
    lit = np.isin(state.cover, (Cover.BUILDING, Cover.TREE))
    rgb[lit] *= state.shade[lit, None]
    rgb *= _texture(state, rng)[..., None]
    shadow = cast_shadow(state.height) & (state.cover != Cover.BUILDING)
    rgb[shadow] *= SHADOW_FACTOR
    balance = 1.0 + rng.normal(0.0, 0.04, size=3)            # white balance of this acquisition
    rgb = rgb * balance * rng.uniform(0.93, 1.07)
    rgb = ndimage.gaussian_filter(rgb, sigma=(0.6, 0.6, 0))   # resampled imagery is never razor sharp
    inner = rgb[margin:shape[0] - margin, margin:shape[1] - margin]
    return np.clip(inner, 0, 255).astype(np.uint8)


def _crop_colour(seconds: float, crop: float) -> np.ndarray:
    """Green while growing, golden when ripe (early summer after the peak), brown soil otherwise."""
    import datetime as dt

    day = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).timetuple().tm_yday
    ripe = 1.0 if 165 <= day <= 200 else 0.0
    growing = _CROP_GREEN * (1 - ripe) + _CROP_RIPE * ripe
    return _SOIL + crop * (growing - _SOIL)


def _texture(state: LandCover, rng: np.random.Generator) -> np.ndarray:
    """Brightness variation per cover: mottled lawns, tyre tracks on soil, furrows in fields."""
    shape = state.shape
    coarse = smooth_field(rng, shape, cell=40.0, octaves=3).astype(np.float32)
    fine = rng.normal(0.0, 1.0, size=shape).astype(np.float32)
    tex = np.ones(shape, np.float32)
    cover = state.cover
    tex += np.where(cover == Cover.GRASS, 0.07 * coarse + 0.05 * fine, 0.0)
    tex += np.where(cover == Cover.TREE, 0.06 * fine, 0.0)
    tex += np.where(cover == Cover.BARE, 0.08 * coarse + 0.06 * fine, 0.0)
    tex += np.where(cover == Cover.WATER, 0.03 * coarse, 0.0)
    tex += np.where(np.isin(cover, (Cover.ROAD, Cover.PAVED)), 0.02 * coarse + 0.03 * fine, 0.0)
    tex += np.where(cover == Cover.BUILDING, 0.02 * fine, 0.0)
    rows = np.arange(shape[0])[:, None] + np.zeros(shape[1])[None, :]
    furrows = 0.06 * np.sin(2 * np.pi * rows / 3.0).astype(np.float32)
    tex += np.where(cover == Cover.CROP, furrows + 0.04 * coarse, 0.0)
    return tex
