"""The parts of `trialnotary submit` that need no server: hashing, which files a folder
gives and their labels, bulk chunks, and what a refusal says."""

from __future__ import annotations

import io
import json
import os

import pytest

from tests.cli.conftest import sha256_of, write
from trialnotary.cli import api, client, files
from trialnotary.cli.errors import CliError, ServerRefused

TRIAL, SITE = "NCT01234567", "SITE-01"
CHUNK = client.CHUNK_BYTES


# --- hashing -------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_digest_equals_hashlib_at_chunk_boundaries(tmp_path, size):
    path = write(tmp_path / "f.bin", os.urandom(size))
    bar = client.progress_bar(size, enabled=True, stream=io.StringIO())
    assert client.hash_file(path, progress=bar) == (sha256_of(path), size)
    assert bar.n == size


def test_one_small_buffer_is_reused_across_files(tmp_path):
    buffer = client.new_buffer(4096)
    for size in (4095, 4096, 4097, 100_000):
        path = write(tmp_path / f"{size}.bin", os.urandom(size))
        assert client.hash_file(path, buffer=buffer) == (sha256_of(path), size)


# --- which files, which labels -------------------------------------------------------

def test_a_folder_gives_its_regular_files_in_sorted_relative_order(study):
    found, skipped = files.walk_folder(study)
    assert [relative for _, relative in found] == [
        "A.txt", "a/deep/x.xpt", "a/z.txt", "a-b.txt", "b.txt"]
    assert all(path == study.joinpath(*rel.split("/")) for path, rel in found)
    assert skipped == 3


def test_a_folder_is_labelled_with_its_name_and_files_with_relative_paths(study):
    entries, _ = files.collect([str(study)])
    assert {e.dataset for e in entries} == {"Study 1 (v2)"}
    assert entries[1].filename == "a/deep/x.xpt"
    assert entries[1].shown == os.path.join(str(study), "a", "deep", "x.xpt")
    assert entries[1].size == len(b"a/deep/x.xpt")


def test_the_current_folder_is_labelled_with_its_real_name(study, monkeypatch):
    monkeypatch.chdir(study / "a")
    entries, _ = files.collect(["."])
    assert [(e.dataset, e.filename) for e in entries] == [("a", "deep/x.xpt"), ("a", "z.txt")]


def test_a_file_is_labelled_with_its_name_and_dataset_overrides_labels(study):
    [entry] = files.collect([str(study / "a/z.txt")])[0]
    assert (entry.dataset, entry.filename) == ("z.txt", "z.txt")
    entries, _ = files.collect([str(study / "b.txt"), str(study / "a")], dataset="ADSL")
    assert [(e.dataset, e.filename) for e in entries] == [
        ("ADSL", "b.txt"), ("ADSL", "deep/x.xpt"), ("ADSL", "z.txt")]


def test_an_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty/.hidden")
    with pytest.raises(CliError, match="no files"):
        files.collect([str(tmp_path / "empty")])


def test_what_the_server_would_refuse_fails_before_hashing_or_sending(tmp_path, capsys):
    write(tmp_path / "bad\x07name.csv", b"x")
    code = client.run(paths=[str(tmp_path)], trial=TRIAL, site=SITE, kind="dataset",
                      dataset=None, supersedes=None, wait=False, out=None, as_json=False,
                      server="http://127.0.0.1:9", token="unused")
    assert code == 1
    err = capsys.readouterr().err
    assert "bad\x07name.csv: filename:" in err
    assert "cannot reach" not in err


def test_bulk_chunks_hold_at_most_10000_items_and_15_mib():
    small = [{"sha256": "0" * 64, "n": i} for i in range(25_001)]
    assert [(o, len(c)) for o, c in api.bulk_chunks(small)] == [
        (0, 10_000), (10_000, 10_000), (20_000, 5_001)]
    large = [{"filename": "é" * 2000}] * 5000
    chunks = list(api.bulk_chunks(large))
    assert sum(len(c) for _, c in chunks) == 5000 and len(chunks) == 2
    for _, chunk in chunks:
        body = json.dumps({"submissions": chunk}, ensure_ascii=False).encode()
        assert len(body) <= api.BULK_MAX_BYTES


def test_an_indexed_error_field_names_the_file_of_its_chunk(tmp_path):
    entries = [files.Entry(path=tmp_path / str(i), shown=f"data/{i}.csv", dataset="d",
                            filename=f"{i}.csv", size=0) for i in range(13)]
    error = ServerRefused(422, "validation_error", "unknown trial", "submissions[2].trial")
    message = str(client._located(error, entries, offset=10))
    assert message == ("server refused the registration (validation_error): "
                       "data/12.csv: trial: unknown trial")
