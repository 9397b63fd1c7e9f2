"""Damaged, foreign and hostile model files: each is refused with one `gooddetect: error:` line naming the file,
and nothing in a model file is ever executed (pickles carrying code are refused without being unpickled)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save

from fixtures import BAD, CLI_ENV, gooddetect_command, make_bad
from gooddetect import container
from gooddetect.container import checksum as _checksum
from gooddetect.detector import FORMAT_VERSION, Detector, read_model_file
from gooddetect.errors import ModelFileError


READS = BAD / "lengths.fa"


def gooddetect(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*gooddetect_command(), *map(str, args)], capture_output=True, text=True, errors="replace",
                          stdin=subprocess.DEVNULL, timeout=300, env=CLI_ENV, **kwargs)


def assert_refused(result, path: Path, *fragments: str) -> None:
    """Exit 1 with exactly one `gooddetect: error:` line that names `path`, no traceback, nothing on stdout."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gooddetect: error: {path}"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""


def score_and_info_refuse(model: Path, tmp_path: Path, *fragments: str) -> None:
    out = tmp_path / "out.tsv"
    assert_refused(gooddetect("score", model, READS, "-o", out), model, *fragments)
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
    assert_refused(gooddetect("info", model), model, *fragments)


def header_end(blob: bytes) -> int:
    """Offset of the first tensor byte: 8-byte little-endian header length, then the JSON header."""
    return 8 + int.from_bytes(blob[:8], "little")


# -- a good model -------------------------------------------------------------------------------------------------

def test_info_and_info_json(tiny_model):
    as_json = gooddetect("info", tiny_model, "--json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert (document["format"], document["format_version"], document["kind"]) == \
        ("gooddetect-model", FORMAT_VERSION, "lstm")
    assert (document["window_length"], document["min_length"], document["threshold"]) == (250, 31, None)
    assert document["models"]["foreground"]["hidden"] == 16 == document["models"]["background"]["hidden"]
    assert document["models"]["background"]["kmer_input"] == 0  # the default: the background has no k-mer table
    assert document["parameters"]["foreground"] > document["parameters"]["background"] > 0
    assert document["file_bytes"] == tiny_model.stat().st_size
    text = gooddetect("info", tiny_model)
    assert text.returncode == 0, text.stderr
    fields = dict(line.split(None, 1) for line in text.stdout.splitlines())
    assert fields["window_length"] == "250" and fields["kind"] == "lstm" and fields["threshold"] == "none"


def test_scoring_uses_the_window_length_stored_in_the_model(tiny_model, tmp_path):
    """`score` has no --length: the model file's own window length is used. Re-saving the tiny model with
    window_length 100 (the LSTM weights do not depend on it) changes how reads are cut, and `info` shows it."""
    detector = Detector.load(tiny_model)
    detector.meta["window_length"] = 100
    short = tmp_path / "w100.gdm"
    detector.save(short)
    info = json.loads(gooddetect("info", short, "--json").stdout)
    assert info["window_length"] == 100
    rows = {}
    for model in (tiny_model, short):
        result = gooddetect("score", model, READS, "-o", tmp_path / "out.tsv", "--threads", 1)
        assert result.returncode == 0, result.stderr
        lines = (tmp_path / "out.tsv").read_text().splitlines()
        rows[model] = [line.split("\t")[2] for line in lines[1:]]  # n_windows of reads 1, 49, 50, 249, 250, 251 bp
    assert rows[tiny_model] == ["0", "0", "1", "1", "1", "2"]
    assert rows[short] == ["0", "0", "1", "3", "3", "3"]  # 249 bp: 100 + 100 + 49; 250: 100+100+50; 251: 100+100+51
    assert gooddetect("score", tiny_model, READS, "--length", 100).returncode == 2  # no such option


# -- damaged files --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("keep", ["0", "7", "header-1", "header", "last-1"])
def test_truncated_model_is_refused(keep, tiny_model, tmp_path):
    blob = tiny_model.read_bytes()
    sizes = {"header-1": header_end(blob) - 1, "header": header_end(blob), "last-1": len(blob) - 1}
    damaged = tmp_path / "truncated.gdm"
    damaged.write_bytes(blob[:sizes.get(keep) or int(keep)])
    assert_refused(gooddetect("info", damaged), damaged)


def test_truncated_model_is_refused_by_score(tiny_model, tmp_path):
    blob = tiny_model.read_bytes()
    damaged = tmp_path / "truncated.gdm"
    damaged.write_bytes(blob[: len(blob) * 2 // 3])
    score_and_info_refuse(damaged, tmp_path, "truncated")


def _flip_positions(blob: bytes) -> dict[str, int]:
    header = blob[8:header_end(blob)]
    return {
        "header-length": 0,
        "json-brace": 8,
        "format-version": 8 + header.index(b"format_version") + len(b"format_version") + 4,
        "window-length": 8 + header.index(b"window_length") + len(b"window_length") + 4,
        "checksum-digest": 8 + header.index(b'"sha256"') + 12,
        "header-padding": header_end(blob) - 1,
        "first-tensor-byte": header_end(blob),
        "middle-tensor-byte": (header_end(blob) + len(blob)) // 2,
        "last-byte": len(blob) - 1,
    }


@pytest.mark.parametrize("where", ["header-length", "json-brace", "format-version", "checksum-digest",
                                   "header-padding", "first-tensor-byte", "last-byte"])
def test_flipped_byte_is_detected(where, tiny_model, tmp_path):
    blob = bytearray(tiny_model.read_bytes())
    blob[_flip_positions(bytes(blob))[where]] ^= 0x01
    damaged = tmp_path / "flipped.gdm"
    damaged.write_bytes(bytes(blob))
    assert_refused(gooddetect("info", damaged), damaged)


@pytest.mark.parametrize("where", ["window-length", "middle-tensor-byte"])
def test_flipped_byte_is_detected_by_score(where, tiny_model, tmp_path):
    blob = bytearray(tiny_model.read_bytes())
    blob[_flip_positions(bytes(blob))[where]] ^= 0x01
    damaged = tmp_path / "flipped.gdm"
    damaged.write_bytes(bytes(blob))
    score_and_info_refuse(damaged, tmp_path, "checksum mismatch")


def test_every_flipped_byte_is_detected_in_process(tiny_model, tmp_path):
    """A sweep over the whole file (every 97th byte, two different bits): always ModelFileError, never a load."""
    blob = tiny_model.read_bytes()
    damaged = tmp_path / "flipped.gdm"
    for position in range(0, len(blob), 97):
        for bit in (0x01, 0x80):
            copy = bytearray(blob)
            copy[position] ^= bit
            damaged.write_bytes(bytes(copy))
            with pytest.raises(ModelFileError, match="flipped.gdm"):
                Detector.load(damaged)


# -- files that are not what they claim ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["pickle", "torch-save"])
def test_pickle_with_code_is_refused_without_running_it(kind, tmp_path):
    marker = tmp_path / "code-was-run"
    model = tmp_path / f"{kind}.gdm"
    (make_bad.write_code_pickle if kind == "pickle" else make_bad.write_code_torch_save)(model, marker)
    out = tmp_path / "out.tsv"
    for args in (("score", model, READS, "-o", out), ("score", "-m", model, READS, "-o", out), ("info", model),
                 ("info", "--json", model)):
        result = gooddetect(*args)
        assert_refused(result, model, "not a gooddetect model file")
        assert not marker.exists(), f"{args} ran code from the model file"
    assert not out.exists()
    # control: the payload is live, i.e. unpickling it the unsafe way does create the marker file
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(BAD)!r}); import make_bad; "
                    f"make_bad.load_unsafely({str(model)!r})"], check=True, timeout=120)
    assert marker.exists()


@pytest.mark.parametrize("kind", ["empty", "directory", "missing", "text"])
def test_not_a_model_file(kind, tmp_path):
    model = tmp_path / "model.gdm"
    if kind == "empty":
        model.write_bytes(b"")
    elif kind == "directory":
        model.mkdir()
    elif kind == "text":
        model.write_text(">r1\nACGT\n")
    assert_refused(gooddetect("info", model), model)


# -- well-formed files with unusable metadata (valid checksum) -------------------------------------------------------

def _resave(tiny_model: Path, path: Path, edit) -> Path:
    """Re-write the tiny model with its metadata document changed by `edit(dict) -> dict | str`, and a correct
    checksum, using the detector's own serialisation."""
    document, tensors, _ = Detector.load(tiny_model)._serialisable()
    edited = edit(json.loads(document))
    text = edited if isinstance(edited, str) else json.dumps(edited, sort_keys=True)
    path.write_bytes(save(tensors, metadata={"gooddetect": text, "sha256": _checksum(text, tensors)}))
    return path


def test_newer_format_version_is_refused(tiny_model, tmp_path):
    model = _resave(tiny_model, tmp_path / "v99.gdm", lambda d: {**d, "format_version": 99})
    score_and_info_refuse(model, tmp_path, "format version 99", "upgrade gooddetect")


METADATA_EDITS = {
    "version-not-a-number": (lambda d: {**d, "format_version": "abc"}, "format version"),
    "not-an-object": (lambda d: "[]", "not a gooddetect model file"),
    "no-kind": (lambda d: {k: v for k, v in d.items() if k != "kind"}, "kind"),
    "unknown-kind": (lambda d: {**d, "kind": "transformer"}, "transformer"),
    "no-window-length": (lambda d: {k: v for k, v in d.items() if k != "window_length"}, "window_length"),
    "no-version": (lambda d: {k: v for k, v in d.items() if k != "gooddetect_version"}, "gooddetect_version"),
    "config-mismatch": (lambda d: {**d, "models": {**d["models"], "foreground": {
        **d["models"]["foreground"], "hidden": 32}}}, "foreground.lstm.weight_ih_l0 is F32.*calls for F32"),
    "old-format": (lambda d: {**d, "format_version": 1}, "format version 1 .*train the model again"),
    "foreign-config-key": (lambda d: {**d, "models": {**d["models"], "background": {
        **d["models"]["background"], "attention": True}}}, "background model: bad LSTM configuration"),
    "stray-part": (lambda d: {**d, "models": {**d["models"], "decoder": {}}}, "at most a classifier"),
    "bad-threshold": (lambda d: {**d, "threshold": {"value": "high"}}, "threshold"),
    "bad-strands": (lambda d: {**d, "strands": "reverse"}, "strands"),
    "unknown-classifier-kind": (lambda d: {**d, "classifier_kind": "svm"}, "classifier_kind"),
}


@pytest.mark.parametrize("case", sorted(METADATA_EDITS))
def test_unusable_metadata_is_refused(case, tiny_model, tmp_path):
    edit, fragment = METADATA_EDITS[case]
    model = _resave(tiny_model, tmp_path / f"{case}.gdm", edit)
    with pytest.raises(ModelFileError, match=fragment) as error:
        Detector.load(model)
    assert str(model) in str(error.value)


def test_unusable_metadata_is_refused_by_the_cli(tiny_model, tmp_path):
    model = _resave(tiny_model, tmp_path / "no-kind.gdm", METADATA_EDITS["no-kind"][0])
    score_and_info_refuse(model, tmp_path, "kind")


LOAD_AND_MEASURE = """
import resource, sys, time
from gooddetect.detector import Detector
from gooddetect.errors import ModelFileError
import gooddetect.models.kmer.model, gooddetect.models.lstm.model  # imported before the clock starts
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    Detector.load(sys.argv[1])
except ModelFileError as error:
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(time.perf_counter() - started, grown, error)
"""


@pytest.fixture(scope="module")
def tiny_kmer_model(tmp_path_factory) -> Path:
    model = tmp_path_factory.mktemp("kmer") / "k.gdm"
    result = gooddetect("train", make_bad.TRAIN_READS, "-o", model, "--arch", "kmer", "--hash-bits", "12")
    assert result.returncode == 0, result.stderr
    return model


@pytest.mark.parametrize("kind, edit", [
    ("lstm", lambda c: {**c, "hidden": 8192}),  # the largest allowed: 4 x 8192^2 float32 per weight matrix, 1 GiB
    ("kmer", lambda c: {**c, "hash_bits": 26}),  # 1 GiB tables
    ("kmer", lambda c: {**c, "direct_order": 12, "max_order": 12}),
])
def test_a_lying_config_is_refused_quickly_in_flat_memory(kind, edit, tiny_model, tiny_kmer_model, tmp_path):
    """Anyone can recompute the checksum: configs that call for huge arrays the file does not hold are refused from
    the header, before anything is allocated."""
    source = tiny_model if kind == "lstm" else tiny_kmer_model
    model = _resave(source, tmp_path / "lying.gdm", lambda d: {**d, "models": {
        role: edit(config) for role, config in d["models"].items()}})
    result = subprocess.run([sys.executable, "-c", LOAD_AND_MEASURE, str(model)], capture_output=True, text=True,
                            timeout=120, env=CLI_ENV)
    _seconds, grown_mb, message = result.stdout.split(" ", 2)
    assert "the config calls for" in message or "arrays do not match" in message, result.stdout + result.stderr
    assert float(grown_mb) < 50, result.stdout  # nothing was allocated (memory, not time: the CI machine may be busy)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_checksum_mismatch_is_named_before_the_error_of_a_part(threads, tiny_kmer_model, tmp_path):
    """The checksum is computed beside the parts' rebuilds: an array damaged so that a part cannot be built is still
    reported as a checksum mismatch; with the checksum recomputed, as the part's own error."""
    document, tensors, _ = Detector.load(tiny_kmer_model)._serialisable()
    name = next(key for key in tensors if key.startswith("foreground.hashed_") and key.endswith("_fill"))
    damaged = {**tensors, name: tensors[name] + 1}  # bucket counts that no longer add up to the stored slots
    for path, digest, fragment in ((tmp_path / "damaged.gdm", _checksum(document, tensors), "checksum mismatch"),
                                   (tmp_path / "resaved.gdm", _checksum(document, damaged), "bucket counts")):
        path.write_bytes(save(damaged, metadata={"gooddetect": document, "sha256": digest}))
        with pytest.raises(ModelFileError, match=fragment):
            Detector.load(path, threads)


def test_weights_survive_a_round_trip(tiny_model, tmp_path):
    """Control for the tests above: re-saving unchanged gives a model with identical weights."""
    model = _resave(tiny_model, tmp_path / "same.gdm", lambda d: d)
    original, copy = Detector.load(tiny_model), Detector.load(model)
    for role in ("foreground", "background"):
        a, b = getattr(original, role).state_arrays(), getattr(copy, role).state_arrays()
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# -- deflated arrays ---------------------------------------------------------------------------------------------

def _write_deflated(tiny_kmer_model: Path, path: Path, edit_stored=lambda stored, metadata, name: None) -> str:
    """Re-write the tiny k-mer model with its hashed slots (an array of any length) deflated, the stored form then
    changed by `edit_stored(stored arrays, metadata, name)`; returns the deflated array's name."""
    document, tensors, _ = Detector.load(tiny_kmer_model)._serialisable()
    name = next(k for k in tensors if k.startswith("foreground.hashed_") and k.endswith("_slots"))
    container.write(path, "gooddetect", document, tensors, deflate=(name,))
    with safe_open(str(path), framework="np") as handle:
        metadata, stored = handle.metadata(), {k: handle.get_tensor(k) for k in handle.keys()}
    assert stored[name].dtype == np.uint8 and stored[name].nbytes < tensors[name].nbytes
    assert json.loads(metadata["deflated"]) == {name: ["uint16", list(tensors[name].shape)]}
    edit_stored(stored, metadata, name)
    path.write_bytes(save(stored, metadata=metadata))
    return name


def test_a_deflated_array_reads_back_exactly(tiny_kmer_model, tmp_path):
    name = _write_deflated(tiny_kmer_model, tmp_path / "d.gdm")
    inflated, original = read_model_file(tmp_path / "d.gdm")[1][name], read_model_file(tiny_kmer_model)[1][name]
    np.testing.assert_array_equal(inflated, original)


def _declare_length(metadata: dict, name: str, change) -> None:
    declared = json.loads(metadata["deflated"])
    declared[name][1][0] = change(declared[name][1][0])
    metadata["deflated"] = json.dumps(declared)


DEFLATE_DAMAGE = {  # a stream that inflates past what it declares is cut there (a "zip bomb" costs no memory)
    "declared-shorter": lambda s, m, n: _declare_length(m, n, lambda length: length - 1),
    "declared-longer": lambda s, m, n: _declare_length(m, n, lambda length: length + 1),
    "truncated": lambda s, m, n: s.update({n: s[n][:-8]}),
    "trailing-bytes": lambda s, m, n: s.update({n: np.concatenate([s[n], np.zeros(4, np.uint8)])}),
    "not-bytes": lambda s, m, n: s.update({n: s[n].view(np.int8)}),
    "malformed-list": lambda s, m, n: m.update({"deflated": json.dumps({n: ["uint16", "long"]})}),
}


@pytest.mark.parametrize("case", sorted(DEFLATE_DAMAGE))
def test_a_damaged_deflated_array_is_refused(case, tiny_kmer_model, tmp_path):
    _write_deflated(tiny_kmer_model, tmp_path / f"{case}.gdm", DEFLATE_DAMAGE[case])
    with pytest.raises(ModelFileError, match="not a gooddetect model file, or truncated.*deflated"):
        Detector.load(tmp_path / f"{case}.gdm")


def test_a_format_2_file_is_still_read(tiny_kmer_model, tmp_path):
    """Format 2 (before one-byte counts and deflated arrays): direct counts in uint16, nothing deflated."""
    document, tensors, _ = Detector.load(tiny_kmer_model)._serialisable()
    old = {**json.loads(document), "format_version": 2}
    text = json.dumps(old, sort_keys=True)
    as_uint16 = {k: v.astype(np.uint16) if k.endswith(".direct_counts") else v for k, v in tensors.items()}
    assert any(tensors[k].dtype == np.uint8 for k in tensors if k.endswith(".direct_counts"))
    path = tmp_path / "v2.gdm"
    path.write_bytes(save(as_uint16, metadata={"gooddetect": text, "sha256": _checksum(text, as_uint16)}))
    old_model, new_model = Detector.load(path), Detector.load(tiny_kmer_model)
    for role in ("foreground", "background"):
        np.testing.assert_array_equal(getattr(old_model, role).top_counts, getattr(new_model, role).top_counts)
