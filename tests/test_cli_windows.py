"""`gooddetect windows` run as a real subprocess: output, atomic -o, stdin, and one-line errors."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from fixtures import BAD_INPUTS, fasta_text, random_bases, revcomp_text, write_file
from gooddetect import __version__

LABEL = re.compile(r"(?P<read>.+):(?P<start>\d+)-(?P<end>\d+)\((?P<strand>[+-])\)", re.S)


def parse_fasta(text: str) -> list[tuple[str, str]]:
    lines = text.splitlines()
    assert len(lines) % 2 == 0 and all(line.startswith(">") for line in lines[0::2])
    return [(header[1:], seq) for header, seq in zip(lines[0::2], lines[1::2])]


def assert_one_line_error(result, *fragments: str) -> str:
    stderr = result.stderr.decode()
    assert result.returncode != 0
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gooddetect: error: "), stderr
    assert all(fragment in lines[0] for fragment in fragments), (fragments, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def reads() -> dict[str, str]:
    rng = np.random.default_rng(21)
    with_n = random_bases(rng, 300)
    return {"long": random_bases(rng, 600), "short": random_bases(rng, 20), "with_n": with_n[:10] + "N" + with_n[11:]}


def expected_windows(reads: dict[str, str]) -> list[tuple[str, str]]:
    """length 250, min 50: long -> 3 windows, short -> none, with_n -> two windows, its N kept (249 known bases)."""
    spans = [("long", 0, 250), ("long", 250, 500), ("long", 500, 600), ("with_n", 0, 250), ("with_n", 250, 300)]
    return [(f"{name}:{s + 1}-{e}(+)", reads[name][s:e].upper()) for name, s, e in spans]


def test_windows_fasta_to_stdout(tmp_path, run_cli, reads):
    path = write_file(tmp_path, "reads.fa", fasta_text(reads))
    result = run_cli("windows", path)
    assert result.returncode == 0, result.stderr
    assert parse_fasta(result.stdout.decode()) == expected_windows(reads)
    summary = result.stderr.decode()
    assert re.search(r"5 written from 3 reads.* 1 reads shorter than 31 bp and 0 windows with fewer", summary), summary


def test_windows_both_strands_and_output_file(tmp_path, run_cli, reads):
    path = write_file(tmp_path, "reads.fq.gz", "".join(f"@{k}\n{v}\n+\n{'#' * len(v)}\n" for k, v in reads.items()),
                      gz=True)
    out = tmp_path / "out.fa"
    result = run_cli("windows", "--both-strands", "-o", out, path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    records = parse_fasta(out.read_text())
    assert records[0::2] == expected_windows(reads)
    for (plus_id, plus_seq), (minus_id, minus_seq) in zip(records[0::2], records[1::2]):
        assert minus_id == plus_id.replace("(+)", "(-)") and minus_seq == revcomp_text(plus_seq)


def test_duplicate_ids_are_counted_in_the_summary(tmp_path, run_cli):
    a = write_file(tmp_path, "a.fa", ">x\n" + "A" * 60 + "\n>y\n" + "C" * 60 + "\n")
    b = write_file(tmp_path, "b.fa", ">x\n" + "G" * 60 + "\n")
    result = run_cli("windows", a, b, a)
    assert result.returncode == 0, result.stderr
    assert [header for header, _ in parse_fasta(result.stdout.decode())] == ["x:1-60(+)", "y:1-60(+)"] + \
        ["x:1-60(+)"] * 2 + ["y:1-60(+)"]
    assert "3 duplicate read ids" in result.stderr.decode()


def test_quiet_leaves_stderr_empty(tmp_path, run_cli, reads):
    result = run_cli("--quiet", "windows", write_file(tmp_path, "reads.fa", fasta_text(reads)))
    assert result.returncode == 0 and result.stderr == b""


def test_stdin_gzip_bytes(run_cli, reads):
    result = run_cli("windows", "-", input=gzip.compress(fasta_text(reads).encode()))
    assert result.returncode == 0, result.stderr
    assert parse_fasta(result.stdout.decode()) == expected_windows(reads)


def test_stdin_error_names_stdin(run_cli):
    assert_one_line_error(run_cli("windows", "-", input=b"@q1\nACGT\n+\nII\n"), "<stdin>: record 1")


def test_failed_run_keeps_previous_output_and_leaves_no_temp_file(tmp_path, run_cli, reads):
    good = write_file(tmp_path, "good.fa", fasta_text(reads))
    bad = write_file(tmp_path, "bad.fq", "@q1\nACGT\n+\nIIII\n@q2\nACGT\n+\nIII\n")
    out = tmp_path / "out.fa"
    out.write_text("previous content\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_one_line_error(run_cli("windows", "-o", out, good, bad), str(bad), "record 2")
    assert out.read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("case", list(BAD_INPUTS) + ["missing_file", "directory"])
def test_bad_input_one_line_error_and_no_output_file(tmp_path, run_cli, case):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    if case == "missing_file":
        path, fragment = inputs / "missing.fa", "no such file"
    elif case == "directory":
        path, fragment = inputs, "directory"
    else:
        name, content, _ = BAD_INPUTS[case]
        path, fragment = write_file(inputs, name, content), ""
    outdir = tmp_path / "out"
    outdir.mkdir()
    assert_one_line_error(run_cli("windows", "-o", outdir / "windows.fa", path), f"{path}: ", fragment)
    assert not list(outdir.iterdir())


def test_sample_genome_windows(tmp_path, run_cli):
    genome = {"chr1": random_bases(np.random.default_rng(4), 2000)}
    path = write_file(tmp_path, "genome.fa.gz", fasta_text(genome), gz=True)
    result = run_cli("windows", "--sample", 25, "--length", 100, "--both-strands", "--seed", 3, path)
    assert result.returncode == 0, result.stderr
    records = parse_fasta(result.stdout.decode())
    assert len(records) == 50 and [h[-3:] for h, _ in records] == ["(+)", "(-)"] * 25
    for header, seq in records:
        match = LABEL.fullmatch(header)
        start, end = int(match["start"]) - 1, int(match["end"])
        source = genome[match["read"]][start:end].upper()
        assert seq == (source if match["strand"] == "+" else revcomp_text(source))
    again = run_cli("windows", "--sample", 25, "--length", 100, "--both-strands", "--seed", 3, path)
    assert again.stdout == result.stdout


def test_contradictory_lengths_are_a_one_line_error(tmp_path, run_cli, reads):
    path = write_file(tmp_path, "reads.fa", fasta_text(reads))
    assert_one_line_error(run_cli("windows", "--length", 60, "--min-length", 100, path), "100", "60")


def test_version(run_cli):
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"gooddetect, version {__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_help(run_cli):
    top = run_cli("--help")
    assert top.returncode == 0 and "windows" in top.stdout.decode()
    sub = run_cli("windows", "-h")
    assert sub.returncode == 0
    assert all(option in sub.stdout.decode() for option in ("--output", "--length", "--stride", "--sample"))
