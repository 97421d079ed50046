"""`trustmh data list | fetch`: the registered data, where each is published, and a checked download.

Registered in judge/cli/main.py as the lazy group ``data``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from judge.cli.suites_cmd import print_published_data
from judge.cli.tables import wrapping_table
from judge.datasets import CACHE_ENV, MIRROR_ENV, REGISTRY_PATH, data_dir, fetch_data, load_registry

data_app = typer.Typer(
    no_args_is_help=True,
    help="Registered datasets: where each is published, and `fetch` to download one, sha256-checked.",
)
console = Console()

RegistryOption = Annotated[
    Path,
    typer.Option("--registry", help="Dataset registry to read (TOML, the format of the bundled data/registry.toml); "
                 "for a private copy of the data or a test server.", show_default="the bundled registry",
                 exists=True, dir_okay=False),
]


@data_app.command("list")
def list_data(registry: RegistryOption = REGISTRY_PATH) -> None:
    """Every registered dataset (in the mirror's layout) and the data published elsewhere, with where it is.

    Example: trustmh data list
    """
    table = wrapping_table(escape(f"Datasets of the mirror's layout ({registry.name} [datasets])"),
                           ["name", "source", "files", "licence", "trustmh data fetch"])
    for dataset in load_registry(registry).values():
        table.add_row(dataset.name, f"{dataset.repository}@{dataset.commit[:12]}", str(len(dataset.files)),
                      dataset.licence, "yes (sha256-checked)")
    console.print(table)
    print_published_data(console)
    console.print(f"Data is read from {data_dir()} ({MIRROR_ENV} when set, else the download cache, {CACHE_ENV}).",
                  markup=False, highlight=False)


@data_app.command("fetch")
def fetch_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A registered dataset, e.g. trustmh-bench.",
                                        show_default=False)],
    registry: RegistryOption = REGISTRY_PATH,
) -> None:
    """Download NAME's files to where the suites read them, each checked against its registered sha256.

    A file already there and matching is kept; a download that does not match is removed and nothing is
    written. Data with no registered file URL or sha256 is refused (exit 2) with where it is published.

    Example: trustmh data fetch trustmh-bench
    """
    fetched = fetch_data(name, registry)
    for item in fetched:
        console.print(f"{item.status}: {item.path}", markup=False, highlight=False)
    downloaded = sum(item.status == "downloaded" for item in fetched)
    console.print(f"{name}: {len(fetched)} file(s) sha256-checked, {downloaded} downloaded, under {data_dir()} "
                  f"(the suites read them from there)", markup=False, highlight=False)
