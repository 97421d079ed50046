"""The offline part of `trustmh demo`: audit the crisis dataset's recorded judges against its humans."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from calibration.annotations import InputError, load_crisis
from calibration.compute import calibrate
from calibration.registry import MIRROR_ENV, DatasetError

COLUMNS = (("qwk", "QWK"), ("spearman", "Spearman"), ("icc_a1", "ICC(A,1)"), ("mae", "MAE"),
           ("bias", "bias"), ("within1", "within-1"), ("alpha_ordinal_with_judge", "α ord. +judge"),
           ("self_consistency", "self-cons."))


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
    humans = next((r for r in result.records if r.judge is None and r.metric == "alpha_ordinal"), None)
    title = "Recorded LLM judges vs two human raters — crisis-response appropriateness (1-5)"
    table = Table(title=title, caption=(f"humans' own α (ordinal) = {humans.value:.3f}, n = {humans.n} items"
                                        if humans and humans.value is not None else None))
    table.add_column("judge")
    for _, header in COLUMNS:
        table.add_column(header, justify="right")
    for judge in sorted({r.judge for r in result.records if r.judge}):
        cells = []
        for metric, _ in COLUMNS:
            record = next((r for r in result.records if r.judge == judge and r.metric == metric
                           and r.against is None), None)
            cells.append("—" if record is None or record.value is None else f"{record.value:.3f}")
        table.add_row(judge, *cells)
    console.print(table)
    console.print("Source: Arnaiz-Rodriguez et al., JMIR Mental Health 2026 (arXiv:2509.24857). "
                  "Full report: trustmh calibrate --dataset llms-mental-health-crisis")
