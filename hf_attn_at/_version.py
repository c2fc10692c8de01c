"""The installed distribution's version; its one source is `version` in pyproject.toml."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hf_attn_at")
except PackageNotFoundError:  # a source tree on PYTHONPATH that was never installed
    __version__ = "0+unknown"
