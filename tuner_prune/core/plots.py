"""The figures tuner_prune draws, written as PNG (Keras-free).

``report``'s Pareto plot, ``sweep``'s loss curves and the picture in
TensorBoard's ``search`` run are drawn on axes from ``png_axes``. It uses
matplotlib's object API, not ``pyplot``: no figure is left open and the
caller's matplotlib backend is left as it was.
"""

import contextlib

SIZE = (7, 4.5)  # Inches; at DPI, 700 x 450 pixels.
DPI = 100


@contextlib.contextmanager
def png_axes(target, xlabel, ylabel, title, size=SIZE):
    """Yields new axes to draw on; then labels them, adds the legend of the
    labelled artists and a grid, and writes the figure as a PNG.

    Args:
        target: A path, or a binary file to write into.
        xlabel: The x axis' label.
        ylabel: The y axis' label.
        title: The figure's title.
        size: ``(width, height)`` in inches, at ``DPI`` pixels per inch.

    Yields:
        A matplotlib ``Axes``; its legend is ``axes.get_legend()`` afterwards.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    yield axes
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(target, format="png")
