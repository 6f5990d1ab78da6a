"""Interactive toys: a static figure for every renderer, sliders that redraw it in Jupyter."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import IPython.display
import matplotlib.pyplot as plt
import pytest

from sae_failures.engine import widgets


def test_explore_shows_a_static_figure_then_sliders_that_redraw(monkeypatch):
    pytest.importorskip("ipywidgets")
    shown, drawn = [], []

    class Handle:
        def update(self, obj):
            shown.append(("update", type(obj).__name__, getattr(obj, "data", None)))

    def display(obj, display_id=None, raw=False):
        shown.append(("display", "raw" if raw else type(obj).__name__, obj if raw else None))
        return Handle() if display_id else None

    def draw(m, c):
        drawn.append((m, c))
        fig, ax = plt.subplots()
        ax.set_title(f"m={m} c={c}")
        return fig

    monkeypatch.setattr(IPython.display, "display", display)
    m, c = widgets.slider("m", 1.0, 0, 3, 0.1), widgets.slider("c", 0.5, 0, 1, 0.1)
    box = widgets.explore(draw, m=m, c=c)
    assert drawn == [(1.0, 0.5)]
    assert [s[:2] for s in shown] == [("display", "Figure"), ("display", "raw")]
    bundle = shown[1][2]
    assert bundle["text/plain"] == widgets.NO_FRONTEND  # what papermill, nbval and GitHub keep of the sliders
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == box.model_id
    m.value = 2.0  # what moving the slider does
    assert drawn[-1] == (2.0, 0.5)
    assert ("update", "HTML", "") in [s for s in shown if s[0] == "update"]  # the static copy gives way


def test_the_teaching_figures_draw_the_analytic_answers():
    from sae_failures.studies.gated.plots import shrinkage_1d_explorer
    from sae_failures.studies.suppression.plots import single_feature_explorer

    fig = single_feature_explorer(m=1.0, c=2e-3, d=100)
    assert fig.axes[1].get_title() == "suppressed by 0.10 (10%)"  # c d / 2 = 0.1
    assert [p.get_height() for p in fig.axes[1].patches] == pytest.approx([1.0, 0.9])
    dead = single_feature_explorer(m=0.05, c=2e-3, d=100)
    assert [p.get_height() for p in dead.axes[1].patches] == pytest.approx([0.05, 0.0])  # m < c d / 2 dies
    fig = shrinkage_1d_explorer(lam=1.0)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "baseline's best f = x − λ/2 = 0.50" in labels and "Gated's best f = x = 1.00" in labels
