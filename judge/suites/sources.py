"""Bytes of registered dataset files, including members of the registered zip bundles.

Every read goes through the dataset registry (pinned commit, sha256 per file), so a suite is always
built from the same bytes. A zip member is read from the verified zip itself: the bundle's checksum
covers every member.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

from judge.datasets import DatasetError, dataset_file


def read_bytes(dataset: str, path: str) -> bytes:
    """The verified bytes of one registered file."""
    return dataset_file(dataset, path).read_bytes()


@contextmanager
def open_zip(dataset: str, path: str) -> Iterator[zipfile.ZipFile]:
    """A registered zip bundle, opened for reading members."""
    local = dataset_file(dataset, path)
    try:
        with zipfile.ZipFile(local) as bundle:
            yield bundle
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{local}: not a readable zip archive ({exc})") from exc


def zip_member(bundle: zipfile.ZipFile, member: str) -> bytes:
    """One member's bytes; a missing member names the archive and the member."""
    try:
        return bundle.read(member)
    except KeyError as exc:
        raise DatasetError(f"{bundle.filename}: has no member {member!r}") from exc


def read_zip_member(dataset: str, path: str, member: str) -> bytes:
    with open_zip(dataset, path) as bundle:
        return zip_member(bundle, member)
