"""`gooddetect windows`: the paper's data preparation, reads (or random genome windows) cut into windows as FASTA."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..alphabet import decode
from ..files import atomic_output
from ..options import option
from ..seqio import DuplicateCounter, display_name, read_chunks
from ..windows import (MIN_LENGTH, WINDOW_LENGTH, WindowCounts, cut_reads, sample_genome_windows, window_label,
                       with_reverse_complements)

log = logging.getLogger("gooddetect")


@dataclass(frozen=True)
class WindowsOptions:
    """Where the windows go and how reads are cut into them."""

    output: str = option("-", "Output FASTA ('-' = stdout; .gz compresses).", short="-o")
    length: int = option(WINDOW_LENGTH, "Window length (bp).", min=2)
    stride: int | None = option(None, "Step between windows. Default: the window length (non-overlapping tiling).",
                                min=1)
    min_length: int = option(MIN_LENGTH, "Windows with fewer known bases (reads shorter than this) are left out "
                             "(counted).", min=2)
    sample: int | None = option(None, "Instead of tiling reads, take N random windows from each input genome "
                                "(indexed FASTA).", min=1)
    both_strands: bool = option(False, "Also write the reverse complement of every window.")


def write_windows(inputs: list[str], output: str = "-", *, length: int = WINDOW_LENGTH, stride: int | None = None,
                  min_length: int = MIN_LENGTH, sample: int | None = None, both_strands: bool = False,
                  seed: int = 0) -> WindowCounts:
    """Write the windows of `inputs` as FASTA (`gooddetect windows`; the keywords are WindowsOptions' fields);
    returns what was done and skipped."""
    counts = WindowCounts(files=[display_name(p) for p in inputs])
    duplicates = DuplicateCounter()
    rng = np.random.default_rng(seed)
    with atomic_output(output) as out:
        for path in inputs:
            for labels, codes, lengths in _labeled_windows(path, counts, duplicates, rng, length=length,
                                                           stride=stride, min_length=min_length, sample=sample):
                records = [(f"{label}(+)", row, n) for label, row, n in zip(labels, codes, lengths.tolist())]
                if both_strands:  # each window followed by its reverse complement
                    both, _ = with_reverse_complements(codes, lengths)
                    minus = [(f"{label}(-)", row, n) for label, row, n in zip(labels, both[1::2], lengths.tolist())]
                    records = [r for pair in zip(records, minus) for r in pair]
                    counts.windows += len(labels)
                out.write("".join(f">{name}\n{decode(row[:n])}\n" for name, row, n in records))
    counts.duplicate_ids = duplicates.count()
    log.info("windows: %d written from %d reads; skipped %d reads shorter than %d bp and %d windows with fewer than "
             "%d known bases; %d duplicate read ids", counts.windows, counts.reads, counts.reads_too_short,
             min_length, counts.windows_too_many_unknown, min_length, counts.duplicate_ids)
    return counts


def _labeled_windows(path: str, counts: WindowCounts, duplicates: DuplicateCounter, rng: np.random.Generator, *,
                     length: int, stride: int | None, min_length: int,
                     sample: int | None) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
    """(labels without strand, codes [B, W], lengths [B]) of the windows of one input, a chunk at a time."""
    if sample:
        for name, start, codes in sample_genome_windows(path, sample, rng, counts, length, min_length):
            yield [window_label(name, start, start + length)], codes[None], np.array([codes.size])
        return
    for chunk in read_chunks(path):
        duplicates.add(chunk.ids)
        cut = cut_reads(chunk.seqs, length, stride, min_length)
        counts.add(cut, min_length)
        if not len(cut):
            continue
        starts, ends = cut.spans()
        labels = [window_label(chunk.ids[r], s, e) for r, s, e in
                  zip(cut.reads.tolist(), starts.tolist(), ends.tolist())]
        yield (labels, *cut.padded(0, len(cut)))
