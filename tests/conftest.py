"""Fixtures shared by the tests."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
#: The reference study's data sits beside the repository (``../shared``); a user's clone has
#: none, so tests that need it skip. SOCIETIES_SHARED points elsewhere (e.g. from a worktree).
SHARED = Path(os.environ.get("SOCIETIES_SHARED", REPO.parent / "shared"))


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "reference").is_dir():
        pytest.skip(f"{SHARED} is absent: the reference study's files are not in the repository")
    return SHARED


# Property tests explore a fixed sequence of examples: a test run on CI is reproducible, and a
# failure found once is found again. (Set HYPOTHESIS_PROFILE=explore to search afresh.)
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def make_quick_run(out: Path, repeats: int = 2, limit: int = 6) -> Path:
    """The quickstart experiment on its first ``limit`` cases, ``repeats`` times, sim model."""
    import asyncio

    from societies.plan.plan import Overrides
    from societies.plan.resolve import load_plan
    from societies.scheduler.session import run_experiment

    text = (REPO / "experiments" / "quickstart.yaml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^repeats: \d+$", f"repeats: {repeats}", text)
    text = text.replace("data: data/", f"data: {REPO / 'experiments' / 'data'}/")
    source = out.parent / f"{out.name}.yaml"
    source.write_text(text, encoding="utf-8")
    asyncio.run(run_experiment(load_plan(source, Overrides(out=out, limit=limit)), argv=[]))
    return out


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small quickstart run shared by the analysis and report tests (read it, never write)."""
    return make_quick_run(tmp_path_factory.mktemp("runs") / "quick")
