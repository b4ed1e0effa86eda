"""Figures render for one run and for several; the Pareto front by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import societies
from societies.analysis.cost import pareto_front
from societies.analysis.figures import FIGURES, save_figures


def test_pareto_front_by_hand() -> None:
    cost = np.array([1.0, 2.0, 3.0, 2.0, 0.5])
    accuracy = np.array([0.5, 0.7, 0.6, 0.7, 0.2])
    # 2 is dominated by 1 (cheaper, more accurate); 1 and 3 are equal and both kept;
    # 4 is the cheapest of all, so nothing dominates it.
    assert pareto_front(cost, accuracy) == [0, 1, 3, 4]
    assert pareto_front(np.array([]), np.array([])) == []


def test_every_figure_as_png_and_svg(quick_run: Path, tmp_path: Path) -> None:
    analysis = societies.load_run(quick_run)
    written = save_figures(analysis, tmp_path)
    # Every quickstart society has 3 agents: accuracy against society size would be one point;
    # and no society pauses: there is no accuracy against M.
    assert len(written) == 2 * (len(FIGURES) - 2) == 14
    assert not (tmp_path / "accuracy_vs_agents.png").exists()
    assert not (tmp_path / "accuracy_vs_pause.png").exists()
    for path in written:
        data = path.read_bytes()
        if path.suffix == ".png":
            assert data.startswith(b"\x89PNG") and len(data) > 5_000
        else:
            assert b"<svg" in data[:500]
