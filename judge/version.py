"""The installed distribution's version, in a base module so that run records can name it without loading the
package root (the public API)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trustmh-judge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
