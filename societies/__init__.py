"""societies: simulate societies of LLM agents and measure how they collaborate."""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from societies.analysis.load import load_run

try:
    __version__ = version("societies")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"


def __getattr__(name: str) -> object:
    # pandas is imported only when analysis is asked for: ``societies run`` starts faster.
    if name == "load_run":
        from societies.analysis.load import load_run

        return load_run
    raise AttributeError(f"module 'societies' has no attribute {name!r}")


__all__ = ["__version__", "load_run"]
