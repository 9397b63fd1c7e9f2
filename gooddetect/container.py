"""The container of gooddetect's files (model files, count files): a safetensors file, its arrays and one JSON
document in the metadata under the file kind's key, with a sha256 over the document and every array, and a header
whose keys are sorted so that equal contents give equal bytes. Nothing in it is ever executed (no pickle).

An array may be stored deflated (zlib): its bytes as uint8, with its dtype and shape in the metadata under
"deflated"; readers inflate it (never past its declared size) and the checksum covers the inflated arrays."""

from __future__ import annotations

import hashlib
import json
import os
import zlib

import numpy as np

from .runtime import atomic_output

# numpy dtype name -> safetensors dtype code
SAFETENSORS_DTYPES = {"float32": "F32", "float16": "F16", "float64": "F64", "int8": "I8", "uint8": "U8",
                      "int16": "I16", "uint16": "U16", "int32": "I32", "uint32": "U32", "int64": "I64",
                      "uint64": "U64"}


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
