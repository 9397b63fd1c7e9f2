"""`gooddetect count` and `train --arch kmer --from-counts`: the counts of parts of a reference merge into the
model of the whole, byte for byte; count files are checksummed, versioned and refused when their settings differ."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fixtures import TRAIN
from gooddetect import __version__
from gooddetect.cli import main
from gooddetect.models.kmer.counts import KmerCounts
from gooddetect.models.configs import KmerConfig

pytestmark = pytest.mark.slow


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*map(str, args)], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("options", [["--max-order", "10"], ["--max-order", "14", "--hash-bits", "10"]],
                         ids=["folded", "full buckets"])
def test_counts_of_parts_merge_into_the_model_of_the_whole(tmp_path, options):
    """Five genomes' windows in three parts. With 2^10 buckets almost every bucket overflows, so the kept entries
    and their counts must not depend on how the input was split."""
    common = [*options, "--seed", "3", "--mutation-rate", "0.2"]
    assert cli("train", "--arch", "kmer", *TRAIN, "-o", tmp_path / "whole.gdm", "--threads", "1", *common)[0] == 0
    parts = [TRAIN[:2], TRAIN[2:3], TRAIN[3:]]
    for i, part in enumerate(parts):
        assert cli("count", *part, "-o", tmp_path / f"{i}.gdc", *common)[0] == 0
    code, output = cli("train", "--arch", "kmer", "--from-counts", *(tmp_path / f"{i}.gdc" for i in range(3)), "-o",
                       tmp_path / "merged.gdm", "--threads", "2")
    assert code == 0, output
    assert (tmp_path / "merged.gdm").read_bytes() == (tmp_path / "whole.gdm").read_bytes()
    if "--hash-bits" in options:
        counts = KmerCounts.load(tmp_path / "0.gdc")
        assert (counts.foreground.tables[0][:, -1] != 0).mean() > 0.9  # the buckets did overflow


def test_count_files_of_other_settings_or_damaged_are_refused(tmp_path):
    assert cli("count", TRAIN[0], "-o", tmp_path / "a.gdc", "--max-order", "10")[0] == 0
    assert cli("count", TRAIN[1], "-o", tmp_path / "b.gdc", "--max-order", "9")[0] == 0
    code, output = cli("train", "--arch", "kmer", "--from-counts", tmp_path / "a.gdc", tmp_path / "b.gdc", "-o",
                       tmp_path / "m.gdm")
    assert code == 1 and "b.gdc: counted with other settings (config)" in output
    assert not (tmp_path / "m.gdm").exists()
    code, output = cli("train", "--arch", "kmer", "--from-counts", tmp_path / "a.gdc", "--max-order", "10", "-o",
                       tmp_path / "m.gdm")
    assert code == 1 and "--max-order: with --from-counts, the counting settings come from the count files" in output
    blob = (tmp_path / "a.gdc").read_bytes()
    (tmp_path / "cut.gdc").write_bytes(blob[: len(blob) // 2])
    code, output = cli("train", "--arch", "kmer", "--from-counts", tmp_path / "cut.gdc", "-o", tmp_path / "m.gdm")
    assert code == 1 and "cut.gdc: not a gooddetect count file, or truncated" in output
    flipped = bytearray(blob)
    flipped[-100] ^= 1
    (tmp_path / "flipped.gdc").write_bytes(bytes(flipped))
    code, output = cli("train", "--arch", "kmer", "--from-counts", tmp_path / "flipped.gdc", "-o", tmp_path / "m.gdm")
    assert code == 1 and "flipped.gdc: checksum mismatch" in output
    old = KmerCounts.load(tmp_path / "a.gdc")
    old.settings = {**old.settings, "gooddetect": "0.0.1"}
    old.save(tmp_path / "old.gdc")
    code, output = cli("train", "--arch", "kmer", "--from-counts", tmp_path / "a.gdc", tmp_path / "old.gdc", "-o",
                       tmp_path / "m.gdm")
    assert code == 1 and "old.gdc: counted with other settings (gooddetect)" in output
    code, output = cli("train", "--arch", "kmer", "--from-counts", tmp_path / "a.gdc", tmp_path / "a.gdc", "-o",
                       tmp_path / "twice.gdm")
    assert code == 0  # the same part twice is the sum of both (the user's choice)


def test_a_count_file_records_its_inputs_and_settings(tmp_path):
    assert cli("count", *TRAIN[:2], "-o", tmp_path / "a.gdc", "--max-order", "8", "--seed", "4")[0] == 0
    counts = KmerCounts.load(tmp_path / "a.gdc")
    assert counts.inputs == [p.name for p in TRAIN[:2]] and len(counts.digests) == 2
    assert counts.settings == {"config": KmerConfig(max_order=8).to_dict(), "mutation_rate": 0.3, "seed": 4,
                               "hash_bits": 24, "fold": True, "gooddetect": __version__}
    assert counts.records == 2400 and counts.foreground.positions == counts.background.positions > 0
    assert int(counts.foreground.top.sum()) == counts.foreground.positions - 8 * counts.records  # order 8 → 9-mers
    assert json.loads(json.dumps(counts.settings)) == counts.settings
