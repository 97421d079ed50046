"""The offline part of `trustmh demo`: audit the crisis dataset's recorded judges against its humans."""

from __future__ import annotations

from rich.console import Console

from calibration.annotations import InputError, load_crisis
from calibration.compute import calibrate
from calibration.outputs import results_table
from judge.datasets import MIRROR_ENV, DatasetError


def print_crisis_calibration(console: Console) -> None:
    """Calibrate gpt-4o-mini, gpt-5-nano, Llama-4-Scout and the jury against H1/H2 and print a table.

    Never raises: without the dataset it prints one line saying how to provide it.
    """
    try:
        data = load_crisis()
    except (DatasetError, InputError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        console.print(f"[yellow]Calibration demo skipped:[/] the llms-mental-health-crisis dataset is not "
                      f"available ({first}). Set {MIRROR_ENV} to a dataset mirror to run it offline.",
                      soft_wrap=True)
        return
    data.judged = [s for s in data.judged if s.criterion == "appropriateness"]
    data.human = [a for a in data.human if a.criterion == "appropriateness"]
    result = calibrate(data, n_bootstrap=0)
    title = "Recorded LLM judges vs two human raters — crisis-response appropriateness (1-5)"
    console.print(results_table(result, title))
    console.print("Source: Arnaiz-Rodriguez et al., JMIR Mental Health 2026 (arXiv:2509.24857). "
                  "Full report: trustmh calibrate --dataset llms-mental-health-crisis", markup=False,
                  highlight=False, soft_wrap=True)  # the command is never broken, so it pastes when piped
