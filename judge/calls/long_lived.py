"""Objects built once that live as long as the process: modules, classes, an SDK's hundreds of types.

Building them allocates hundreds of thousands of objects, and CPython's cyclic collector, which runs
every few hundred allocations, scans the ones already built again and again while they are being
built: about a tenth of a second of `trustmh score`'s start-up, before its first request. None of
them is garbage, so collection is paused while they are built, and `gc.freeze` then moves them out
of the collector's view: later collections do not scan them again (until `gc.unfreeze`, which
judge.calls.runner.run_calls calls once a run's calls are done). The objects are freed as usual when
nothing refers to them; only a reference cycle created inside the block would outlive its use, so
the block should build what lasts (imports, clients), nothing else.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext


@contextmanager
def long_lived() -> Iterator[None]:
    """Build long-lived objects with the cyclic collector paused, then freeze them (see the module)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def first_import_of(*modules: str) -> AbstractContextManager[None]:
    """`long_lived()` while one of `modules` is not imported yet (a first import is the costly one), else
    nothing: a process that builds many clients freezes the objects of its start-up only once."""
    return nullcontext() if all(module in sys.modules for module in modules) else long_lived()
