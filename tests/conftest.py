"""Fixtures shared by the tests."""

from __future__ import annotations

import os
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
