"""Sliders where a widget frontend runs, a static figure everywhere else.

A notebook run by papermill or nbval, or read on GitHub, has no widget frontend: a widget
shows there as a line of text, or not at all. So ``explore`` first draws the figure at the
sliders' starting values as an ordinary output, which every renderer shows, and then offers
the sliders. In Jupyter, the first move of a slider removes that static figure and the live
one below the sliders takes its place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

NO_FRONTEND = "(sliders: open the notebook in Jupyter to move them; the figure above is drawn at their starting values)"


def explore(draw: Callable[..., Figure], **sliders: Any) -> Any:
    """Show ``draw(**values)`` now, then sliders (ipywidgets, one per keyword) that redraw it.

    Returns the widget box; its ``redraw`` attribute redraws at the sliders' values (what a
    slider move calls).
    """
    import ipywidgets as widgets
    from IPython.display import HTML, display

    def values() -> dict[str, Any]:
        return {name: slider.value for name, slider in sliders.items()}

    first = draw(**values())
    static = display(first, display_id=True)
    plt.close(first)
    live = widgets.Output()

    def redraw(_: Any = None) -> None:
        if static is not None:
            static.update(HTML(""))  # the static copy gives way to the live figure
        with live:
            live.clear_output(wait=True)
            fig = draw(**values())
            display(fig)
            plt.close(fig)

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    box = widgets.VBox([widgets.HBox(list(sliders.values())), live])
    box.redraw = redraw
    bundle = box._repr_mimebundle_()
    bundle["text/plain"] = NO_FRONTEND
    display(bundle, raw=True)
    return box


def slider(description: str, value: float, low: float, high: float, step: float) -> Any:
    """A float slider wide enough to read its label."""
    import ipywidgets as widgets

    return widgets.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                               continuous_update=False, style={"description_width": "initial"},
                               layout=widgets.Layout(width="320px"))
