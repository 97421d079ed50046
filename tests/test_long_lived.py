"""judge.calls.long_lived: start-up objects are built with the cyclic collector paused, then frozen."""

from __future__ import annotations

import gc
import sys
from contextlib import nullcontext

import pytest

from judge.calls.long_lived import first_import_of, long_lived


@pytest.fixture(autouse=True)
def collector_restored():
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


def test_collection_is_paused_inside_and_resumed_after() -> None:
    gc.enable()
    with long_lived():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_what_was_built_inside_is_frozen() -> None:
    gc.enable()
    before = gc.get_freeze_count()
    with long_lived():
        built = [[i] for i in range(1000)]  # tracked containers
    assert gc.get_freeze_count() >= before + len(built)


def test_a_collector_turned_off_by_the_caller_stays_off() -> None:
    gc.disable()
    with long_lived():
        pass
    assert not gc.isenabled()


def test_collection_resumes_when_the_block_raises() -> None:
    gc.enable()
    with pytest.raises(ImportError), long_lived():
        import a_module_that_does_not_exist  # noqa: F401
    assert gc.isenabled()


def test_only_a_first_import_is_paused() -> None:
    assert isinstance(first_import_of("json"), nullcontext) and "json" in sys.modules
    assert not isinstance(first_import_of("a_module_that_does_not_exist"), nullcontext)
    assert not isinstance(first_import_of("json", "a_module_that_does_not_exist"), nullcontext)


@pytest.mark.parametrize("fails", [False, True])
def test_a_run_collects_its_youngest_objects_less_often_and_restores_the_thresholds(tmp_path, fails: bool) -> None:
    from judge.calls.engine import Journal
    from judge.calls.runner import YOUNG_COLLECTION_EVERY, RunProgress, run_calls

    before = gc.get_threshold()
    seen = []

    async def body(files: object) -> str:
        seen.append(gc.get_threshold())
        if fails:
            raise RuntimeError("a run that fails")
        return "done"

    with Journal(tmp_path / "verdicts.jsonl") as journal:
        if fails:
            with pytest.raises(RuntimeError):
                run_calls(tmp_path, journal, RunProgress("judging", 1, True), {}, body)
        else:
            assert run_calls(tmp_path, journal, RunProgress("judging", 1, True), {}, body) == "done"
    assert seen == [(max(before[0], YOUNG_COLLECTION_EVERY), *before[1:])]
    assert gc.get_threshold() == before
