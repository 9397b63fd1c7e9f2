"""The base alphabet, defined once: A=0, C=1, G=2, T=3 (any case); every other symbol is UNKNOWN (4), which also
pads short windows."""

from __future__ import annotations

import numpy as np

from ._core.sequences import translate_all

BASES = "ACGT"
N_BASES = 4
UNKNOWN = 4

_ENCODE = np.full(256, UNKNOWN, dtype=np.uint8)
for _code, _base in enumerate(BASES):
    _ENCODE[ord(_base)] = _ENCODE[ord(_base.lower())] = _code
_ENCODE_TABLE = _ENCODE.tobytes()  # for bytes.translate and translate_all: C loops, several times faster than numpy's
_DECODE = np.frombuffer(b"ACGTN", dtype=np.uint8)
_COMPLEMENT = np.array([3, 2, 1, 0, UNKNOWN], dtype=np.uint8)


def encode(seq: str | bytes, out: np.ndarray | None = None) -> np.ndarray:
    """Sequence text → uint8 codes (unknown symbols → 4), written into `out` (as many codes) when given."""
    data = seq if isinstance(seq, bytes) else seq.encode("ascii", "replace")
    codes = np.frombuffer(data.translate(_ENCODE_TABLE), dtype=np.uint8)
    if out is None:
        return codes.copy()
    out[:] = codes
    return out


def encode_all(seqs: list[str], out: np.ndarray) -> None:
    """The codes of the sequences end to end, written from out[0] (no joined copy of the sequences)."""
    translate_all(seqs, _ENCODE_TABLE, out)


def decode(codes: np.ndarray) -> str:
    """uint8 codes → sequence text (4 → 'N')."""
    return _DECODE[np.minimum(codes, UNKNOWN)].tobytes().decode("ascii")


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of codes along the last axis (unknown stays unknown)."""
    return _COMPLEMENT[codes[..., ::-1]]


def reverse_complement_padded(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Reverse complement of each row of padded codes [B, W] (row i holds lengths[i] bases), padded the same way."""
    source = np.asarray(lengths)[:, None] - 1 - np.arange(codes.shape[1])
    inside = source >= 0
    picked = np.take_along_axis(codes, np.where(inside, source, 0), axis=1)
    return np.where(inside, _COMPLEMENT[picked], np.uint8(UNKNOWN))


def mask_padding(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Codes [B, L] uint8 with every position >= lengths[i] and every non-ACGT code set to UNKNOWN."""
    codes = np.asarray(codes, dtype=np.uint8)
    inside = np.arange(codes.shape[1]) < np.asarray(lengths)[:, None]
    return np.where(inside & (codes < UNKNOWN), codes, np.uint8(UNKNOWN))


def gc_fraction(codes: np.ndarray) -> np.ndarray:
    """Fraction of G+C among the known bases of each row (NaN for rows without known bases)."""
    known = (codes < UNKNOWN).sum(axis=-1)
    gc = ((codes == 1) | (codes == 2)).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return gc / known
