"""The paper's data format: TFRecord files of tf.train.Examples in genomics_ood's layout (x, y) and TFDS's (seq,
label), plain or GZIP, written by an independent writer (the `tfrecord` package, on real protocol buffers), read
without TensorFlow; every damage is one InputError naming the file and the record; the CLI commands take them."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from gooddetect.errors import InputError
from gooddetect.seqio import read_chunks, read_sequences
from gooddetect.tfrecord import masked_crc
from fixtures import DATA, gd, read_tsv

tfrecord_writer = pytest.importorskip("tfrecord.writer", reason="the tfrecord package writes the reference files")
RNG = np.random.default_rng(5)
SEQS = ["".join(RNG.choice(list("ACGT"), n)) for n in (250, 250, 120, 60)]
LABELS = [3, 0, 7, 3]


def write(path: Path, examples: list[dict], gz: bool = False) -> Path:
    """Examples {feature: (value, 'byte'|'int')} through the tfrecord package's writer, GZIP-compressed if asked."""
    plain = path.with_suffix(".plain")
    writer = tfrecord_writer.TFRecordWriter(str(plain))
    for example in examples:
        writer.write(example)
    writer.close()
    data = plain.read_bytes()
    plain.unlink()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def research(seq: str, label: int) -> dict:
    return {"x": (" ".join(str("ACGT".index(b)) for b in seq).encode(), "byte"), "y": (label, "int")}


def tfds(seq: str, label: int) -> dict:
    return {"seq": (seq.encode(), "byte"), "label": (label, "int")}


@pytest.mark.parametrize("layout", [research, tfds])
@pytest.mark.parametrize("gz", [False, True])
def test_both_layouts_plain_and_gzip(tmp_path, layout, gz):
    path = write(tmp_path / "before_2011_in_tr.tfrecord", [layout(s, y) for s, y in zip(SEQS, LABELS)], gz)
    assert list(read_sequences(str(path))) == [(f"before_2011_in_tr_{i}", s) for i, s in enumerate(SEQS, start=1)]
    chunk = next(read_chunks(str(path)))
    assert chunk.format == "tfrecord" and [r.name.split()[1] for r in chunk.records] == [f"class={y}" for y in LABELS]


def frame(example: bytes) -> bytes:
    length = struct.pack("<Q", len(example))
    return length + struct.pack("<I", masked_crc(length)) + example + struct.pack("<I", masked_crc(example))


def good_frames(tmp_path: Path) -> bytes:
    return write(tmp_path / "good.tfrecord", [research(s, y) for s, y in zip(SEQS, LABELS)]).read_bytes()


def damaged(tmp_path: Path, case: str) -> tuple[bytes, str]:
    good = good_frames(tmp_path)
    first = 12 + struct.unpack("<Q", good[:8])[0] + 4  # the first frame's end
    if case == "data_crc":
        return good[:first - 1] + bytes([good[first - 1] ^ 1]) + good[first:], r"record 1: bad CRC of the record data"
    if case == "length_crc":
        return good[:first] + good[first:first + 8] + b"\0\0\0\0" + good[first + 12:], \
            r"record 2: bad CRC of the record length"
    if case == "truncated":
        return good[:first + 30], r"record 2: truncated"
    if case == "missing_feature":
        return good + frame(write(tmp_path / "y.tfrecord", [{"y": (1, "int")}]).read_bytes()[12:-4]), \
            r"record 5: no sequence feature \('x' or 'seq'\)"
    if case == "bad_base":
        return good + frame(write(tmp_path / "b.tfrecord", [{"x": (b"0 1 7", "byte")}]).read_bytes()[12:-4]), \
            r"record 5: feature 'x' holds a value outside 0-3"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["data_crc", "length_crc", "truncated", "missing_feature", "bad_base"])
def test_damaged_files_name_file_and_record(tmp_path, case):
    data, pattern = damaged(tmp_path, case)
    path = tmp_path / "damaged.tfrecord"
    path.write_bytes(data)
    with pytest.raises(InputError, match=rf"^{path}: {pattern}"):
        list(read_sequences(str(path)))


def test_damaged_file_through_the_cli_leaves_no_output(tmp_path):
    data, _ = damaged(tmp_path, "data_crc")
    path = tmp_path / "damaged.tfrecord"
    path.write_bytes(data)
    done = gd("windows", path, "-o", tmp_path / "w.fa", check=False)
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "record 1: bad CRC" in lines[0]
    assert not (tmp_path / "w.fa").exists()


@pytest.fixture(scope="module")
def paper_directories(tmp_path_factory) -> dict[str, Path]:
    """The example data as the paper's dataset directories hold it: training windows with their class (y), and
    in-distribution and OOD validation windows."""
    root = tmp_path_factory.mktemp("genomics_ood")
    train_files = sorted((DATA / "train").glob("*.fa.gz"))
    examples = [research(seq, label) for label, path in enumerate(train_files)
                for _, seq in read_sequences(str(path))]
    paths = {"before_2011_in_tr": write(root / "before_2011_in_tr.tfrecord", examples[::4], gz=True)}
    for split, source in (("between_2011-2016_in_val", "val_in"), ("between_2011-2016_ood_val", "val_ood")):
        paths[split] = write(root / f"{split}.tfrecord", [research(s, 0) for _, s in
                                                          read_sequences(str(DATA / f"{source}.fa.gz"))])
    return paths


def test_the_papers_pipeline_on_tfrecord_directories(paper_directories, tmp_path):
    paths = paper_directories
    model = tmp_path / "m.gdm"
    gd("train", paths["before_2011_in_tr"], "-o", model, "--arch", "kmer", "--max-order", "8", "--record-classes",
       "--classifier-order", "6", "--threads", "1")
    info = json.loads(gd("info", "--json", model).stdout)
    assert info["models"]["classifier"]["classes"] == ["0", "1", "2", "3", "4"]
    gd("calibrate", model, "--in-dist", paths["between_2011-2016_in_val"], "--threads", "1")
    gd("score", model, paths["between_2011-2016_ood_val"], "-o", tmp_path / "s.tsv", "--threads", "1")
    rows = read_tsv((tmp_path / "s.tsv").read_text())
    assert len(rows) == 500 and rows[0]["read_id"] == "between_2011-2016_ood_val_1"
    assert {r["class"] for r in rows} <= {"0", "1", "2", "3", "4"}
    done = gd("evaluate", model, "--in-dist", paths["between_2011-2016_in_val"], "--ood",
              paths["between_2011-2016_ood_val"], "--json", tmp_path / "e.json", "--threads", "1")
    result = json.loads((tmp_path / "e.json").read_text())
    assert {"llr", "msp", "entropy"} <= set(result["scores"]) and b"llr" in done.stdout
