"""Assemble a run's sections into one self-contained HTML page (styles, script and SVG figures inline)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from judge.log import AuditRun, BenchRun, CompareRun, ScoreRun, detect_kind
from judge.report.audit import audit_facts, audit_sections
from judge.report.bench import bench_facts, bench_sections
from judge.report.calibration import calibration_facts, calibration_sections
from judge.report.load import ReportError, load_run
from judge.report.page import Page
from judge.report.score import score_facts, score_sections
from judge.rundir import write_text_atomic
from judge.textsafe import visible

DEFAULT_NAME = "report.html"
KIND_TITLES = {"bench": "Benchmark run", "score": "Score run", "calibration": "Judge calibration",
                "audit": "Judge audit"}


def build_page(directory: Path) -> Page:
    """Read `directory`, whatever kind it is, into the page's sections."""
    run = load_run(directory)
    if isinstance(run, CompareRun):
        raise ReportError(f"{directory}: a comparison; its page is made by write_report (compare.html.j2)")
    kind = run.kind
    if isinstance(run, BenchRun):
        sections, facts = bench_sections(run), bench_facts(run)
    elif isinstance(run, ScoreRun):
        sections, facts = score_sections(run), score_facts(run)
    elif isinstance(run, AuditRun):
        sections, facts = audit_sections(run), audit_facts(run)
    else:
        sections, facts = calibration_sections(run), calibration_facts(run)
    ids = [s.id for s in sections]
    if len(set(ids)) != len(ids):
        raise AssertionError(f"duplicate section ids: {ids}")
    name = directory.resolve().name or str(directory)
    return Page(title=f"{KIND_TITLES[kind]}: {name}", kind=kind, source=str(directory.resolve()), facts=facts,
                sections=sections, generated=datetime.now(UTC).isoformat(timespec="seconds"))


def _shown(value: Any) -> Any:
    """Every value a template prints: text from models and names with its invisible characters made
    visible (escaping happens after); the page's own markup (figures) is left as it is."""
    return visible(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def _environment() -> Environment:
    return Environment(loader=PackageLoader("judge.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, finalize=_shown)


def page_chunks(page: Page) -> Iterator[str]:
    """The page's HTML a piece at a time: an item browser's rows are read from the run's files as they are
    written, so a report of 10,000 items is never held in memory whole."""
    env = _environment()
    assert env.loader is not None
    style = env.loader.get_source(env, "report.css")[0]
    script = env.loader.get_source(env, "report.js")[0]
    return env.get_template("report.html.j2").generate(page=page, style=style, script=script)


def render_page(page: Page) -> str:
    return "".join(page_chunks(page))


def write_report(directory: Path, out: Path | None = None) -> Path:
    """Write the report of `directory` to `out` (default DIR/report.html), readable by its owner only.

    Raises ReportError (with the file and what to do) when the directory cannot be reported on; nothing
    is written then.
    """
    directory = Path(directory)
    chunks: Iterable[str]
    if (directory / "compare.json").is_file() and detect_kind(directory) == "compare":  # a page of its own
        from judge.report.compare import compare_page, render_compare

        run = load_run(directory)
        assert isinstance(run, CompareRun)
        chunks = [render_compare(compare_page(run), _environment())]
    else:
        chunks = page_chunks(build_page(directory))
    target = Path(out) if out is not None else directory / DEFAULT_NAME
    if target.is_dir():
        raise ReportError(f"{target}: is a folder; give a file name such as {target / DEFAULT_NAME}", field="out")
    old_umask = os.umask(0o077)  # the temporary file is owner-only from the start
    try:
        write_text_atomic(target, chunks)
        os.chmod(target, stat.S_IRUSR | stat.S_IWUSR)  # also when replacing an older, wider report
    except OSError as exc:
        raise ReportError(f"{target}: cannot write the report ({exc.strerror})") from exc
    finally:
        os.umask(old_umask)
    return target
