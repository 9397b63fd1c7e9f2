"""The container of gooddetect's files (model files, count files): a safetensors file, its arrays and one JSON
document in the metadata under the file kind's key, with a sha256 over the document and every array, and a header
whose keys are sorted so that equal contents give equal bytes. Nothing in it is ever executed (no pickle)."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .runtime import atomic_output

# numpy dtype name -> safetensors dtype code
SAFETENSORS_DTYPES = {"float32": "F32", "float16": "F16", "float64": "F64", "int8": "I8", "uint8": "U8",
                      "int16": "I16", "uint16": "U16", "int32": "I32", "uint32": "U32", "int64": "I64",
                      "uint64": "U64"}


def write(path: str | os.PathLike, key: str, document: str, tensors: dict[str, np.ndarray]) -> None:
    """Write the file atomically (a previous file at `path` survives any failure)."""
    from safetensors.numpy import save

    blob = canonical_header(save(tensors, metadata={key: document, "sha256": checksum(document, tensors)}))
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
