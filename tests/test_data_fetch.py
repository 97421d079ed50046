"""`trustmh data fetch` against a loopback HTTP server (a registry written by the test points at it), the
registry's `[published]` entries, and a suite built from a fetched file."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rich.console import Console

from judge import datasets
from judge.datasets import DatasetError, get_dataset, load_published
from judge.suites.catalogue import SUITES

MIRROR = Path(os.environ.get("TRUSTMH_DATA_MIRROR")
              or Path(__file__).resolve().parents[1].parent / "shared" / "datasets")
PSYHARM = "dataset/PsyHarm.csv"
GOOD = b"id,text\n1,hello\n"


class _Files(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}  # each server gets its own (the fixture subclasses)
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Files]]]:
    handler = type("Files", (_Files,), {"files": {}, "hits": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _published(name: str, url: str | None, sha: str | None) -> str:
    lines = [f"[published.{name}]", 'title = "test data"', 'page = "https://example.org/record/1"',
             'named_by = "the test"', "suites = []"]
    lines += [f'url = "{url}"'] if url else []
    lines += [f'sha256 = "{sha}"'] if sha else []
    return "\n".join(lines) + "\n\n"


@pytest.fixture
def registry(tmp_path: Path, server: tuple[str, type[_Files]], monkeypatch: pytest.MonkeyPatch) -> Path:
    base, handler = server
    handler.files["/good.bin"] = GOOD
    handler.files["/bad.bin"] = b"an error page, not the data\n"
    path = tmp_path / "registry.toml"
    path.write_text(_published("good", f"{base}/good.bin", _sha(GOOD))
                    + _published("bad", f"{base}/bad.bin", _sha(GOOD))
                    + _published("gone", f"{base}/gone.bin", _sha(GOOD))
                    + _published("nourl", None, _sha(GOOD))
                    + _published("nosha", f"{base}/good.bin", None), encoding="utf-8")
    monkeypatch.setenv("TRUSTMH_DATA_MIRROR", str(tmp_path / "data"))
    return path


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_fetch_checks_the_sha256_and_writes_an_owner_only_file(run_cli: Any, registry: Path, tmp_path: Path,
                                                                server: tuple[str, type[_Files]]) -> None:
    result = run_cli("data", "fetch", "good", "--registry", registry)
    assert result.code == 0, result.stderr
    local = tmp_path / "data" / "good" / "good.bin"
    assert local.read_bytes() == GOOD
    assert local.stat().st_mode & 0o777 == 0o600
    assert _leftovers(tmp_path / "data") == [local], "no temporary file is left beside it"
    assert "downloaded:" in result.stdout
    again = run_cli("data", "fetch", "good", "--registry", registry)
    assert again.code == 0 and "present:" in again.stdout
    assert server[1].hits == ["/good.bin"], "a file already there and matching is not downloaded again"


def test_a_mismatching_download_is_refused_and_removed(run_cli: Any, registry: Path, tmp_path: Path) -> None:
    result = run_cli("data", "fetch", "bad", "--registry", registry)
    assert result.code == 2
    assert "/bad.bin: the download's sha256" in result.stderr and "does not match the registry's" in result.stderr
    assert "it was removed and nothing was written" in result.stderr
    assert _leftovers(tmp_path / "data") == []


def test_a_mismatching_download_never_replaces_a_file_already_there(registry: Path, tmp_path: Path) -> None:
    local = tmp_path / "data" / "bad" / "bad.bin"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"the user's own copy\n")
    with pytest.raises(DatasetError, match="does not match"):
        datasets.fetch_data("bad", registry)
    assert local.read_bytes() == b"the user's own copy\n" and _leftovers(tmp_path / "data") == [local]


def test_a_404_is_refused_and_leaves_nothing(run_cli: Any, registry: Path, tmp_path: Path) -> None:
    result = run_cli("data", "fetch", "gone", "--registry", registry)
    assert result.code == 2
    assert "/gone.bin: HTTP 404 Not Found" in result.stderr
    assert _leftovers(tmp_path / "data") == []


@pytest.mark.parametrize(("name", "lacking"), [("nourl", "url"), ("nosha", "sha256")])
def test_no_url_or_no_sha256_is_refused_with_where_it_is_published(
        run_cli: Any, registry: Path, tmp_path: Path, name: str, lacking: str,
        server: tuple[str, type[_Files]]) -> None:
    result = run_cli("data", "fetch", name, "--registry", registry)
    assert result.code == 2
    assert f"has no {lacking} for it" in result.stderr
    assert "published at https://example.org/record/1 (the test)" in result.stderr
    assert "TRUSTMH_DATA_MIRROR" in result.stderr
    assert server[1].hits == [] and _leftovers(tmp_path / "data") == []


def test_an_unknown_name_lists_the_registered_ones(run_cli: Any, registry: Path) -> None:
    result = run_cli("data", "fetch", "nope", "--registry", registry)
    assert result.code == 2 and "unknown dataset 'nope'" in result.stderr and "good" in result.stderr


def test_the_bundled_registry_refuses_c_ssrs_and_says_it_is_on_zenodo(run_cli: Any, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTMH_DATA_MIRROR", str(tmp_path / "data"))
    result = run_cli("data", "fetch", "c-ssrs")
    assert result.code == 2
    assert "https://zenodo.org/records/2667859" in result.stderr and "not in the dataset mirror" in result.stderr
    bundle = run_cli("data", "fetch", "authors-robustness")
    assert bundle.code == 2 and "has no sha256 for it" in bundle.stderr
    assert "9dca9e347294f46fbdb43ac1ae5f9b851a802262" in bundle.stderr, "the git blob id to check a copy by hand"


@pytest.mark.skipif(not (MIRROR / "trustmh-bench" / PSYHARM).is_file(), reason="no dataset mirror")
def test_a_suite_runs_from_the_fetched_file(run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            server: tuple[str, type[_Files]]) -> None:
    base, handler = server
    bench = get_dataset("trustmh-bench")
    handler.files[f"/tmh/{PSYHARM}"] = (MIRROR / "trustmh-bench" / PSYHARM).read_bytes()
    registry = tmp_path / "registry.toml"
    registry.write_text(f'[datasets.trustmh-bench]\nrepository = "{bench.repository}"\ncommit = "{bench.commit}"\n'
                        f'licence = "MIT"\ncitation = "test"\nfiles_url = "{base}/tmh/"\n\n'
                        f'[datasets.trustmh-bench.files]\n"{PSYHARM}" = "{bench.files[PSYHARM]}"\n', encoding="utf-8")
    monkeypatch.delenv("TRUSTMH_DATA_MIRROR", raising=False)
    monkeypatch.setenv("TRUSTMH_DATA_CACHE", str(tmp_path / "cache"))
    fetched = run_cli("data", "fetch", "trustmh-bench", "--registry", registry)
    assert fetched.code == 0, fetched.stderr
    local = tmp_path / "cache" / "trustmh-bench" / bench.commit / PSYHARM
    assert local.is_file() and handler.hits == [f"/tmh/{PSYHARM}"]

    def no_download(*args: Any) -> Path:
        raise AssertionError("the suite must read the fetched file, not download")

    monkeypatch.setattr(datasets, "_download_verified", no_download)
    out = tmp_path / "prompts.jsonl"
    built = run_cli("suites", "build", "safety/direct-harm", "--out", out)
    assert built.code == 0, built.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 70


def test_a_registry_field_that_is_not_known_names_the_table(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(_published("x", None, None) + "[published.y]\ntitle = 't'\npage = 'p'\nnamed_by = 'n'\n"
                    "suites = []\nsha = 'abc'\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"\[published\.y\]: unknown field\(s\) sha"):
        load_published(path)
    path.write_text("[published.z]\ntitle = 't'\npage = 'p'\nnamed_by = 'n'\nsuites = []\nsha256 = 'ABC'\n",
                    encoding="utf-8")
    with pytest.raises(DatasetError, match=r"\[published\.z\]: sha256 'ABC' is not 64 lower-case hex digits"):
        load_published(path)


def test_published_entries_name_known_suites_and_unavailable_suites_say_where() -> None:
    published = load_published()
    assert {"c-ssrs", "pas", "d4", "swmh", "authors-robustness", "authors-fair"} <= set(published)
    for entry in published.values():
        assert set(entry.suites) <= set(SUITES), entry.name
        assert entry.page.startswith("https://") and (entry.url is None or entry.url.startswith("https://"))
        assert entry.sha256 is None, "no checksum is known for data that is not in the mirror"
    for suite in SUITES.values():
        if suite.status != "available":
            assert "not public" not in suite.status_text
            for entry in published.values():
                if suite.id in entry.suites and entry.git_blob is None:
                    assert entry.page in suite.status_text, (suite.id, entry.name)


def test_data_list_shows_the_mirror_datasets_and_where_the_rest_is_published(
        run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("judge.cli.data_cmd.console", Console(width=2000))
    result = run_cli("data", "list")
    assert result.code == 0, result.stderr
    for text in ("trustmh-bench", "yes (sha256-checked)", "Data not in the dataset mirror (data/registry.toml "
                 "[published])", "https://zenodo.org/records/2667859", "no: no file URL and no sha256 known"):
        assert text in result.stdout, text
