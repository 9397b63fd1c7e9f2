"""The support table: which long k-mers the references hold, so that a read sharing none of them is called foreign.

The likelihood ratio cancels composition by design, so a read of an organism unlike every reference (human, a
virus) can still score like the references' own sequence. Exact k-mer evidence does not: a read that shares no
K-mer with the references is foreign whatever its likelihoods, as a Kraken2 read without a hit is unclassified.
The table keeps the canonical (K, W) minimizers of every training sequence (the smallest hash among W consecutive
K-mers; any K + W - 1 known bases hold one) in a blocked Bloom filter (a key's bits in one cache line) of at least
BITS_PER_KEY bits per distinct minimizer, so it stays a small part of the model file. A read's support is the
fraction of its minimizers the filter holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .alphabet import encode
from .errors import ModelFileError
from .runtime import in_thread_shares
from ._core import support as kernels

K = 20  # long enough that a foreign read hits only by chance (one 20-mer in about 10^4 at 37 Mb of references)
W = 12  # a 31 bp read (K + W - 1) always has a minimizer
HASHES = 7
BITS_PER_KEY = 10  # at least: a false hit for one lookup in 50 to 100
ARRAY = "bits"
COMPACT_KEYS = 1 << 24  # minimizer hashes gathered before they are reduced to the distinct ones
MIN_SUPPORT = 0.15  # a read with a smaller fraction of its minimizers in the references is foreign...
CHANCE = 0.01  # ...unless more are found than false hits and shared low-complexity k-mers explain (this share)


@dataclass
class SupportTable:
    """A Bloom filter of the references' minimizer hashes, with the settings that made them."""

    bits: np.ndarray  # uint64 [2^n words]
    k: int = K
    w: int = W
    hashes: int = HASHES
    keys: int = 0  # distinct minimizers inserted

    @classmethod
    def from_keys(cls, keys: np.ndarray, k: int = K, w: int = W, hashes: int = HASHES) -> SupportTable:
        """The table of the distinct minimizer hashes `keys` (see minimizer_keys)."""
        words = 1 << max(3, int(np.ceil(np.log2(max(1, len(keys)) * BITS_PER_KEY / 64))))  # whole 512-bit blocks
        bits = np.zeros(words, dtype=np.uint64)
        kernels.insert(np.ascontiguousarray(keys, dtype=np.uint64), bits, hashes)
        return cls(bits, k, w, hashes, len(keys))

    def lookup(self, codes: np.ndarray, lengths: np.ndarray, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(minimizers found, minimizers looked up) per row of a padded batch of codes, in one share of the rows
        per thread (the loop releases the GIL)."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        hits = np.zeros(len(codes), dtype=np.int64)
        lookups = np.zeros(len(codes), dtype=np.int64)

        def rows(first: int, last: int) -> None:
            kernels.query(codes[first:last], lengths[first:last], self.bits, self.k, self.w, self.hashes,
                          hits[first:last], lookups[first:last])

        in_thread_shares(rows, len(codes), threads)
        return hits, lookups

    def config(self) -> dict:
        return {"k": self.k, "w": self.w, "hashes": self.hashes, "keys": self.keys, "words": len(self.bits)}

    @classmethod
    def from_state(cls, config: dict, bits: np.ndarray) -> SupportTable:
        try:
            table = cls(bits, int(config["k"]), int(config["w"]), int(config["hashes"]), int(config["keys"]))
        except (KeyError, TypeError, ValueError):
            raise ModelFileError("support table: its settings are missing or not integers") from None
        if not (1 <= table.k <= 31 and 1 <= table.w <= 64 and 1 <= table.hashes <= 7) or \
                len(bits) != config.get("words") or len(bits) < 8 or len(bits) & (len(bits) - 1):
            raise ModelFileError("support table: settings out of range or a filter of the wrong size")
        return table


def minimizer_keys(sequences: Iterable[np.ndarray], k: int = K, w: int = W) -> np.ndarray:
    """The distinct minimizer hashes of `sequences` (uint8 base codes; unknown bases break k-mers), sorted."""
    found, pending = [np.zeros(0, dtype=np.uint64)], 0
    for codes in sequences:
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        out = np.empty(len(codes), dtype=np.uint64)
        found.append(out[:kernels.minimizers(codes, k, w, out)].copy())
        pending += len(found[-1])
        if pending > COMPACT_KEYS:  # memory follows the distinct keys, not the training bases
            found, pending = [distinct(np.concatenate(found))], 0
    return distinct(np.concatenate(found))


def distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct values of `keys`, sorted (np.unique's hashing is many times slower on millions of keys)."""
    ordered = np.sort(keys)
    return ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])] if len(ordered) else ordered


def sequences_of(paths: list[str]) -> Iterable[np.ndarray]:
    """The base codes of every record of the input files (FASTA, FASTQ or TFRecord), one record at a time."""
    from .seqio import read_sequences

    for path in paths:
        for _, seq in read_sequences(path):
            yield encode(seq)


def foreign(hits: np.ndarray, lookups: np.ndarray, min_support: float = MIN_SUPPORT) -> np.ndarray:
    """Whether each read is foreign: less than `min_support` of its minimizers found, and no more than CHANCE
    explains (one-sided 5 %, normal approximation). A short read needs 2 hits of about 12; a long read with
    sequencing errors, whose intact k-mers are few but many times what chance gives, is not foreign."""
    expected = lookups * CHANCE
    by_chance = expected + 1.645 * np.sqrt(expected * (1 - CHANCE)) + 1
    return (lookups > 0) & (hits < min_support * lookups) & (hits < by_chance)


def support_fraction(hits: np.ndarray, lookups: np.ndarray) -> np.ndarray:
    """hits / lookups; NaN where nothing was looked up (shorter than K + W - 1 known bases)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(lookups > 0, hits / np.maximum(lookups, 1), np.nan)
