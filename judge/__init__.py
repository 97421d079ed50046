"""trustmh-judge: LLM-as-judge scoring of mental-health trustworthiness along the TrustMH-Bench pillars."""

from judge.version import __version__

__all__ = ["__version__"]
