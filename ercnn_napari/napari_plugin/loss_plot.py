"""A live loss curve for the fine-tune dock (pyqtgraph: fast, no Matplotlib in the viewer).

Training loss is plotted per optimisation step and validation loss per epoch on one x axis
measured in epochs, so the analyst sees at a glance whether validation follows training. The epoch
the run keeps (best validation loss: its model becomes the run's model) is marked with a star and a
vertical line. The loss axis shows plain numbers (pyqtgraph's SI prefixes read "loss (×0.001)"),
and the small translucent legend sits top-right, clear of the first epochs on the left.
"""

from __future__ import annotations

import pyqtgraph as pg
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ercnn_napari.core.messages import Epoch, Message, Step, Validation


class LossPlot(QWidget):
    """Train (per step) and validation (per epoch) loss against training progress in epochs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="k")
        self.plot.setMinimumHeight(140)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "loss")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.legend = self.plot.addLegend(offset=(-5, 5), labelTextSize="8pt", verSpacing=-6)
        self.legend.setBrush(pg.mkBrush(0, 0, 0, 110))
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.train_curve = self.plot.plot([], [], pen=pg.mkPen("#4da3ff", width=1.5), name="train")
        self.val_curve = self.plot.plot([], [], pen=pg.mkPen("#ffa040", width=2), symbol="o",
                                        symbolSize=6, symbolBrush="#ffa040", name="validation")
        self.best_marker = self.plot.plot([], [], pen=None, symbol="star", symbolSize=16,
                                          symbolBrush="#39d353", symbolPen="w", name="kept (best) epoch")
        self.best_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#39d353", width=1, style=_dash()))
        self.best_line.setVisible(False)
        self.plot.addItem(self.best_line, ignoreBounds=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.clear()

    def clear(self) -> None:
        self.train_x: list[float] = []
        self.train_y: list[float] = []
        self.val_x: list[float] = []
        self.val_y: list[float] = []
        self.best: tuple[float, float] | None = None  # (epoch, validation loss) of the kept model
        self._redraw()

    def add_message(self, msg: Message) -> None:
        """Feed every worker message; only steps, validations and epochs change the plot."""
        if isinstance(msg, Step):
            per_epoch = max(int(msg.steps_per_epoch), 1)
            # epochs and steps are reported 1-based; x = completed fraction of training in epochs
            self.train_x.append(max(msg.epoch - 1, 0) + msg.step / per_epoch)
            self.train_y.append(float(msg.loss))
        elif isinstance(msg, Validation):
            self._add_val(float(msg.epoch), float(msg.loss))
        elif isinstance(msg, Epoch) and msg.val_loss is not None:
            self._add_val(float(msg.epoch), float(msg.val_loss))
            if msg.best:
                self.best = (float(msg.epoch), float(msg.val_loss))
        else:
            return
        self._redraw()

    def _add_val(self, epoch: float, loss: float) -> None:
        if self.val_x and self.val_x[-1] == epoch:  # validation and epoch events repeat the same value
            self.val_y[-1] = loss
            return
        self.val_x.append(epoch)
        self.val_y.append(loss)

    def _redraw(self) -> None:
        self.train_curve.setData(self.train_x, self.train_y)
        self.val_curve.setData(self.val_x, self.val_y)
        if self.best is None:
            self.best_marker.setData([], [])
            self.best_line.setVisible(False)
        else:
            self.best_marker.setData([self.best[0]], [self.best[1]])
            self.best_line.setValue(self.best[0])
            self.best_line.setVisible(True)


def _dash() -> object:
    from qtpy.QtCore import Qt

    return Qt.PenStyle.DashLine
