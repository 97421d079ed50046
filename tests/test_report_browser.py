"""A real browser opens the reports: no console error, no failed load, and a screenshot that is not blank."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from judge.report import write_report
from tests.browser import INSTALL_HINT, find_chromium, visit
from tests.report_fixtures import TARGETS, write_bench_run, write_failed_bench_run
from tests.test_report import bench_run, calibration_run, score_run  # noqa: F401 - module-scoped run fixtures
from tests.test_report_audit import audit_dirs  # noqa: F401 - module-scoped audit fixture

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=f"Chromium not found; install it with: {INSTALL_HINT}")


def _not_blank(png: bytes) -> None:
    pixels = image.imread(io.BytesIO(png), format="png")[..., :3]
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    inked = (pixels.min(axis=2) < 0.9).mean()
    assert pixels.std() > 0.05 and inked > 0.02, f"screenshot looks blank (std {pixels.std():.3f}, ink {inked:.3f})"


def _check(page: Path) -> None:
    assert CHROMIUM is not None
    seen = visit(page, CHROMIUM)
    assert seen.errors == [], seen.errors
    _not_blank(seen.screenshot_png)
    _not_blank(seen.print_screenshot_png)
    assert seen.pdf.startswith(b"%PDF-")


def test_the_capture_sees_console_errors_and_network_loads(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><p>x</p><img src="https://example.com/a.png">'
                    '<script>console.error("boom"); notDefined();</script></body></html>', encoding="utf-8")
    assert CHROMIUM is not None
    errors = visit(page, CHROMIUM).errors
    assert any("boom" in e for e in errors) and any("notDefined" in e for e in errors)
    assert any("example.com" in e for e in errors), "a page that needs the network is caught"


def test_bench_report_renders(bench_run: Path) -> None:  # noqa: F811
    _check(write_report(bench_run))


def test_score_report_renders(score_run: Path) -> None:  # noqa: F811
    _check(write_report(score_run))


def test_calibration_report_renders(calibration_run: Path) -> None:  # noqa: F811
    _check(write_report(calibration_run))


def test_audit_reports_render(audit_dirs: dict[str, Path]) -> None:  # noqa: F811
    for directory in audit_dirs.values():
        _check(directory / "report.html")


def test_failed_and_single_target_reports_render(tmp_path: Path) -> None:
    _check(write_report(write_failed_bench_run(tmp_path / "failed", TARGETS[:2])))
    _check(write_report(write_bench_run(tmp_path / "one", TARGETS[:1])))


def test_blank_detector_rejects_a_white_page() -> None:
    buffer = io.BytesIO()
    image.imsave(buffer, np.ones((200, 200, 3)), format="png")
    with pytest.raises(AssertionError, match="blank"):
        _not_blank(buffer.getvalue())
