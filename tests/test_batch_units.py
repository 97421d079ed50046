"""The pure parts of `--batch`: what goes into a batch, the batch journal, and what each ended batch
entry becomes in the request log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from judge.calls.batch import BatchJournal, JournalledBatch, answers_for, chunks, first_request_key, requests_to_submit
from judge.calls.client import BatchEntry, _openai_entry
from judge.calls.engine import CallResult
from judge.calls.request_log import RequestLog


@dataclass(frozen=True)
class FakeCall:
    call_id: tuple[str, int]
    request_key: str
    worker_name: str


def test_requests_to_submit_skips_known_logged_in_flight_and_duplicate_calls(tmp_path: Path) -> None:
    calls = [
        FakeCall(("a", 0), "k1", "j1"),
        FakeCall(("b", 0), "k1", "j1"),  # same content as a: asked once
        FakeCall(("c", 0), "k2", "j1"),  # answered already
        FakeCall(("d", 0), "k3", "j2"),  # in a batch not collected yet
        FakeCall(("e", 0), "k4", "j2"),  # its batch answer waits in the request log
        FakeCall(("f", 0), "k5", "j2"),
    ]
    known = [None, None, CallResult(calls[2], None, 1, 1, 0.1, cached=True), None, None, None]
    log = RequestLog(tmp_path / "inflight.jsonl")
    log.offer({first_request_key("k4"): {"batch_answer": {}}})
    chosen = requests_to_submit(calls, known, {"k3"}, log, cache=None)
    assert {name: [c.call_id for c in todo] for name, todo in chosen.items()} == {"j1": [("a", 0)], "j2": [("f", 0)]}
    log.close(finished=False)
    assert RequestLog(tmp_path / "inflight.jsonl").get("k4:0") == {"batch_answer": {}}  # survives a restart


def test_the_batch_journal_survives_a_cut_line_and_knows_what_is_open(tmp_path: Path) -> None:
    journal = BatchJournal.read(tmp_path / "batches.jsonl")
    journal.submitted(JournalledBatch("b1", "j1", ["k1", "k2"]), "openai")
    journal.submitted(JournalledBatch("b2", "j2", ["k3"]), "anthropic")
    journal.collected(journal.batches["b1"], "completed")
    with (tmp_path / "batches.jsonl").open("a") as handle:
        handle.write('{"event": "submitted", "batch_id": "b3", "wor')  # killed mid-line
    again = BatchJournal.read(tmp_path / "batches.jsonl")
    assert [b.batch_id for b in again.open_batches()] == ["b2"] and again.in_flight() == {"k3"}
    assert (tmp_path / "batches.jsonl").stat().st_mode & 0o777 == 0o600


def test_each_entry_of_an_ended_batch_becomes_an_answer_or_a_live_failure_reason() -> None:
    batch = JournalledBatch("b1", "j1", ["ok", "limited", "gone"])
    entries = [BatchEntry("ok", {"id": "x"}), BatchEntry("limited", None, "rate_limited", "HTTP 429 slow down")]
    logged = answers_for(batch, entries, "expired", "A", "E")
    assert logged == {
        "ok:0": {"A": {"id": "x"}},
        "limited:0": {"E": {"reason": "rate_limited", "message": "HTTP 429 slow down"}},
        "gone:0": {"E": {"reason": "expired", "message": "batch b1 ended (expired) without an answer to this request"}},
    }
    failed = answers_for(JournalledBatch("b2", "j1", ["x"]), [], "failed", "A", "E")
    assert failed["x:0"]["E"]["reason"] == "bad_request"


def test_openai_output_and_error_lines_map_like_live_answers() -> None:
    ok = {"custom_id": "a", "response": {"status_code": 200, "body": {"id": "c"}}, "error": None}
    assert _openai_entry(ok) == BatchEntry("a", {"id": "c"})
    busy = {"custom_id": "b", "response": {"status_code": 503, "body": {"error": {"message": "busy"}}}, "error": None}
    assert _openai_entry(busy) == BatchEntry("b", None, "server_error", "HTTP 503 busy")
    denied = {"custom_id": "c", "response": {"status_code": 401, "body": {"error": {"message": "no"}}}, "error": None}
    assert _openai_entry(denied).reason == "auth"
    expired = {"custom_id": "d", "response": None, "error": {"code": "batch_expired", "message": "too late"}}
    assert _openai_entry(expired) == BatchEntry("d", None, "expired", "batch_expired: too late")


def test_chunks_respect_the_providers_limits() -> None:
    assert [list(c) for c in chunks(list(range(5)), 2)] == [[0, 1], [2, 3], [4]]
