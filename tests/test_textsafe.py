"""Model output and names cannot change how a report or a markdown table reads (#28 items 9 and 10)."""

from __future__ import annotations

from judge.report.page import Page, Section, Table, text
from judge.report.render import render_page
from judge.suites.scorecard import scorecard_markdown
from judge.textsafe import markdown_safe, visible

HOSTILE = "bot\x00\u202etxt.exe <script>alert(1)</script> &amp; <!-- x -->"


def test_invisible_and_reordering_characters_are_shown_as_code_points() -> None:
    assert visible("a\x00b\u202ec\u2066d\x1b") == "a⟨U+0000⟩b⟨U+202E⟩c⟨U+2066⟩d⟨U+001B⟩"
    assert visible("two\nlines\tand tabs") == "two\nlines\tand tabs"  # layout characters stay


def test_markdown_cannot_open_a_tag_but_comparisons_stay_readable() -> None:
    assert markdown_safe("<b>x</b> & y &amp; qwk<=0.6, a < b") == "&lt;b>x&lt;/b> & y &amp;amp; qwk<=0.6, a < b"
    assert "<!--" not in markdown_safe("<!-- hidden -->")


def _card(target: str) -> dict[str, object]:
    record = {"target": target, "suite": "safety/jailbreak", "metric": "refusal_rate", "group": None, "value": 0.5,
              "ci_low": None, "ci_high": None, "higher_is_better": True, "n": 4}
    unparsed = [{"target": target, "suite": "ethics/reasoning", "id": "e1", "answer": HOSTILE}]
    return {"bootstrap": 0, "seed": 0, "results": [record], "ranks": {}, "pillar_ranks": {}, "unparsed": unparsed}


def test_scorecard_markdown_escapes_names_and_answers() -> None:
    document = scorecard_markdown(_card(HOSTILE))
    assert "<script>" not in document and "<!--" not in document and "\u202e" not in document
    assert "\x00" not in document and "⟨U+202E⟩" in document and "&lt;script>" in document


def test_the_html_report_shows_controls_and_escapes_markup() -> None:
    table = Table("Targets", ["target"], [[text(HOSTILE)]], name="targets")
    section = Section("s", "Section", "run", intro=HOSTILE, nothing=HOSTILE, tables=[table])
    page = Page(title=f"Run {HOSTILE}", kind="score", source="/tmp/x", facts=[("target", HOSTILE)],
                sections=[section], generated="now")
    html = render_page(page)
    assert "\x00" not in html and "\u202e" not in html and "⟨U+0000⟩⟨U+202E⟩" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html


def test_long_labels_lay_out_without_matplotlib_warnings() -> None:
    """matplotlib's 'constrained_layout not applied' warning reached the user's terminal (#28 item 11)."""
    import warnings

    from judge.report.figures import horizontal_bars

    long = "a target named by a whole sentence that goes on and on " * 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = horizontal_bars([long, "short"], [0.4, 0.9], key="long")
    assert svg.startswith("<svg")
