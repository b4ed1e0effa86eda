"""societies: simulate societies of LLM agents and measure how they collaborate."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("societies")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
