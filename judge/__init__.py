"""trustmh-judge: LLM-as-judge scoring of mental-health trustworthiness along the TrustMH-Bench pillars."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trustmh-judge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
