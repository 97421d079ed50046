"""A real browser opens the reports: no console error, no failed load, and a screenshot that is not blank."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import image

from judge.report import write_report
from judge.suites.catalogue import SUITES
from tests.browser import INSTALL_HINT, find_chromium, visit
from tests.conftest import read_jsonl
from tests.report_fixtures import TARGETS, write_bench_run, write_failed_bench_run, write_item_run
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


# ------------------------------------------------------------------------ layout and the item browser at 1400 px

WIDE = 1400
CATALOGUE_SUITES = list(SUITES)
LONG_TARGETS = ["openai:gpt-4o-mini-2024-07-18@https://api.openai.com/v1", "anthropic:claude-3-5-haiku-20241022",
                "openai:qwen2.5-7b-instruct@http://localhost:8000/v1"]
OVERFLOWING = """[...document.querySelectorAll('.table-wrap')].filter(w => w.scrollWidth > w.clientWidth + 1)
  .map(w => w.querySelector('table').dataset.table || w.querySelector('table').className)"""
DRIVER = """window.probe = {
  root: document.querySelector('[data-item-browser]'),
  set(name, value) {
    const control = this.root.querySelector('[data-filter=' + name + ']');
    control.value = value;
    control.dispatchEvent(new Event(name === 'text' ? 'input' : 'change'));
    return this.state();
  },
  page(where) { this.root.querySelector('[data-page=' + where + ']').click(); return this.state(); },
  state() {
    const items = [...this.root.querySelectorAll('article.item')];
    return {ids: items.map(a => a.dataset.item), status: this.root.querySelector('[data-status]').textContent};
  },
}; window.probe.state()"""


def test_rank_table_of_every_sub_task_fits_at_1400_px(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty sub-tasks as columns ran off the right edge (#26 item 8); long target names wrap, never cut."""
    from tests import report_fixtures

    monkeypatch.setattr(report_fixtures, "SUITES", [(s, "accuracy", True, "deterministic") for s in CATALOGUE_SUITES])
    page = write_report(write_bench_run(tmp_path / "run", LONG_TARGETS))
    assert CHROMIUM is not None
    seen = visit(page, CHROMIUM, width=WIDE, expressions=(
        OVERFLOWING, "document.documentElement.scrollWidth",
        "[...document.querySelectorAll('table[data-table=ranks] thead th')].map(th => th.textContent)"))
    assert seen.errors == []
    overflowing, page_width, headers = seen.checks
    assert overflowing == [] and page_width <= WIDE
    assert headers == ["sub-task", "metric", *LONG_TARGETS], "every target named in full"


def _expected(run: Path) -> dict[str, Any]:
    items = read_jsonl(run / "items.jsonl")
    verdicts, panel = read_jsonl(run / "verdicts.jsonl"), read_jsonl(run / "panel.jsonl")
    critical = {p["item_id"] for p in panel if p["critical_fail"] is True}
    judge = verdicts[0]["judge"]
    not_applicable = {v["item_id"] for v in verdicts if v["judge"] == judge and v["status"] == "not_applicable"}
    return {"ids": [i["id"] for i in items],
            "critical": [i["id"] for i in items if i["id"] in critical],
            "target": [i["id"] for i in items if i["target"] == items[1]["target"]], "target_name": items[1]["target"],
            "judge": judge, "judge_not_applicable": [i["id"] for i in items if i["id"] in not_applicable]}


def test_item_browser_filters_and_pages_through_10000_items(score_run: Path, tmp_path: Path) -> None:  # noqa: F811
    run = write_item_run(tmp_path / "large", score_run, 10_000)
    expected = _expected(run)
    page = write_report(run)
    assert CHROMIUM is not None
    seen = visit(page, CHROMIUM, width=WIDE, expressions=(
        DRIVER, "probe.page('next')", "probe.page('last')",
        "probe.set('verdict', 'critical')",
        f"probe.set('verdict', ''), probe.set('target', {json.dumps(expected['target_name'])})",
        f"probe.set('target', ''), probe.set('judge', {json.dumps(expected['judge'])}), "
        "probe.set('verdict', 'not_applicable')",
        "probe.set('judge', ''), probe.set('pillar', ''), probe.set('verdict', ''), probe.set('text', '09999')",
        "probe.set('text', 'no such item')",
        OVERFLOWING))
    assert seen.errors == []
    first, second, last, critical, target, judged, searched, none, overflowing = seen.checks
    ids = expected["ids"]
    assert first["ids"] == ids[:25] and first["status"].startswith("items 1–25 of 10,000 matching")
    assert second["ids"] == ids[25:50] and "page 2 of 400" in second["status"]
    assert last["ids"] == ids[-25:] and "page 400 of 400" in last["status"]
    for state, wanted in ((critical, expected["critical"]), (target, expected["target"]),
                          (judged, expected["judge_not_applicable"])):
        assert 0 < len(wanted) < len(ids), "the filter picks some items, not all"
        assert state["ids"] == wanted[:25] and f"of {len(wanted):,} matching" in state["status"]
    assert searched["ids"] == ["item-09999"] and none["ids"] == [] and "0 of 10,000 items match" in none["status"]
    assert overflowing == []
    _not_blank(seen.screenshot_png)


def test_hostile_item_text_is_shown_not_run(score_run: Path, tmp_path: Path) -> None:  # noqa: F811
    hostile = ('bot\x00\u202etxt.exe </script><img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
               ' <!-- x --> &amp;')
    page = write_report(write_item_run(tmp_path / "hostile", score_run, 2, hostile=hostile))
    assert CHROMIUM is not None
    seen = visit(page, CHROMIUM, width=WIDE, expressions=(
        "window.pwned === undefined", "document.querySelectorAll('[data-items] img, [data-items] script').length",
        "document.querySelector('article.item').textContent"))
    assert [e for e in seen.errors if "pwned" in e] == [] and seen.checks[:2] == [True, 0]
    shown = seen.checks[2]
    assert "bot⟨U+0000⟩⟨U+202E⟩txt.exe </script><img src=x" in shown and "&amp;" in shown
