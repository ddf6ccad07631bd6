"""The plots of a pixel's story (pyqtgraph, dates on a shared x axis).

Three rows share one time axis: Sentinel-1 backscatter in dB (VV/VH, ascending and descending),
Sentinel-2 NDVI and the chosen bands (reflectance) with the acquisitions at which this pixel was
cloud-masked marked by grey crosses, and the change probability of every prediction window
(a horizontal bar over the window's span) with the slider's window highlighted. Dated events of
the answer key are vertical lines across all three.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ercnn_napari.core.pixel_series import PixelSeries

S1_PENS = {("S1_ascending", 0): ("#4da3ff", "VV asc"), ("S1_ascending", 1): ("#9ecbff", "VH asc"),
           ("S1_descending", 0): ("#ff9f40", "VV desc"), ("S1_descending", 1): ("#ffd29e", "VH desc")}
BAND_COLOURS = ("#ff5050", "#50d050", "#5080ff", "#d0d050", "#d070d0", "#50d0d0")


class PixelPlot(QWidget):
    """S1 dB, S2 NDVI/bands with masked steps, and per-window change probability over time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("k")
        self.s1 = self._add_plot(0, "S1 (dB)")
        self.s2 = self._add_plot(1, "S2")
        self.prob = self._add_plot(2, "P(change)")
        self.prob.setYRange(0.0, 1.0)
        for plot in (self.s2, self.prob):
            plot.setXLink(self.s1)
        self.highlight = pg.LinearRegionItem(brush=pg.mkBrush(255, 255, 0, 50), movable=False)
        self.highlight.setVisible(False)
        self.prob.addItem(self.highlight)
        self.event_lines: list[Any] = []
        self.windows: list[tuple[float, float]] = []
        self.series: PixelSeries | None = None
        self.probabilities: np.ndarray | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        self.setMinimumHeight(420)

    def _add_plot(self, row: int, label: str) -> Any:
        plot = self.graphics.addPlot(row=row, col=0, axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        plot.setLabel("left", label)
        plot.getAxis("left").enableAutoSIPrefix(False)  # NDVI 0.6 must not read "600 (x0.001)"
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.addLegend(offset=(5, 5), labelTextSize="7pt")
        return plot

    # -- drawing --------------------------------------------------------------------------------
    def show_series(self, series: PixelSeries, bands: list[str]) -> None:
        """Draw S1 and S2 of one pixel (clears the previous pixel's curves)."""
        self.series = series
        t = series.timestamps
        self.s1.clear()
        for (stream, channel), (colour, name) in S1_PENS.items():
            db = series.s1_db(stream)[:, channel]
            fresh = series.streams[stream].fresh
            self.s1.plot(t, db, pen=pg.mkPen(colour, width=1), name=name)
            self.s1.plot(t[fresh], db[fresh], pen=None, symbol="o", symbolSize=3, symbolBrush=colour,
                         symbolPen=None)
        self.s2.clear()
        s2 = series.streams["S2"]
        ndvi = series.ndvi()
        self.s2.plot(t, ndvi, pen=pg.mkPen("#39d353", width=2), name="NDVI")
        for i, band in enumerate(bands):
            values = series.s2_band(band)
            self.s2.plot(t, values, pen=pg.mkPen(BAND_COLOURS[i % len(BAND_COLOURS)], width=1), name=band)
        masked = s2.masked
        self.s2.plot(t[masked], ndvi[masked], pen=None, symbol="x", symbolSize=8, symbolBrush="#aaaaaa",
                     symbolPen=pg.mkPen("#aaaaaa"), name="cloud-masked")
        self.s1.setXRange(float(t[0]), float(t[-1]), padding=0.01)

    def show_probabilities(self, windows: list[tuple[float, float]], probabilities: np.ndarray | None,
                           name: str = "") -> None:
        """One bar per window: its span in time, its probability as height (none: cleared)."""
        self.prob.clear()
        self.prob.addItem(self.highlight)
        self.windows = list(windows)
        self.probabilities = probabilities
        if probabilities is None or not windows:
            self.highlight.setVisible(False)
            return
        starts = np.array([w[0] for w in windows], float)
        ends = np.array([w[1] for w in windows], float)
        mids = (starts + ends) / 2.0
        self.prob.plot(mids, probabilities, pen=pg.mkPen("#ff4040", width=2), symbol="o", symbolSize=5,
                       symbolBrush="#ff4040", name=name or "change")

    def set_current_window(self, index: int | None) -> None:
        if index is None or not 0 <= index < len(self.windows):
            self.highlight.setVisible(False)
            return
        start, end = self.windows[index]
        self.highlight.setRegion((start, end))
        self.highlight.setVisible(True)

    def show_events(self, events: list[tuple[float, str, bool]]) -> None:
        """Vertical lines at dated events: (UNIX time, label, at this pixel?)."""
        for plot, line in self.event_lines:
            plot.removeItem(line)
        self.event_lines = []
        for when, label, here in events:
            pen = pg.mkPen("#ff66ff" if here else "#aa66aa", width=1.5 if here else 1,
                           style=pg.QtCore.Qt.PenStyle.SolidLine if here else pg.QtCore.Qt.PenStyle.DotLine)
            for plot in (self.s1, self.s2, self.prob):
                line = pg.InfiniteLine(pos=when, angle=90, pen=pen,
                                       label=label if plot is self.s1 else None,
                                       labelOpts={"position": 0.9, "color": "#ff99ff", "rotateAxis": (1, 0)})
                plot.addItem(line)
                self.event_lines.append((plot, line))
