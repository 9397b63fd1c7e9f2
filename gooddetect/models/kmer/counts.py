"""The k-mer kind's counts, made in one pass or in parts (`gooddetect count` on shards of a reference, then
`train --arch kmer --from-counts`), and their count file.

Counting is additive: the exact counts add up, the hashed tables keep the entries of the highest keys whatever
order they come in (see _core.kmer.insert), and the background's mutations are seeded by each batch's content; so
the counts of the parts, merged in the order of the inputs, are the counts of the whole and give a byte-identical
model file. A count file (the container of model files, format `gooddetect-counts`) records the counting settings,
the inputs and a digest of each, and is refused when its settings differ from the others'.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from ... import __version__, container
from ...alphabet import encode
from ...errors import ModelFileError, UsageError
from ...seqio import display_name, read_chunks
from ...support import distinct, minimizer_keys
from ...windows import sequence_slices
from ..configs import KmerConfig
from .model import BUCKET_SLOTS, Counter, KmerModel, count_pair

FORMAT_NAME = "gooddetect-counts"
FORMAT_VERSION = 2  # 2: the support table's minimizer hashes
SUPPORT_KEYS = "support.keys"
SLICE_BASES = 1 << 16  # long records are counted in slices of this many bases
UINT32_MAX = np.iinfo(np.uint32).max


@dataclass
class KmerCounts:
    """The foreground's and background's counts of some inputs, with what they were counted with (`settings`:
    the foreground's KmerConfig, the background's mutation rate, the seed, the hash bits counted in, and whether
    the tables are folded when the model is built) and where they come from (input names, a digest of each, records
    read), and the distinct minimizer hashes of the inputs (`support_keys`, for the model's support table)."""

    settings: dict
    foreground: Counter
    background: Counter
    inputs: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    records: int = 0
    support_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))

    @classmethod
    def count(cls, paths: list[str], config: KmerConfig, *, mutation_rate: float, seed: int, hash_bits: int,
              fold: bool) -> KmerCounts:
        """Count every k-mer of every record of `paths` (both models, one streaming pass)."""
        settings = {"config": config.to_dict(), "mutation_rate": mutation_rate, "seed": seed, "hash_bits": hash_bits,
                    "fold": fold, "gooddetect": __version__}
        digests, records, keys = [], [0], [np.zeros(0, dtype=np.uint64)]

        def batches():
            for path in paths:
                digest = hashlib.sha256()
                for chunk in read_chunks(path):
                    records[0] += len(chunk)
                    keys.append(minimizer_keys(map(encode, chunk.seqs)))
                    codes, lengths, skip = sequence_slices(chunk.seqs, SLICE_BASES, config.max_order)
                    digest.update(codes.tobytes())
                    yield codes, lengths, skip
                digests.append(digest.hexdigest())
                keys[:] = [distinct(np.concatenate(keys))]  # one file's keys at a time beside the distinct ones

        foreground, background = count_pair(batches(), config=config, background=config.background(),
                                            mutation_rate=mutation_rate, seed=seed, hash_bits=hash_bits)
        return cls(settings, foreground, background, [os.path.basename(display_name(p)) for p in paths], digests,
                   records[0], keys[0])

    def merge(self, other: KmerCounts, where: str) -> None:
        """Add the counts of `other` (inputs after this one's); counts of other settings are a UsageError naming
        `where`."""
        differing = sorted(key for key in self.settings if self.settings[key] != other.settings.get(key))
        if differing:
            raise UsageError(f"{where}: counted with other settings ({', '.join(differing)}) than the first count "
                             "file; count every part with the same options")
        self.foreground.merge(other.foreground)
        self.background.merge(other.background)
        self.inputs += other.inputs
        self.digests += other.digests
        self.records += other.records
        self.support_keys = distinct(np.concatenate([self.support_keys, other.support_keys]))

    def models(self) -> tuple[KmerModel, KmerModel]:
        return self.foreground.model(self.settings["fold"]), self.background.model(self.settings["fold"])

    def provenance(self, foreground: KmerModel, background: KmerModel) -> dict:
        """What a model file records of the counting."""
        combined = hashlib.sha256("".join(self.digests).encode()).hexdigest()
        return {"sequences_sha256": combined, "background_config": "KmerConfig.background()",
                "counting": {"records": self.records, "windows_sampled": 0, "foreground": foreground.stats,
                             "background": background.stats}}

    # -- the count file ---------------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        document = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "settings": self.settings, "inputs": self.inputs, "digests": self.digests,
                    "records": self.records, "positions": [self.foreground.positions, self.background.positions]}
        tensors = {**_counter_arrays("foreground", self.foreground), **_counter_arrays("background", self.background),
                   SUPPORT_KEYS: self.support_keys}
        container.write(path, FORMAT_NAME, json.dumps(document, sort_keys=True), tensors)

    @classmethod
    def load(cls, path: str | os.PathLike) -> KmerCounts:
        """A count file, verified (checksum, format, settings, array shapes); else a ModelFileError."""
        document, tensors = _read(path)
        settings = document["settings"]
        try:
            config = KmerConfig.from_dict(settings["config"])
            counters = [Counter(c, int(settings["hash_bits"])) for c in (config, config.background())]
            for role, counter, positions in zip(("foreground", "background"), counters, document["positions"]):
                _restore(counter, role, tensors, int(positions))
            keys = tensors[SUPPORT_KEYS]
            if keys.dtype != np.uint64 or keys.ndim != 1 or np.any(keys[1:] <= keys[:-1]):
                raise ValueError("support keys that are not distinct and sorted")
        except (KeyError, TypeError, ValueError, UsageError) as error:
            raise ModelFileError(f"{path}: bad count file contents ({error})") from None
        return cls(settings, *counters, list(document["inputs"]), list(document["digests"]),
                   int(document["records"]), keys)


def _counter_arrays(role: str, counter: Counter) -> dict[str, np.ndarray]:
    """A counter's arrays: the exact counts as uint32 with an overflow list, each hashed table's filled slots."""
    top = counter.top
    overflow = np.flatnonzero(top > UINT32_MAX)
    arrays = {f"{role}.top": np.minimum(top, UINT32_MAX).astype(np.uint32),
              f"{role}.top_overflow_index": overflow.astype(np.int64),
              f"{role}.top_overflow_count": top[overflow].astype(np.uint64)}
    for k, table in zip(counter.config.hashed_orders, counter.tables):
        filled = table != 0
        arrays[f"{role}.hashed_{k}_fill"] = filled.sum(axis=1).astype(np.uint8)
        arrays[f"{role}.hashed_{k}_slots"] = table[filled]
    return arrays


def _restore(counter: Counter, role: str, tensors: dict[str, np.ndarray], positions: int) -> None:
    from ..._core.kmer import unpack_buckets

    top = tensors[f"{role}.top"]
    index, overflow = tensors[f"{role}.top_overflow_index"], tensors[f"{role}.top_overflow_count"]
    if top.shape != counter.top.shape or index.shape != overflow.shape or \
            (len(index) and not 0 <= int(index.min()) <= int(index.max()) < len(top)):
        raise ValueError(f"{role} exact counts of the wrong shape")
    counter.top[:] = top
    counter.top[index] = overflow
    for k, table in zip(counter.config.hashed_orders, counter.tables):
        fill, slots = tensors[f"{role}.hashed_{k}_fill"], tensors[f"{role}.hashed_{k}_slots"]
        if fill.shape != (len(table),) or int(fill.max(initial=0)) > BUCKET_SLOTS or \
                int(fill.sum(dtype=np.int64)) != len(slots):
            raise ValueError(f"{role} hashed table {k} does not match its bucket counts")
        unpack_buckets(fill, slots, table)
    counter.positions = positions


def _read(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such count file")
    try:
        stored = container.read(path)
        metadata, tensors = stored.metadata, stored.arrays
        if FORMAT_NAME not in metadata or "sha256" not in metadata:
            raise ModelFileError(f"{path}: not a gooddetect count file")
        document = json.loads(metadata[FORMAT_NAME])
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a gooddetect count file, or truncated ({exc})") from None
    if container.checksum(metadata[FORMAT_NAME], tensors) != metadata["sha256"]:
        raise ModelFileError(f"{path}: checksum mismatch: the count file is corrupted or was modified")
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a gooddetect count file")
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: count file format {document.get('format_version')!r} (this gooddetect, "
                             f"{__version__}, reads {FORMAT_VERSION}): count again")
    return document, tensors
