"""The HTML report of a bench run, a score run, a calibration directory or an audit (`trustmh report DIR`).

Templates and figure code only: every number on the page is read from the run's files.
"""

from judge.log import detect_kind
from judge.report.load import ReportError
from judge.report.render import build_page, render_page, write_report

__all__ = ["ReportError", "build_page", "detect_kind", "render_page", "write_report"]
