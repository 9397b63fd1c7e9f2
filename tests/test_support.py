"""The support table (the references' k-mer minimizers in a Bloom filter) and the in / novel / foreign call."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import DATA, read_tsv
from gooddetect.alphabet import reverse_complement
from gooddetect.cli import main
from gooddetect.detector import Detector
from gooddetect.errors import ModelFileError
from gooddetect.scoring import CALLS, call_codes
from gooddetect.support import (HASHES, K, W, SupportTable, foreign, minimizer_keys, sequences_of,
                                support_fraction)

RNG = np.random.default_rng(5)
REFERENCE = RNG.integers(0, 4, 20_000).astype(np.uint8)
TABLE = SupportTable.from_keys(minimizer_keys([REFERENCE]))


def padded(*rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    codes = np.full((len(rows), int(lengths.max())), 4, dtype=np.uint8)
    for i, row in enumerate(rows):
        codes[i, :len(row)] = row
    return codes, lengths


def test_reads_of_the_references_are_supported_on_either_strand_and_others_are_not():
    piece = REFERENCE[5_000:5_150]
    other = RNG.integers(0, 4, 150).astype(np.uint8)
    hits, lookups = TABLE.lookup(*padded(piece, reverse_complement(piece), other))
    assert (lookups > 0).all()
    assert support_fraction(hits, lookups).tolist() == [1.0, 1.0, 0.0]


def test_the_filter_holds_about_ten_bits_per_distinct_minimizer():
    density = TABLE.keys / len(REFERENCE)
    assert 1.5 / (W + 1) < density < 2.5 / (W + 1)  # a random minimizer's expected density is 2 / (W + 1)
    assert 10 <= len(TABLE.bits) * 64 / TABLE.keys < 20  # BITS_PER_KEY, rounded up to a power of two


@settings(max_examples=50, deadline=None)
@given(st.integers(0, len(REFERENCE) - 200), st.integers(1, 200))
def test_a_read_has_a_minimizer_exactly_when_it_has_k_plus_w_minus_1_known_bases(start, length):
    hits, lookups = TABLE.lookup(*padded(REFERENCE[start:start + length]))
    assert (lookups[0] > 0) == (length >= K + W - 1)
    assert hits[0] == lookups[0]  # every minimizer of the reference's own sequence is in its filter


@given(st.lists(st.integers(0, 4), min_size=K + W - 1, max_size=120))
def test_a_sequence_and_its_reverse_complement_have_the_same_minimizers(codes):
    codes = np.array(codes, dtype=np.uint8)
    assert minimizer_keys([codes]).tolist() == minimizer_keys([reverse_complement(codes)]).tolist()


def test_unknown_bases_break_k_mers():
    with_n = REFERENCE[:200].copy()
    with_n[K + W - 2::K + W - 1] = 4  # no K + W - 1 known bases in a row
    assert TABLE.lookup(*padded(with_n))[1][0] == 0


@pytest.mark.parametrize("config", [{"k": 40, "w": W, "hashes": HASHES, "keys": 1, "words": 2},
                                    {"k": K, "w": W, "hashes": HASHES, "keys": 1, "words": 3},
                                    {"k": K, "w": W, "keys": 1, "words": 2}])
def test_a_table_with_impossible_settings_is_refused(config):
    with pytest.raises(ModelFileError):
        SupportTable.from_state(config, np.zeros(config["words"], dtype=np.uint64))


def test_calls_from_the_llr_and_the_support():
    scored = np.array([True, True, True, True, True, False])
    llr_ood = np.array([False, True, False, True, False, False])
    called_foreign = np.array([False, False, True, True, False, True])
    none = len(CALLS)
    assert call_codes(scored, llr_ood, called_foreign).tolist() == [0, 1, 2, 2, 0, none]
    assert call_codes(scored, llr_ood, None).tolist() == [0, 1, 0, 1, 0, none]  # no table: the LLR alone
    assert call_codes(scored, None, called_foreign).tolist() == [none] * 6  # no threshold, no call


def test_foreign_means_few_minimizers_found_and_no_more_than_chance_explains():
    hits = np.array([0, 1, 2, 0, 3, 12, 40, 0])
    lookups = np.array([12, 12, 12, 35, 35, 1000, 1000, 0])
    assert foreign(hits, lookups, 0.15).tolist() == [True, True, False, True, False, True, False, False]
    assert not foreign(hits, lookups, 0.0).any()  # foreign calls off
    assert foreign(hits, lookups, 1.0).tolist() == foreign(hits, lookups, 0.15).tolist()  # chance decides here


@pytest.fixture(scope="module")
def e_coli_model(tmp_path_factory):
    """A k-mer model of the example E. coli windows, with its support table."""
    path = tmp_path_factory.mktemp("support") / "ecoli.gdm"
    result = CliRunner().invoke(main, ["train", "--arch", "kmer", "--hash-bits", "16", "--threads", "1", "-o",
                                       str(path), str(DATA / "train" / "Escherichia_coli.fa.gz")])
    assert result.exit_code == 0, result.output
    return path


def fasta_records(path) -> dict[str, str]:
    with gzip.open(path, "rt") as handle:
        blocks = handle.read().split(">")[1:]
    return {block.split()[0]: "".join(block.splitlines()[1:]) for block in blocks}


def test_training_reads_are_in_foreign_reads_foreign_and_partly_supported_reads_novel(e_coli_model, tmp_path):
    training = list(fasta_records(DATA / "train" / "Escherichia_coli.fa.gz").values())
    virus = fasta_records(DATA / "val_ood.fa.gz")["val_ood_00300"]  # Epstein-Barr virus
    reads = {"training": training[0][50:200], "virus": virus[50:200], "half": training[1][:75] + virus[:75],
             "short_training": training[2][:35], "short_virus": virus[160:195]}
    path = tmp_path / "reads.fa"
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in reads.items()))
    result = CliRunner().invoke(main, ["score", str(e_coli_model), str(path), "--threshold", "-0.5",
                                                       "--novel-out", str(tmp_path / "novel.fa"),
                                                       "--ood-out", str(tmp_path / "foreign.fa")])
    assert result.exit_code == 0, result.stderr
    rows = {row["read_id"]: row for row in read_tsv(result.stdout)}
    assert {name: row["call"] for name, row in rows.items()} == {
        "training": "in", "virus": "foreign", "half": "novel", "short_training": "in", "short_virus": "foreign"}
    assert {name: row["is_ood"] for name, row in rows.items()} == {
        "training": "0", "virus": "1", "half": "1", "short_training": "0", "short_virus": "1"}
    assert float(rows["half"]["support"]) == pytest.approx(0.5, abs=0.2)
    assert (tmp_path / "novel.fa").read_text() == f">half\n{reads['half']}\n"
    assert (tmp_path / "foreign.fa").read_text() == \
        f">virus\n{reads['virus']}\n>short_virus\n{reads['short_virus']}\n"
    assert "0 novel" not in result.stderr and "1 novel, 2 foreign" in result.stderr


def test_the_model_file_holds_the_table_of_every_training_sequence(e_coli_model, tmp_path):
    expected = SupportTable.from_keys(minimizer_keys(sequences_of([DATA / "train" / "Escherichia_coli.fa.gz"])))
    loaded = Detector.load(e_coli_model)
    assert loaded.support.config() == expected.config() and (loaded.support.bits == expected.bits).all()
    loaded.save(tmp_path / "again.gdm")
    assert (tmp_path / "again.gdm").read_bytes() == e_coli_model.read_bytes()


def test_no_support_trains_the_papers_pair_alone(tmp_path):
    path = tmp_path / "plain.gdm"
    result = CliRunner().invoke(main, ["train", "--arch", "kmer", "--hash-bits", "16", "--threads", "1", "--no-support",
                                       "-o", str(path), str(DATA / "train" / "Escherichia_coli.fa.gz")])
    assert result.exit_code == 0, result.output
    assert Detector.load(path).support is None


@pytest.fixture(scope="module")
def long_reads(tmp_path_factory):
    """A virus read, an E. coli / virus / E. coli chimera and an E. coli read with 5 % substitutions (FASTA)."""
    e_coli = "".join(list(fasta_records(DATA / "train" / "Escherichia_coli.fa.gz").values())[:40])
    virus = "".join(seq for name, seq in fasta_records(DATA / "val_ood.fa.gz").items()
                    if 300 <= int(name.rsplit("_", 1)[1]) < 400)  # the Epstein-Barr virus windows
    rng = np.random.default_rng(1)
    noisy = np.frombuffer(e_coli[6000:10000].encode(), dtype=np.uint8).copy()
    changed = np.flatnonzero(rng.random(len(noisy)) < 0.05)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    noisy[changed] = bases[(np.searchsorted(bases, noisy[changed]) + rng.integers(1, 4, len(changed))) % 4]
    reads = {"foreign": virus[:6000], "chimera": e_coli[:3000] + virus[6000:9000] + e_coli[3000:6000],
             "noisy": noisy.tobytes().decode()}
    path = tmp_path_factory.mktemp("long") / "long.fa"
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in reads.items()))
    return path


def screen_rows(model, reads, *options) -> dict[str, dict[str, str]]:
    result = CliRunner().invoke(main, ["screen", str(model), str(reads), *options])
    assert result.exit_code == 0, result.output
    return {row["seq_id"]: row for row in read_tsv(result.stdout)}


def test_screen_trims_a_chimera_and_passes_a_noisy_read_of_the_references(e_coli_model, long_reads, tmp_path):
    rows = screen_rows(e_coli_model, long_reads, "--threshold", "0", "--bed", str(tmp_path / "f.bed"))
    assert {name: row["action"] for name, row in rows.items()} == {"foreign": "EXCLUDE", "chimera": "TRIM",
                                                                  "noisy": "PASS"}
    (chimera,) = [line.split("\t") for line in (tmp_path / "f.bed").read_text().splitlines() if "chimera" in line]
    assert abs(int(chimera[1]) - 3000) <= 50 and abs(int(chimera[2]) - 6000) <= 50
    assert float(rows["noisy"]["support"]) > 0.1 and float(rows["foreign"]["support"]) < 0.01


def test_screen_excludes_a_read_foreign_from_end_to_end_that_its_bins_would_pass(e_coli_model, long_reads):
    """At a threshold the virus's bins stay under, only its support tells: EXCLUDE, all of it foreign."""
    by_bins = screen_rows(e_coli_model, long_reads, "--threshold", "0.5", "--min-support", "0")
    assert by_bins["foreign"]["action"] == "PASS"
    rows = screen_rows(e_coli_model, long_reads, "--threshold", "0.5")
    assert (rows["foreign"]["action"], rows["foreign"]["foreign_bases"]) == ("EXCLUDE", "6000")
    assert {rows[name]["action"] for name in ("chimera", "noisy")} == {"PASS"}
