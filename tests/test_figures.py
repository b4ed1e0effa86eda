"""Figures that scale: heatmaps past 8 societies, one society order, legends outside the axes,
error bars inside [0, 1], no single-point plots, conformity by trait."""

from __future__ import annotations

from pathlib import Path

import pytest

from societies.analysis import figures
from societies.analysis.load import Analysis, load_run
from tests.synthetic_store import build_store, society_names


@pytest.fixture(scope="module")
def quick(quick_run: Path) -> Analysis:
    return load_run(quick_run)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    folder = tmp_path_factory.mktemp("many") / "run"
    build_store(folder, societies=42, cases=4)
    return load_run(folder)


def test_many_societies_become_a_heatmap_in_the_experiments_order(many: Analysis) -> None:
    for make in (figures.accuracy_by_strategy, figures.consensus_vs_round):
        fig = make(many)
        assert fig is not None
        ax = fig.axes[0]
        assert len(ax.images) == 1 and not ax.patches  # a heatmap, no bars
        rows = [t.get_text() for t in ax.get_yticklabels()]
        assert rows == society_names(42) == many.society_order(next(iter(many.runs)))


def test_few_societies_get_bars_with_errors_inside_0_1_and_an_outside_legend(
    quick: Analysis,
) -> None:
    fig = figures.accuracy_by_strategy(quick)
    ax = fig.axes[0]
    assert not ax.images and ax.patches
    tops = [
        y
        for container in ax.containers
        if hasattr(container, "lines") and container.lines[2]
        for segment in container.lines[2][0].get_segments()
        for _, y in segment
    ]
    assert tops and min(tops) >= 0 and max(tops) <= 1
    fig.canvas.draw()
    legend = ax.get_legend()
    assert legend is not None
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1
    assert [t.get_text() for t in legend.get_texts()] == quick.society_order("quickstart")


def test_error_bars_stop_at_0_and_1() -> None:
    import pandas as pd

    errors = figures._clipped_errors(pd.Series([0.95, 0.05, 0.5]), pd.Series([0.1, 0.1, 0.1]))
    assert errors.round(6).tolist() == [[0.1, 0.05, 0.1], [0.05, 0.1, 0.1]]


def test_no_single_point_plot(quick: Analysis) -> None:
    # Every quickstart society has 3 agents: accuracy against society size is one point.
    assert figures.accuracy_vs_agents(quick) is None
    assert "accuracy_vs_agents" not in figures.render(quick, formats=("png",))


def test_conformity_by_trait(quick: Analysis) -> None:
    fig = figures.conformity_by_trait(quick)
    assert fig is not None
    label = fig.axes[0].get_xlabel()
    assert "easy-going" in label and "overconfident" in label
    # Two traits x three debate rounds x four conformity types.
    assert len(fig.axes[0].patches) == 2 * 3 * 4
