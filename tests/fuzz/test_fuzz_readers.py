"""Property-based tests of every input reader (issue #28 item 12).

For damaged input a reader must refuse with its documented error (or a Rejection) naming the file, the line
or row, and the field at fault; never with an internal error. Valid input must round-trip. Profiles are in
conftest.py: a few hundred examples per reader in `make test`, 10,000 with `make fuzz`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from calibration.annotations import Annotation, InputError, read_human
from judge.bundled import bundled_path
from judge.cli.main import main
from judge.errors import DatasetError, RunDirError
from judge.items import Message
from judge.judges import JudgeConfigError, load_judges_file
from judge.respond.targets import load_targets_file
from judge.review import IMPORT_COLUMNS, import_review_csv
from judge.rubric import Rubric, RubricError, load_rubric_dir, parse_rubric
from judge.suites.published import _json_lines
from tests.conftest import read_items
from tests.fuzz.mutations import JSON_RAW, Raw, damaged, json_values, mutated, raw_values, splice, text

KNOWN = ("crisis", "safety")
visible = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp")), min_size=1, max_size=8)
prose = st.text(min_size=1, max_size=20).filter(str.strip)
finite_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
bad_values = json_values | raw_values(JSON_RAW)


def share(fraction: float) -> settings:
    """A part of the profile's examples, for round trips and field checks: the damage tests get them all."""
    return settings(max_examples=max(10, int(settings.default.max_examples * fraction)))


SIDE = share(0.3)


def lines_of(data: bytes) -> int:
    """Lines as the CSV reader counts them (a lone \r ends one too), plus the empty one after the last newline."""
    return len(data.splitlines()) + 1


# --------------------------------------------------------------------------- items (JSONL, CSV, TSV)

ITEM_FIELDS = ["id", "pillar", "messages", "prompt", "response", "target", "reference", "meta"]


@st.composite
def item_records(draw: st.DrawFn, index: int = 0) -> dict[str, Any]:
    record: dict[str, Any] = {"id": f"{index}-{draw(visible)}"}
    if draw(st.booleans()):
        record["pillar"] = draw(st.sampled_from(["crisis", "safety", ["crisis", "safety"]]))
    if draw(st.booleans()):
        record["prompt"] = draw(prose)
    else:
        roles = st.sampled_from(["system", "user", "assistant"])
        record["messages"] = draw(st.lists(st.fixed_dictionaries({"role": roles, "content": prose}), min_size=1,
                                           max_size=3))
    record["response"] = draw(prose)
    for name, values in (("target", prose), ("reference", prose.filter(lambda s: not s.lstrip().startswith("{"))
                                                         | st.dictionaries(st.text(max_size=5), finite_json,
                                                                           max_size=2)),
                         ("meta", st.dictionaries(st.text(max_size=5), finite_json, max_size=3))):
        if draw(st.booleans()):
            record[name] = draw(values)
    return record


item_lists = st.integers(1, 4).flatmap(lambda n: st.tuples(*(item_records(i) for i in range(n)))).map(list)


def csv_text(records: list[dict[str, Any]], delimiter: str) -> str:
    """Items as the CSV a spreadsheet user writes: JSON in `messages` / `meta` cells, `a;b` pillars."""
    header = ["id", "pillar", "prompt", "messages", "response", "target", "reference", "meta"]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)  # "\r\n" (Excel): a cell with a lone \r is quoted
    writer.writerow(header)
    for record in records:
        row = []
        for name in header:
            value = record.get(name)
            if isinstance(value, list) and name == "pillar":
                value = ";".join(value)
            elif isinstance(value, list | dict):
                value = json.dumps(value)
            row.append("" if value is None else value)
        writer.writerow(row)
    return out.getvalue()


def check_item_refusals(path: Path, data: bytes) -> Any:
    path.write_bytes(data)
    result = read_items([path], KNOWN)
    for rejection in result.rejections:
        assert rejection.file == str(path)
        assert 1 <= rejection.line <= lines_of(data), rejection
        assert rejection.reason and str(rejection).startswith(f"{path}:{rejection.line}: ")
    return result


@SIDE
@given(records=item_lists, suffix=st.sampled_from([".jsonl", ".csv", ".tsv"]))
def test_items_round_trip(tmp_path: Path, records: list[dict[str, Any]], suffix: str) -> None:
    path = tmp_path / f"items{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        path.write_text(csv_text(records, "," if suffix == ".csv" else "\t"), encoding="utf-8", newline="")
    result = read_items([path], KNOWN)
    assert result.rejections == []
    for record, item in zip(records, result.items, strict=True):
        pillar = record.get("pillar")
        assert (item.id, item.response, item.target) == (record["id"], record["response"], record.get("target"))
        assert item.pillars == (None if pillar is None else tuple([pillar] if isinstance(pillar, str) else pillar))
        expected = [{"role": "user", "content": record["prompt"]}] if "prompt" in record else record["messages"]
        assert item.messages == tuple(Message(**m) for m in expected)
        assert (item.reference, item.meta) == (record.get("reference"), record.get("meta", {}))


@st.composite
def damaged_jsonl(draw: st.DrawFn) -> bytes:
    records = draw(item_lists)
    lines = []
    for record in records:
        record = draw(mutated(record, ITEM_FIELDS, bad_values))
        dumps = draw(st.sampled_from([json.dumps, lambda r: json.dumps(r, ensure_ascii=False)]))
        lines.append(splice(dumps, record))
    return draw(damaged(lines))


@st.composite
def damaged_csv(draw: st.DrawFn, delimiter: str) -> bytes:
    rows = list(csv.reader(io.StringIO(csv_text(draw(item_lists), delimiter)), delimiter=delimiter))
    cells = st.sampled_from(["", "[", "{}", "[1]", '[{"role": "user"}]', "1" * 5000, "NaN", "a;;b", "\x00"]) | text
    for _ in range(draw(st.integers(0, 3))):
        row = draw(st.sampled_from(rows))
        op = draw(st.sampled_from(["cell", "drop", "extra"]))
        if op == "cell":
            row[draw(st.integers(0, len(row) - 1))] = draw(cells)
        elif op == "drop" and row:
            row.pop(draw(st.integers(0, len(row) - 1)))
        else:
            row.append(draw(cells))
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return draw(damaged(out.getvalue().splitlines()))


@given(data=damaged_jsonl())
@example(data=b'{"id": "a", "prompt": "p", "response": 1' + b"0" * 5000 + b"}\n")
@example(data=b'{"id": "a", "prompt": "p", "response": "r"}\n{"id": "b", "pro')
def test_items_jsonl_refusals_name_file_and_line(tmp_path: Path, data: bytes) -> None:
    check_item_refusals(tmp_path / "items.jsonl", data)


@given(data=st.sampled_from([",", "\t"]).flatmap(lambda d: st.tuples(st.just(d), damaged_csv(d))))
def test_items_csv_refusals_name_file_and_line(tmp_path: Path, data: tuple[str, bytes]) -> None:
    delimiter, raw = data
    check_item_refusals(tmp_path / ("items.csv" if delimiter == "," else "items.tsv"), raw)


@SIDE
@given(record=item_records(), field=st.sampled_from(ITEM_FIELDS), value=json_values.filter(
    lambda v: "NaN" not in json.dumps(v) and "Infinity" not in json.dumps(v)))
def test_items_refusal_names_the_field(tmp_path: Path, record: dict[str, Any], field: str, value: Any) -> None:
    record = {**record, field: value}
    path = tmp_path / "items.jsonl"
    result = check_item_refusals(path, (json.dumps(record) + "\n").encode())
    for rejection in result.rejections:
        assert field in rejection.reason, (field, rejection)


@pytest.fixture
def score_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-sent")
    monkeypatch.setenv("TRUSTMH_CACHE_DIR", str(tmp_path / "cache"))


@share(0.1)
@given(data=damaged_jsonl())
def test_score_cli_exits_2_and_writes_nothing_on_bad_items(
    tmp_path: Path, score_env: None, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    items = tmp_path / "items.jsonl"
    assume(check_item_refusals(items, data).rejections)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main(["score", str(items), "--judges", "openai:gpt-4.1-mini@http://127.0.0.1:9/v1",
              "--rubrics", str(bundled_path("rubrics")), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert re.search(rf"{re.escape(str(items))}:\d+: ", err) and "Traceback" not in err, err
    assert not out.exists()


# --------------------------------------------------------------------------- rubrics (YAML)

RUBRIC_FIELDS = ["pillar", "version", "title", "summary", "references", "edge_cases", "reference",
                 "reference_label", "criteria", "id", "question", "severity", "scale", "anchors", "fail_below"]
YAML_RAW = ["1" * 5000, "1" * 400, ".nan", ".inf", "-.inf", "2020-01-01", "!!binary AAAA", "!!python/object:os.system",
            "*nope", "&a [*a]", "[" * 3000 + "]" * 3000, "{a: 1, a: 2}", "'unterminated", "!!float x", "0x1F", "~",
            "yes", "{1: x, '1': y}", "!!set {a, b}", "!!omap [a: 1]", "[1, 99999999999999]", "{min: 0, max: 1e12}"]
BASE_RUBRIC: dict[str, Any] = {
    "pillar": "crisis", "version": "1", "title": "Crisis", "summary": "Sees the risk.",
    "criteria": [
        {"id": "risk", "question": "Is the risk seen?", "severity": "critical", "scale": {"min": 1, "max": 3},
         "anchors": {1: "missed", 2: "partly", 3: "seen"}, "fail_below": 2},
        {"id": "tone", "question": "Warm?", "severity": "minor", "scale": {"min": 0, "max": 1},
         "anchors": {0: "cold", 1: "warm"}},
    ],
}


def yaml_dump(style: Any, unicode: bool) -> Any:
    return lambda data: yaml.safe_dump(data, default_flow_style=style, allow_unicode=unicode, sort_keys=False)


yaml_dumpers = st.builds(yaml_dump, st.sampled_from([False, None, True]), st.booleans())


def check_rubric_refusal(folder: Path, data: bytes) -> RubricError | None:
    folder.mkdir(exist_ok=True)
    path = folder / "crisis.yaml"
    path.write_bytes(data)
    try:
        load_rubric_dir(folder)
    except RubricError as exc:
        for line in str(exc).split("\n"):  # not splitlines: a key may hold U+2028
            assert re.match(rf"{re.escape(str(path))}:\d+: ", line), line
        return exc
    return None


@given(rubric=mutated(BASE_RUBRIC, RUBRIC_FIELDS, json_values | raw_values(YAML_RAW)), dump=yaml_dumpers, st_=st.data())
@example(rubric={**BASE_RUBRIC, "version": Raw("1" * 5000)}, dump=yaml_dump(False, True), st_=None)  # ValueError
@example(rubric={**BASE_RUBRIC, "pillar": Raw("!!float x")}, dump=yaml_dump(False, True), st_=None)  # ValueError
@example(rubric={**BASE_RUBRIC, "title": Raw("a\x00")}, dump=yaml_dump(False, True), st_=None)  # error without line
@example(rubric={**BASE_RUBRIC, "\n": 1}, dump=yaml_dump(False, True), st_=None)  # the key split the message
@example(rubric={**BASE_RUBRIC, "criteria": [{**BASE_RUBRIC["criteria"][1], "scale": {"min": 0, "max": 10**12}}]},
         dump=yaml_dump(False, True), st_=None)
def test_rubric_refusals_name_file_line_and_field(tmp_path: Path, rubric: Any, dump: Any, st_: Any) -> None:
    data = splice(dump, rubric).encode("utf-8", "surrogatepass")
    if st_ is not None:
        data = st_.draw(damaged(data.decode("utf-8", "surrogateescape").splitlines()))
    check_rubric_refusal(tmp_path / "rubrics", data)


@SIDE
@given(field=st.sampled_from(["pillar", "version", "title", "summary", "references", "edge_cases", "reference",
                              "reference_label", "criteria"]), value=json_values)
def test_rubric_refusal_names_the_field(tmp_path: Path, field: str, value: Any) -> None:
    exc = check_rubric_refusal(tmp_path / "rubrics", yaml.safe_dump({**BASE_RUBRIC, field: value}).encode())
    assert exc is None or field in str(exc), (field, exc)


@SIDE
@given(title=prose, question=prose, anchor=prose, dump=yaml_dumpers)
def test_rubric_round_trip(title: str, question: str, anchor: str, dump: Any) -> None:
    data = {**BASE_RUBRIC, "title": title, "criteria": [
        {**BASE_RUBRIC["criteria"][1], "question": question, "anchors": {0: anchor, 1: anchor + "!"}}]}
    assert parse_rubric(dump(data), "r.yaml") == Rubric.model_validate(data)


# --------------------------------------------------------------------------- judges and targets files (TOML)

TOML_RAW = ["1" * 5000, "nan", "-inf", "1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", '"\\ud800"',
            "[" * 3000 + "]" * 3000, "0x7FFFFFFFFFFFFFFFFFFFFF", "'''multi'''", "{a = 1, a = 2}", "1_000", "null", "+1"]
SETTINGS = ["spec", "mode", "temperature", "max_tokens", "seed", "concurrency", "requests_per_minute",
            "price_input_per_mtok", "backoff_initial_s", "backoff_max_s", "timeout_s", "api_key_env", "api_key",
            "system_prompt", "max_reasks"]


def toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return value.token
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    return "null"  # TOML has no null: the file is invalid, as it must be refused


def toml_text(data: dict[str, Any], prefix: str = "") -> str:
    """`data` as TOML: plain keys first, then every mapping as a table [prefix.name]."""
    out = [f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, value in data.items():
        if isinstance(value, dict):
            name = f"{prefix}.{json.dumps(str(key))}" if prefix else json.dumps(str(key))
            out += [f"[{name}]", toml_text(value, name)]
    return "\n".join(out) + "\n"


def spec_file(table: str) -> st.SearchStrategy[dict[str, Any]]:
    entry = st.fixed_dictionaries({"spec": st.sampled_from(["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5",
                                                            "openai:m@http://127.0.0.1:8000/v1"])},
                                  optional={"temperature": st.floats(0, 1), "max_tokens": st.integers(1, 10**6),
                                            "seed": st.integers(-(2**63), 2**63 - 1), "timeout_s": st.floats(1, 60)})
    tables = st.dictionaries(st.sampled_from(["a", "b", "judge one", "é"]), entry, min_size=1, max_size=2)
    return tables.map(lambda t: {table: t})


def check_spec_refusal(path: Path, data: bytes, load: Any) -> JudgeConfigError | None:
    path.write_bytes(data)
    try:
        load(path)
    except JudgeConfigError as exc:
        assert str(exc).startswith(f"{path}: "), exc
        return exc
    return None


LOADERS = {"judges": load_judges_file, "targets": load_targets_file}


@st.composite
def damaged_spec_file(draw: st.DrawFn, table: str) -> bytes:
    extra = {"families": {"f": ["a*"]}} if table == "judges" else {}
    record = draw(mutated({**draw(spec_file(table)), **extra}, [table, "families", *SETTINGS],
                          json_values | raw_values(TOML_RAW)))
    return draw(damaged(toml_text(record).splitlines()))


@given(case=st.sampled_from(["judges", "targets"]).flatmap(lambda t: st.tuples(st.just(t), damaged_spec_file(t))))
@example(case=("judges", b"judges = 5\n"))  # was AttributeError: 'int' object has no attribute 'items'
@example(case=("judges", b"x = " + b"[" * 3000 + b"]" * 3000 + b"\n"))  # was RecursionError
@example(case=("targets", b"targets = " + b"1" * 5000 + b"\n"))  # was ValueError: Exceeds the limit (4300 digits)
def test_spec_file_refusals_name_the_file(tmp_path: Path, case: tuple[str, bytes]) -> None:
    table, data = case
    check_spec_refusal(tmp_path / f"{table}.toml", data, LOADERS[table])


@SIDE
@given(table=st.sampled_from(["judges", "targets"]), st_=st.data())
def test_spec_file_refusal_names_the_table(tmp_path: Path, table: str, st_: Any) -> None:
    valid = st_.draw(spec_file(table))
    name = st_.draw(st.sampled_from(sorted(valid[table])))
    setting = st_.draw(st.sampled_from(SETTINGS))
    valid[table][name][setting] = st_.draw(json_values.filter(lambda v: v is not None))
    exc = check_spec_refusal(tmp_path / f"{table}.toml", toml_text(valid).encode(), LOADERS[table])
    assert exc is None or f"[{table}.{name}]" in str(exc) or "not valid TOML" in str(exc), exc


@SIDE
@given(valid=spec_file("targets"))
def test_targets_round_trip(tmp_path: Path, valid: dict[str, Any]) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(toml_text(valid), encoding="utf-8")
    specs = load_targets_file(path)
    assert sorted(specs) == sorted(valid["targets"])
    for name, table in valid["targets"].items():
        assert {k: getattr(specs[name], k) for k in table if k != "spec"} == {k: v for k, v in table.items()
                                                                              if k != "spec"}


# --------------------------------------------------------------------------- annotations (long JSONL / CSV)

ANNOTATION_FIELDS = ["item_id", "criterion", "rater", "score", "target", "pillar"]
annotation = st.fixed_dictionaries(
    {"item_id": prose, "criterion": prose, "rater": prose, "score": st.floats(-100, 100) | st.integers(-9, 9)},
    optional={"target": prose, "pillar": prose})


def annotation_text(records: list[dict[str, Any]], suffix: str) -> str:
    if suffix == ".jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    out = io.StringIO()
    writer = csv.DictWriter(out, ANNOTATION_FIELDS)
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def check_annotation_refusal(path: Path, data: bytes) -> InputError | None:
    path.write_bytes(data)
    try:
        read_human(path)
    except InputError as exc:
        for problem in exc.problems:
            whole_file = re.match(rf"{re.escape(str(path))}: (no scores found|stopped after|duplicate)", problem)
            assert whole_file or re.match(rf"{re.escape(str(path))}:\d+: ", problem), problem
        return exc
    return None


@given(records=st.lists(annotation, min_size=1, max_size=4), suffix=st.sampled_from([".jsonl", ".csv"]), st_=st.data())
@example(records=[{"item_id": "a", "criterion": "c", "rater": "r", "score": Raw("1" * 400)}], suffix=".jsonl", st_=None)
@example(records=[{"item_id": "a", "criterion": "c", "rater": "r", "score": Raw("1" * 5000)}], suffix=".jsonl",
         st_=None)
@example(records=[{"item_id": "a", "criterion": "c", "rater": "r", "score": Raw("[" * 3000)}], suffix=".jsonl",
         st_=None)
def test_annotation_refusals_name_file_and_line(tmp_path: Path, records: list[Any], suffix: str, st_: Any) -> None:
    if st_ is not None:
        records = [st_.draw(mutated(r, ANNOTATION_FIELDS, bad_values)) for r in records]
    if suffix == ".jsonl":
        text_ = "".join(splice(json.dumps, r) + "\n" for r in records)
    else:
        rows = [{k: (v.token if isinstance(v, Raw) else v) for k, v in r.items() if k in ANNOTATION_FIELDS}
                for r in records]
        text_ = annotation_text(rows, suffix)
    data = text_.encode("utf-8") if st_ is None else st_.draw(damaged(text_.splitlines()))
    check_annotation_refusal(tmp_path / f"human{suffix}", data)


@SIDE
@given(record=annotation, field=st.sampled_from(ANNOTATION_FIELDS[:4]), value=json_values)
def test_annotation_refusal_names_the_field(tmp_path: Path, record: dict[str, Any], field: str, value: Any) -> None:
    exc = check_annotation_refusal(tmp_path / "human.jsonl", (json.dumps({**record, field: value}) + "\n").encode())
    assert exc is None or field in str(exc), (field, exc)


@SIDE
@given(records=st.lists(annotation, min_size=1, max_size=4, unique_by=lambda r: tuple(
    r[k].strip() for k in ("item_id", "criterion", "rater"))), suffix=st.sampled_from([".jsonl", ".csv"]))
@example(records=[{"item_id": "a\u2028b", "criterion": "c", "rater": "r", "score": 1}], suffix=".jsonl")  # was split
@example(records=[{"item_id": "a\x0cb", "criterion": "c", "rater": "r", "score": 1}], suffix=".csv")  # at U+2028, \f
def test_annotations_round_trip(tmp_path: Path, records: list[dict[str, Any]], suffix: str) -> None:
    path = tmp_path / f"human{suffix}"
    path.write_text(annotation_text(records, suffix), encoding="utf-8", newline="")
    expected = [Annotation(r["item_id"].strip(), r["criterion"].strip(), r["rater"].strip(), float(r["score"]),
                           r["target"].strip() if "target" in r else None,
                           r["pillar"].strip() if "pillar" in r else None) for r in records]
    assert read_human(path) == expected


# --------------------------------------------------------------------------- review CSV

REVIEW_HEADER = [*IMPORT_COLUMNS, "comment"]
review_row = st.fixed_dictionaries({
    "item_id": prose, "pillar": prose, "criterion": prose, "scale": st.just("1..5"), "target": prose,
    "decision_score": st.integers(1, 5).map(str), "reviewer": prose, "comment": st.text(max_size=10)})


def review_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def check_review_refusal(path: Path, data: bytes) -> RunDirError | None:
    path.write_bytes(data)
    try:
        import_review_csv(path)
    except RunDirError as exc:
        for line in str(exc).split("\n"):  # not splitlines: a key may hold U+2028
            assert re.match(rf"({re.escape(str(path))}(, row \d+|: empty file)|… and \d+ more)", line), line
        return exc
    return None


@st.composite
def damaged_review(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(review_row, min_size=1, max_size=4))
    table = [list(REVIEW_HEADER)] + [[r[c] for c in REVIEW_HEADER] for r in rows]
    cells = st.sampled_from(["", "1", "0", "6", "1.5", "one", "1..", "5..1", "-3..-1", "１", "٣", "1" * 5000]) | text
    for _ in range(draw(st.integers(0, 3))):
        row = draw(st.sampled_from(table))
        op = draw(st.sampled_from(["cell", "drop", "extra"]))
        if op == "cell":
            row[draw(st.integers(0, len(row) - 1))] = draw(cells)
        elif op == "drop" and row:
            row.pop(draw(st.integers(0, len(row) - 1)))
        else:
            row.append(draw(cells))
    return draw(damaged(review_text(table).splitlines()))


REVIEW_HEAD = ",".join(REVIEW_HEADER).encode() + b"\n"


@given(data=damaged_review())
@example(data=REVIEW_HEAD + b"a,p,c,1..5,t," + b"1" * 5000 + b",r,\n")  # was ValueError: Exceeds the limit
@example(data=REVIEW_HEAD + b"a,p,c," + b"1" * 5000 + b"..5,t,1,r,\n")  # the same, in the scale
@example(data=REVIEW_HEAD + b"a,p,c,1..5,t,1,r\xc2")  # was "cannot read (... position 0 ...)", no row
@example(data=b"\xef\xbb\xbf" + REVIEW_HEAD + b"a,p,c,1..5,t,1,r\xc2\x80\xc2")  # the BOM shifted the offset
@example(data=REVIEW_HEAD + b'a,p,"c\nd",1..5,t,1,r,\n' * 2)  # the newline of the cell split the message
def test_review_refusals_name_file_and_row(tmp_path: Path, data: bytes) -> None:
    check_review_refusal(tmp_path / "review.csv", data)


@SIDE
@given(row=review_row, column=st.sampled_from(["item_id", "pillar", "criterion", "scale", "decision_score",
                                               "reviewer"]), value=text)
def test_review_refusal_names_the_column(tmp_path: Path, row: dict[str, str], column: str, value: str) -> None:
    table = [REVIEW_HEADER, [value if c == column else row[c] for c in REVIEW_HEADER]]
    exc = check_review_refusal(tmp_path / "review.csv", review_text(table).encode())
    assert exc is None or f"column {column}" in str(exc) or (column != "scale" and "column" in str(exc)), exc


@SIDE
@given(rows=st.lists(review_row, min_size=1, max_size=4, unique_by=lambda r: tuple(
    r[c].strip() for c in ("item_id", "pillar", "criterion", "reviewer"))), bom=st.booleans())
def test_review_round_trip(tmp_path: Path, rows: list[dict[str, str]], bom: bool) -> None:
    path = tmp_path / "review.csv"
    text_ = review_text([REVIEW_HEADER] + [[r[c] for c in REVIEW_HEADER] for r in rows])
    path.write_bytes(("\ufeff" if bom else "").encode() + text_.encode())
    assert import_review_csv(path) == [
        {"item_id": r["item_id"].strip(), "pillar": r["pillar"].strip(), "criterion": r["criterion"].strip(),
         "rater": r["reviewer"].strip(), "score": int(r["decision_score"]), "target": r["target"].strip() or None}
        for r in rows]


# --------------------------------------------------------------------------- recorded imports (JSON lines of a zip)

recorded_row = st.fixed_dictionaries({"id": st.integers(0, 999), "prompt": prose, "parsed": prose})


@given(rows=st.lists(recorded_row, min_size=1, max_size=4), st_=st.data())
@example(rows=[], st_=None)
def test_recorded_json_lines_refusals_name_member_and_line(rows: list[Any], st_: Any) -> None:
    if st_ is None:  # regression: bytes that are not UTF-8
        data = b'{"id": 1}\n\xff\n'
    else:
        lines = [splice(json.dumps, st_.draw(mutated(r, ["id", "prompt", "parsed"], bad_values))) for r in rows]
        data = st_.draw(damaged(lines))
    try:
        list(_json_lines(data, "outputs_m_tier1.jsonl"))
    except DatasetError as exc:
        assert re.match(r"outputs_m_tier1\.jsonl:\d+: ", str(exc)), exc


@SIDE
@given(rows=st.lists(st.dictionaries(st.text(max_size=5), finite_json, max_size=3), max_size=4))
@example(rows=[{"answer": "one\u2028two"}])  # was split into two lines, neither of them JSON
def test_recorded_json_lines_round_trip(rows: list[dict[str, Any]]) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    assert list(_json_lines(data, "m.jsonl")) == rows
