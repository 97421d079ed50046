"""judge.long_lived: start-up objects are built with the cyclic collector paused, then frozen."""

from __future__ import annotations

import gc
import sys
from contextlib import nullcontext

import pytest

from judge.long_lived import first_import_of, long_lived


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
