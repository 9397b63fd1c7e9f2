"""The container of gooddetect's files (model files, count files): a safetensors file, its arrays and one JSON
document in the metadata under the file kind's key, with a sha256 over the document and every array, and a header
whose keys are sorted so that equal contents give equal bytes. Nothing in it is ever executed (no pickle). Readers
see the arrays as read-only views of the memory-mapped file, checked against the header first: loading copies
nothing it does not need to rebuild.

An array may be stored deflated (zlib): its bytes as uint8, with its dtype and shape in the metadata under
"deflated"; readers inflate it (never past its declared size) and the checksum covers the inflated arrays."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import zlib
from dataclasses import dataclass

import numpy as np

from .files import atomic_output

# numpy dtype name -> safetensors dtype code
SAFETENSORS_DTYPES = {"float32": "F32", "float16": "F16", "float64": "F64", "int8": "I8", "uint8": "U8",
                      "int16": "I16", "uint16": "U16", "int32": "I32", "uint32": "U32", "int64": "I64",
                      "uint64": "U64"}


CODE_DTYPES = {code: np.dtype(name) for name, code in SAFETENSORS_DTYPES.items()}
MAX_HEADER = 100 << 20  # bytes of JSON header at most (safetensors' own limit)
DEFLATED = "deflated"  # the metadata entry: {name: [numpy dtype name, shape]} of the arrays stored deflated


def write(path: str | os.PathLike, key: str, document: str, tensors: dict[str, np.ndarray],
          deflate: tuple[str, ...] = ()) -> None:
    """Write the file atomically (a previous file at `path` survives any failure), the arrays named in `deflate`
    deflated."""
    from safetensors.numpy import save

    metadata = {key: document, "sha256": checksum(document, tensors)}
    stored = dict(tensors)
    if deflate:
        declared = {name: [tensors[name].dtype.name, list(tensors[name].shape)] for name in deflate}
        metadata[DEFLATED] = json.dumps(declared, sort_keys=True)
        for name in deflate:
            packed = zlib.compress(memoryview(np.ascontiguousarray(tensors[name])).cast("B"), 6)
            stored[name] = np.frombuffer(packed, dtype=np.uint8)
    blob = canonical_header(save(stored, metadata=metadata))
    with atomic_output(path, "wb") as handle:
        handle.write(blob)


@dataclass(frozen=True, eq=False)
class Stored:
    """A container file as read: its metadata (str -> str), the (shape, safetensors dtype code) of every array as
    stored, and the arrays themselves, read-only views of the memory-mapped file (it stays mapped while any view
    lives)."""

    metadata: dict[str, str]
    specs: dict[str, tuple[tuple[int, ...], str]]
    arrays: dict[str, np.ndarray]


def read(path: str | os.PathLike) -> Stored:
    """The container at `path` (an OSError if it cannot be opened, a ValueError naming what is wrong if it is not a
    whole safetensors file: header, dtypes, shapes and offsets are checked before any array is made)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < 8:
            raise ValueError("file shorter than a safetensors header")
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    header_size = int.from_bytes(data[:8], "little")
    if not 2 <= header_size <= min(MAX_HEADER, size - 8):
        raise ValueError(f"header size {header_size} does not fit the file")
    try:
        header = json.loads(data[8:8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable header ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("metadata is not a map of strings")
    start, end_of_data = 8 + header_size, size - 8 - header_size
    specs, spans = {}, []  # spans: (first, last, name) of every array in the data
    for name, entry in header.items():
        if not (isinstance(entry, dict) and entry.get("dtype") in CODE_DTYPES and isinstance(entry.get("shape"), list)
                and all(isinstance(n, int) and n >= 0 for n in entry["shape"])
                and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
                and all(isinstance(n, int) for n in entry["data_offsets"])):
            raise ValueError(f"array {name}: malformed entry")
        shape, (first, last) = tuple(entry["shape"]), entry["data_offsets"]
        if not 0 <= first <= last <= end_of_data or \
                last - first != int(np.prod(shape, dtype=np.int64)) * CODE_DTYPES[entry["dtype"]].itemsize:
            raise ValueError(f"array {name}: offsets {first}-{last} do not fit its shape or the file")
        specs[name] = (shape, entry["dtype"])
        spans.append((first, last, name))
    spans.sort()
    if [0] + [last for _, last, _ in spans] != [first for first, _, _ in spans] + [end_of_data]:
        raise ValueError("arrays overlap or leave gaps in the data")
    arrays = {}
    for first, last, name in spans:
        shape, dtype = specs[name][0], CODE_DTYPES[specs[name][1]]
        array = np.frombuffer(data, dtype=dtype, count=(last - first) // dtype.itemsize, offset=start + first) \
            if last > first else np.empty(0, dtype=dtype)
        arrays[name] = array.reshape(shape)
    return Stored(metadata, specs, arrays)


def canonical_header(blob: bytes) -> bytes:
    """The safetensors file with its JSON header keys sorted (safetensors orders metadata arbitrarily), padded with
    spaces to the same length, so that equal models give byte-identical files."""
    size = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8:8 + size]), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if len(header) > size:
        raise AssertionError("canonical safetensors header is longer than the original")
    return blob[:8] + header.ljust(size, b" ") + blob[8 + size:]



def checksum(document: str, tensors: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(document.encode("utf-8"))
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        digest.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def declared(metadata: dict, stored: dict[str, tuple[tuple[int, ...], str]]) -> dict[str, tuple[tuple[int, ...], str]]:
    """(shape, safetensors dtype code) of every array as readers see it: the stored one, or for a deflated array
    the one declared in the metadata. A malformed declaration is a ValueError."""
    specs = dict(stored)
    for name, (dtype, shape) in _deflated(metadata).items():
        if name not in stored or stored[name][1] != "U8" or len(stored[name][0]) != 1:
            raise ValueError(f"deflated array {name} is not stored as bytes")
        specs[name] = (tuple(shape), SAFETENSORS_DTYPES[dtype])
    return specs


def inflate(metadata: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as written: the deflated ones inflated to their declared dtype and shape (a stream that does not
    end exactly there is a ValueError)."""
    tensors = dict(tensors)
    for name, (dtype, shape) in _deflated(metadata).items():
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        stream = zlib.decompressobj()
        try:
            data = stream.decompress(tensors[name].tobytes(), size)
        except zlib.error as exc:
            raise ValueError(f"deflated array {name}: {exc}") from None
        if len(data) != size or not stream.eof or stream.unconsumed_tail or stream.unused_data:
            raise ValueError(f"deflated array {name} does not inflate to its declared size")
        tensors[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
    return tensors


def _deflated(metadata: dict) -> dict[str, tuple[str, list[int]]]:
    if DEFLATED not in metadata:
        return {}
    entries = json.loads(metadata[DEFLATED])
    if not isinstance(entries, dict) or not all(
            isinstance(v, list) and len(v) == 2 and v[0] in SAFETENSORS_DTYPES and isinstance(v[1], list)
            and all(isinstance(n, int) and n >= 0 for n in v[1]) for v in entries.values()):
        raise ValueError("malformed deflated-array list")
    return {name: (dtype, shape) for name, (dtype, shape) in entries.items()}
