"""Facts of the ERCNN-DRS data layout that every part of the project shares.

Sources: the authors' preprocessing and model code, summarised in the project's facts sheet.
"""

from __future__ import annotations

#: Channel order of one observation: S1 ascending VV, VH; S1 descending VV, VH; S2 L1C 13 bands.
CHANNEL_NAMES: tuple[str, ...] = (
    "S1_asc_VV", "S1_asc_VH", "S1_desc_VV", "S1_desc_VH",
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)
N_SAR_CHANNELS = 4
N_OPT_CHANNELS = 13
N_CHANNELS = N_SAR_CHANNELS + N_OPT_CHANNELS  # 17

TILE_SIZE = 32          #: pixels per tile side
PIXEL_SIZE_M = 10.0     #: metres per pixel
STEP_DAYS = 2           #: minimum time step of the stacked series (delta)
WINDOW_DAYS = 182       #: window length (Delta)
MIN_OBSERVATIONS = 35   #: windows with fewer observations are dropped (omega)
MAX_OBSERVATIONS = 92   #: T of the network: observations per window at most (Omega)
PAD_VALUE = -1.0        #: value of padded time steps

#: Period of the transfer-learning labels and windows (Liège 2017–2020).
PERIOD_START = "2017-01-01"
PERIOD_END = "2021-01-16"

#: Window-table CSV columns as the authors wrote them.
WINDOW_CSV_COLUMNS = ("ID", "Start Time", "End Time", "# Observations")

#: The window a model with a reference input compares every window with: the tile's first
#: (row 0 of its window table), i.e. the start of the period (ml.model.network).
REFERENCE_WINDOW = 0
