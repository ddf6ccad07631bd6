"""Loss plot: plain loss numbers (no SI prefix), a legend clear of the first epochs, the kept epoch marked."""

from __future__ import annotations

from ercnn_napari.core.messages import Epoch, Step
from ercnn_napari.napari_plugin.loss_plot import LossPlot


def _feed(plot: LossPlot) -> None:
    for epoch, val, best in ((1, 0.0042, True), (2, 0.0031, True), (3, 0.0035, False)):
        for step in (1, 2):
            plot.add_message(Step(epoch=epoch, step=step, steps_per_epoch=2, loss=0.005 - 0.001 * epoch))
        plot.add_message(Epoch(epoch=epoch, epochs=3, train_loss=0.004, val_loss=val, best=best))


def test_small_losses_read_as_plain_numbers_and_the_kept_epoch_is_marked(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    _feed(plot)
    axis = plot.plot.getAxis("left")
    assert "×" not in axis.labelString() and "x0.001" not in axis.labelString()
    assert axis.autoSIPrefixScale == 1.0  # pyqtgraph would otherwise rescale 0.003 to "3 (×0.001)"
    assert plot.best == (2.0, 0.0031)
    xs, ys = plot.best_marker.getData()
    assert list(xs) == [2.0] and list(ys) == [0.0031]
    assert plot.best_line.isVisible() and plot.best_line.value() == 2.0
    # the legend is anchored top-right (negative x offset), away from the first epochs on the left
    assert plot.legend.offset[0] < 0 and plot.legend.offset[1] > 0
    plot.clear()
    assert plot.best is None and not plot.best_line.isVisible()
