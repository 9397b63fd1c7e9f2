"""Bad and unusual input through the real CLI: every failure is one `gooddetect: error:` line naming the file (and
record), exit status 1, no traceback, no partial output, a previous output left intact; every odd but valid input
is scored, and every read without a score is counted. Also: fuzzing the reader, disk full, permissions."""

from __future__ import annotations

import errno
import gzip
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import BAD, CLI_ENV, PREVIOUS, gooddetect_command, make_bad
from gooddetect import seqio
from gooddetect.errors import InputError
from gooddetect.seqio import read_sequences


BIG_RECORD_MB = int(os.environ.get("GOODDETECT_TEST_BIG_MB", "10"))
BYTES_PER_BASE = 5  # a record of n bases costs the record and its codes, n bytes each, plus decoding buffers


def gooddetect(*args, cwd: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run the installed `gooddetect` command (stdin closed) and capture its output as text."""
    options = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "env": CLI_ENV}
    options |= kwargs
    return subprocess.run([*gooddetect_command(), *map(str, args)], text=True, errors="replace", timeout=300, cwd=cwd, **options)


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit 1, and stderr is exactly one `gooddetect: error:` line holding every fragment."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("gooddetect: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_untouched(directory: Path, out: Path, previous: str | None) -> None:
    """`out` holds exactly `previous` (or does not exist) and no temp file is left beside it."""
    if previous is None:
        assert not out.exists()
    else:
        assert out.read_text() == previous
    assert not list(directory.glob(".*.tmp")), list(directory.iterdir())


def read_tsv(path: Path) -> list[dict]:
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"))) for line in lines]


# -- malformed input: one clean error, nothing written ---------------------------------------------------------

ERROR_CASES = {
    "empty.fa": ["empty file"],
    "qual_length_mismatch.fq": ["record 2", "r2"],
    "truncated_last_record.fq": ["record 3"],
    "missing_plus.fq": ["record 2", "r2"],
    "header_without_sequence.fa": ["record 2 (r2)", "no sequence"],
    "binary_sequence.fa": ["record 1 (r1)", "invalid character"],
    "truncated.fq.gz": ["truncated gzip"],
    "junk.gz": ["not FASTA, FASTQ or TFRecord"],
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_malformed_input_fails_cleanly_in_score(case, tiny_model, tmp_path):
    reads = shutil.copy(BAD / case, tmp_path / case)
    out = tmp_path / "out.tsv"
    out.write_text(PREVIOUS)
    result = gooddetect("score", tiny_model, reads, "-o", out, "--summary", tmp_path / "s.json", cwd=tmp_path)
    assert_one_line_error(result, case, *ERROR_CASES[case])
    assert_untouched(tmp_path, out, PREVIOUS)
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_malformed_input_fails_cleanly_in_windows(case, tmp_path):
    out = tmp_path / "w.fa"
    out.write_text(PREVIOUS)
    result = gooddetect("windows", BAD / case, "-o", out)
    assert_one_line_error(result, case, *ERROR_CASES[case])
    assert_untouched(tmp_path, out, PREVIOUS)


def test_a_header_with_non_ascii_bytes_is_scored_and_written_back_byte_for_byte(tiny_model, tmp_path):
    """Headers are free text (Kraken2 and seqkit read them too): the record is scored, its read_id in the TSV is
    the first header word as UTF-8 with other bytes escaped as \\xHH, and --in-out/--ood-out write it unchanged."""
    reads = BAD / "non_utf8_header.fa"
    out = tmp_path / "out.tsv"
    result = gooddetect("score", tiny_model, reads, "-o", out, "--threshold", 0, "--in-out", tmp_path / "in.fa",
                        "--ood-out", tmp_path / "ood.fa")
    assert result.returncode == 0, result.stderr
    (row,) = read_tsv(out)
    assert row["read_id"] == "read\\xff\\xfe7" and row["reason"] == "NA"
    written = (tmp_path / "in.fa").read_bytes() + (tmp_path / "ood.fa").read_bytes()
    assert written == reads.read_bytes()


def test_error_after_many_rows_leaves_no_partial_output(tiny_model, tmp_path):
    """The bad record comes after about 100 kB of rows were written to the temp file."""
    reads = make_bad.write_many_reads(tmp_path / "reads.fa", 1000, tail=b">broken\n")
    out = tmp_path / "out.tsv"
    out.write_text(PREVIOUS)
    result = gooddetect("score", tiny_model, reads, "-o", out, "--batch-size", 100, "--threads", 1)
    assert_one_line_error(result, "reads.fa", "record 1001 (broken)")
    assert_untouched(tmp_path, out, PREVIOUS)


def test_error_in_second_input_leaves_no_partial_output(tiny_model, tmp_path):
    out = tmp_path / "out.tsv"
    result = gooddetect("score", tiny_model, BAD / "lengths.fa", BAD / "truncated_last_record.fq", "-o", out)
    assert_one_line_error(result, "truncated_last_record.fq", "record 3")
    assert_untouched(tmp_path, out, None)


@pytest.mark.parametrize("kind", ["directory", "missing"])
def test_input_that_is_not_a_file(kind, tiny_model, tmp_path):
    target = tmp_path / "reads"
    if kind == "directory":
        target.mkdir()
    out = tmp_path / "out.tsv"
    out.write_text(PREVIOUS)
    result = gooddetect("score", tiny_model, target, "-o", out)
    assert_one_line_error(result, str(target), "is a directory" if kind == "directory" else "no such file")
    assert_untouched(tmp_path, out, PREVIOUS)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file; the in-process test below simulates it")
def test_unreadable_input_file(tiny_model, tmp_path):
    reads = shutil.copy(BAD / "lengths.fa", tmp_path / "locked.fa")
    os.chmod(reads, 0)
    result = gooddetect("score", tiny_model, reads, "-o", tmp_path / "out.tsv")
    assert_one_line_error(result, "locked.fa", "permission denied")
    assert_untouched(tmp_path, tmp_path / "out.tsv", None)


def test_output_in_missing_directory(tiny_model, tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "out.tsv"
    result = gooddetect("score", tiny_model, BAD / "lengths.fa", "-o", out)
    assert_one_line_error(result, "out.tsv", "does not exist")
    assert not (tmp_path / "no").exists()


def test_summary_in_missing_directory_fails_before_writing_anything(tiny_model, tmp_path):
    out = tmp_path / "out.tsv"
    out.write_text(PREVIOUS)
    result = gooddetect("score", tiny_model, BAD / "lengths.fa", "-o", out, "--summary", tmp_path / "no" / "s.json")
    assert_one_line_error(result, "s.json", "does not exist")
    assert_untouched(tmp_path, out, PREVIOUS)


def test_train_output_in_missing_directory_fails_before_training(tmp_path):
    model = tmp_path / "no" / "m.gdm"
    result = gooddetect("train", make_bad.TRAIN_READS, "-o", model, "--hidden", 4, "--kmer-input", 2, "--steps", 2, "--threads", 1,
                        "--max-windows", 200)
    assert_one_line_error(result, "m.gdm", "does not exist")
    assert "step" not in result.stderr


def test_pipe_path_input_is_read_completely(tiny_model, tmp_path):
    """`gooddetect score model <(zcat reads.fq.gz)`: the input is /dev/fd/N, a pipe that can be read only once."""
    read_end, write_end = os.pipe()
    os.write(write_end, (BAD / "lengths.fa").read_bytes())  # fits in the pipe buffer
    os.close(write_end)
    try:
        result = gooddetect("score", tiny_model, f"/dev/fd/{read_end}", "-o", tmp_path / "out.tsv",
                            pass_fds=(read_end,))
    finally:
        os.close(read_end)
    assert result.returncode == 0, result.stderr
    assert len(read_tsv(tmp_path / "out.tsv")) == len(make_bad.LENGTH_SERIES)


# -- unusual but valid input: scored, counted, never dropped -----------------------------------------------------

def _soft_masked(seq: bytes) -> bytes:
    """Lower-case every other run of 7 bases, as RepeatMasker output looks."""
    return b"".join(seq[i:i + 7].lower() if (i // 7) % 2 else seq[i:i + 7] for i in range(0, len(seq), 7))


def _records(path: Path) -> list[tuple[bytes, bytes]]:
    text = path.read_bytes().split(b">")[1:]
    return [(chunk.split(b"\n", 1)[0], chunk.split(b"\n", 1)[1].replace(b"\n", b"")) for chunk in text]


@pytest.fixture(scope="module")
def valid_run(tiny_model, tmp_path_factory):
    """Score a set of odd-but-valid files in one run; returns {file name: its rows} and the summary."""
    directory = tmp_path_factory.mktemp("valid")
    lengths = _records(BAD / "lengths.fa")
    files = {
        "lengths.fa": (BAD / "lengths.fa").read_bytes(),
        "lengths_crlf.fa": (BAD / "lengths.fa").read_bytes().replace(b"\n", b"\r\n"),
        "lengths_lower.fa": b"".join(b">%s\n%s\n" % (name, seq.lower()) for name, seq in lengths),
        "lengths_softmasked.fa": b"".join(b">%s\n%s\n" % (name, _soft_masked(seq)) for name, seq in lengths),
        "lengths_crlf.fq.gz": gzip.compress(b"".join(
            b"@%s\r\n%s\r\n+\r\n%s\r\n" % (name, seq, b"I" * len(seq)) for name, seq in lengths)),
        "unknown_bases.fa": (BAD / "unknown_bases.fa").read_bytes(),
        "duplicate_ids.fa": (BAD / "duplicate_ids.fa").read_bytes(),
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
    make_bad.write_single_line_record(directory / "one_mb.fa", 1_000_000)
    names = [*files, "one_mb.fa"]
    result = gooddetect("score", tiny_model, *names, "-o", "out.tsv", "--summary", "summary.json",
                        "--threads", 1, cwd=directory)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = read_tsv(directory / "out.tsv")
    counts = {name: len(_records(directory / name)) if name.endswith(".fa") else len(lengths) for name in names}
    by_file, start = {}, 0
    for name in names:
        by_file[name] = rows[start:start + counts[name]]
        start += counts[name]
    assert start == len(rows), "one row per read, none dropped or added"
    return by_file, json.loads((directory / "summary.json").read_text()), result.stderr


def _numbers(rows: list[dict], column: str) -> np.ndarray:
    return np.array([np.nan if row[column] == "NA" else float(row[column]) for row in rows])


def test_read_lengths_around_the_limits(valid_run):
    rows = valid_run[0]["lengths.fa"]
    got = [(row["length"], row["n_windows"], row["n_scored"], row["reason"]) for row in rows]
    assert got == [("1", "0", "0", "too_short"), ("30", "0", "0", "too_short"), ("31", "1", "30", "NA"),
                   ("249", "1", "248", "NA"), ("250", "1", "249", "NA"),
                   ("251", "2", "249", "NA")]  # 251 bp: two windows of 126 + 125 bp, no base dropped
    assert all(row["llr"] == "NA" for row in rows[:2]) and all(row["llr"] != "NA" for row in rows[2:])


def test_one_megabase_read(valid_run):
    (row,) = valid_run[0]["one_mb.fa"]
    assert (row["length"], row["n_windows"], row["n_scored"]) == ("1000000", "4000", str(1_000_000 - 4000))
    assert len(row["window_llrs"].split(",")) == 4000 and np.isfinite(float(row["llr"]))


@pytest.mark.parametrize("variant", ["lengths_crlf.fa", "lengths_lower.fa", "lengths_softmasked.fa",
                                     "lengths_crlf.fq.gz"])
def test_line_endings_and_case_do_not_change_scores(valid_run, variant):
    reference, rows = valid_run[0]["lengths.fa"], valid_run[0][variant]
    for column in ("read_id", "length", "n_windows", "n_scored", "reason"):
        assert [r[column] for r in rows] == [r[column] for r in reference], column
    for column in ("loglik_fg", "loglik_bg", "llr"):  # batches differ: equal up to float rounding
        np.testing.assert_allclose(_numbers(rows, column), _numbers(reference, column), atol=2e-6, rtol=0)


def test_iupac_codes_and_n_runs_are_masked(valid_run):
    iupac, n_run, all_n = valid_run[0]["unknown_bases.fa"]
    # 250 bp with 11 unknown symbols at positions 100..110: one window, 249 - 11 scored positions
    assert (iupac["n_windows"], iupac["n_scored"], iupac["reason"]) == ("1", "238", "NA")
    # 100 known + 400 N + 100 known: the all-N middle window is dropped, the others score their known bases
    assert (n_run["length"], n_run["n_windows"], n_run["n_scored"], n_run["reason"]) == ("600", "2", "198", "NA")
    assert np.isfinite(float(n_run["llr"]))
    assert (all_n["n_windows"], all_n["n_scored"], all_n["llr"], all_n["reason"]) == ("0", "0", "NA",
                                                                                      "too_many_unknown")


def test_duplicate_ids_are_kept_and_counted(valid_run):
    rows = valid_run[0]["duplicate_ids.fa"]
    assert [row["read_id"] for row in rows] == ["dup", "other", "dup"]
    assert rows[0]["llr"] != rows[2]["llr"]
    # ids repeat across inputs too: the 5 variants of lengths.fa repeat its 6 ids 4 more times, plus `dup`
    assert valid_run[1]["duplicate_ids"] == 4 * 6 + 1


def test_summary_counts_every_read(valid_run):
    by_file, summary, stderr = valid_run
    n_reads = sum(len(rows) for rows in by_file.values())
    assert summary["reads"] == n_reads
    # 5 length variants x 2 reads under 31 bp; the all-N read
    assert summary["skipped"] == {"too_short": 10, "too_many_unknown": 1}
    assert summary["scored_reads"] == n_reads - 11
    assert f"{n_reads} reads" in stderr and "10 too_short" in stderr and "1 too_many_unknown" in stderr


# glibc's malloc moves its mmap threshold with the program's history, so how much freed memory a run keeps mapped
# (and so its peak RSS) varied by ±8 MB between identical runs; a fixed threshold measures what the program holds
FIXED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(2**20)}


def _peak_rss_mb(model: Path, reads: Path, out: Path) -> float:
    script = Path(sys.executable).with_name("gooddetect")
    measure = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", measure, str(script), "score", str(model), str(reads),
                             "-o", str(out), "--threads", "1"], capture_output=True, text=True, timeout=300,
                            env=CLI_ENV | FIXED_MALLOC)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1]) / 1024


@pytest.mark.slow
def test_long_single_line_record_in_flat_memory(kmer_model, tmp_path):
    """A chromosome-sized single-line record is scored window batch by window batch: the peak RSS of the CLI grows
    by the record itself and its codes (a few bytes a base), not by the model's work on its windows."""
    n_bases = BIG_RECORD_MB * 1_000_000
    small = make_bad.write_single_line_record(tmp_path / "small.fa", 1_000_000)
    big = make_bad.write_single_line_record(tmp_path / "big.fa", n_bases)
    growth = _peak_rss_mb(kmer_model, big, tmp_path / "out.tsv") - _peak_rss_mb(kmer_model, small, tmp_path / "s.tsv")
    assert growth * 2**20 / (n_bases - 1_000_000) < BYTES_PER_BASE, growth
    (row,) = read_tsv(tmp_path / "out.tsv")
    assert (row["length"], row["n_windows"]) == (str(n_bases), str(n_bases // 250))


# -- environment failures, in-process (disk full, permissions) ---------------------------------------------------

@pytest.fixture
def cli_in_process(monkeypatch):
    """Run the click app in this process (so monkeypatches apply); restores the SIGTERM handler it installs."""
    from gooddetect.cli import main

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # the app must not take over pytest's handlers
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the app reconfigures logging onto CliRunner's stderr
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=True)

    yield run
    root.handlers[:], root.level = handlers, level


def assert_in_process_error(result, *fragments: str) -> None:
    """As assert_one_line_error, for a CliRunner result (an exception other than SystemExit is a traceback)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_line_error(subprocess.CompletedProcess([], result.exit_code, result.stdout, result.stderr), *fragments)


def test_permission_denied_on_input_simulated(cli_in_process, tiny_model, tmp_path, monkeypatch):
    reads = shutil.copy(BAD / "lengths.fa", tmp_path / "locked.fa")

    def refuse(path, *args, **kwargs):
        if Path(path) == reads:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(seqio, "open", refuse, raising=False)
    out = tmp_path / "out.tsv"
    out.write_text(PREVIOUS)
    result = cli_in_process("score", tiny_model, reads, "-o", out, "--threads", 1)
    assert_in_process_error(result, "locked.fa", "permission denied")
    assert_untouched(tmp_path, out, PREVIOUS)


def test_permission_denied_on_output_directory_simulated(cli_in_process, tiny_model, tmp_path, monkeypatch):
    from gooddetect import files

    def refuse(prefix="", suffix="", dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, f"{prefix}xyz{suffix}"))

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    out = tmp_path / "out.tsv"
    out.write_text(PREVIOUS)
    result = cli_in_process("score", tiny_model, BAD / "lengths.fa", "-o", out, "--threads", 1)
    assert_in_process_error(result, "out.tsv", "Permission denied")
    assert_untouched(tmp_path, out, PREVIOUS)


class _FullDisk(io.BufferedWriter):
    """A file on a disk that fills up after `room` bytes."""

    room = 2000

    def write(self, data) -> int:
        _FullDisk.room -= len(data)
        if _FullDisk.room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_disk_full_keeps_previous_output(where, cli_in_process, tiny_model, tmp_path, monkeypatch):
    from gooddetect import files

    if where == "write":
        real_fdopen = os.fdopen

        def full_fdopen(fd, mode="r", *args, **kwargs):
            return _FullDisk(real_fdopen(fd, mode, *args, **kwargs).detach())

        monkeypatch.setattr(_FullDisk, "room", 2000)
        monkeypatch.setattr(files.os, "fdopen", full_fdopen)
    else:
        def no_space(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(files.os, "fsync", no_space)
    reads = make_bad.write_many_reads(tmp_path / "reads.fa", 300)
    out = tmp_path / "out.tsv"
    out.write_text(PREVIOUS)
    result = cli_in_process("score", tiny_model, reads, "-o", out, "--threads", 1)
    assert_in_process_error(result, "out.tsv", "No space left on device")
    assert_untouched(tmp_path, out, PREVIOUS)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_on_stdout(tiny_model):
    with open("/dev/full", "w") as full:
        result = gooddetect("score", tiny_model, BAD / "lengths.fa", stdout=full)
    assert_one_line_error(result, "<stdout>: No space left on device")


# -- fuzzing the reader -----------------------------------------------------------------------------------------

VALID_FILES = [b">r1 first read\nACGTNacgtn\nRYKM\n>r2\nGGCC\n\n>r3\nA\n",
               b"@r1 d\nACGTN\n+\nIIIII\n@r2\nNNAC\n+r2\n!!!!\n@r3\nG\n+\n#\n"]
SPECIAL = [b">", b"@", b"+", b"\n", b"\r\n", b"\r", b" ", b"\t", b"\x00", b"\xff", b"N", b"\x1f\x8b", b">\n", b"@\n+\n"]


@st.composite
def mutated_records(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID_FILES)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = draw(st.sampled_from(SPECIAL) | st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif op == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[at:]
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "input"


def _parse_or_input_error(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        records = list(read_sequences(str(path)))
    except InputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert records and all(name and seq and not any(c.isspace() for c in seq + name) for name, seq in records)


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.binary(max_size=300), compress=st.booleans())
def test_fuzz_random_bytes(fuzz_file, data, compress):
    _parse_or_input_error(fuzz_file, gzip.compress(data) if compress else data)


@FUZZ
@given(data=mutated_records(), compress=st.booleans(), cut=st.integers(0, 40))
def test_fuzz_mutated_records(fuzz_file, data, compress, cut):
    if compress:  # also damage the compressed stream itself, from its end
        data = gzip.compress(data)
        data = data[:len(data) - cut] if cut < len(data) else data
    _parse_or_input_error(fuzz_file, data)
