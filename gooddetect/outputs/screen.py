"""What `screen` writes: the report (a row per sequence), the foreign ranges as BED, the per-bin LLR track as
bedGraph, the sequences cleaned of their foreign ranges, the foreign ranges as sequences, and MultiQC content."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from .. import tsv
from ..screening import ACTIONS, SequenceCall, Track
from ..seqio import RecordChunk, fastx_bytes
from . import TextSink, bed_rows, multiqc_table, open_sinks

REPORT_COLUMNS = ("seq_id", "length", "scored_bases", "foreign_bases", "foreign_fraction", "ranges", "mean_llr",
                  "action", "support")
BEDGRAPH_HEADER = 'track type=bedGraph name="gooddetect LLR" description="per-base LLR per bin"\n'


@dataclass
class ScreenedBatch:
    """One chunk of sequences, screened: its bins, its calls and, with a classifier, each sequence's top class."""

    chunk: RecordChunk
    tracks: list[Track]
    results: list[SequenceCall]
    bin_size: int
    classes: list[tuple[str, float]] | None = None


@dataclass
class ScreenCounts:
    """Totals of one input: sequences, bases, foreign bases and sequences per action."""

    sequences: int = 0
    bases: int = 0
    foreign_bases: int = 0
    actions: Counter = field(default_factory=Counter)

    def add(self, result: SequenceCall) -> None:
        self.sequences += 1
        self.bases += result.length
        self.foreign_bases += result.foreign_bases
        self.actions[result.action] += 1

    def __add__(self, other: ScreenCounts) -> ScreenCounts:
        return ScreenCounts(self.sequences + other.sequences, self.bases + other.bases,
                            self.foreign_bases + other.foreign_bases, self.actions + other.actions)

    def as_dict(self) -> dict:
        return {"sequences": self.sequences, "bases": self.bases, "foreign_bases": self.foreign_bases,
                "foreign_percent": 100 * self.foreign_bases / self.bases if self.bases else None,
                **{action.lower(): self.actions[action] for action in ACTIONS}}


def sinks(stack: ExitStack, output: str | None, bed: str | None, bedgraph: str | None, clean: str | None,
          foreign: str | None, mask: bool, classes: bool) -> list:
    """The sinks of a run: the report to `output` (stdout for None or '-'), and each file asked for."""
    header = "\t".join((*REPORT_COLUMNS, *(("class", "class_prob") if classes else ()))) + "\n"
    return open_sinks(stack, {"report": (output or "-", "w"), "bed": (bed, "w"), "bedgraph": (bedgraph, "w"),
                              "clean": (clean, "wb"), "foreign": (foreign, "wb")}, {
        "report": lambda handle: TextSink(handle, report_rows, header),
        "bed": lambda handle: TextSink(handle, range_bed_rows),
        "bedgraph": lambda handle: TextSink(handle, bedgraph_rows, BEDGRAPH_HEADER),
        "clean": lambda handle: TextSink(handle, lambda batch: clean_records(batch, mask)),
        "foreign": lambda handle: TextSink(handle, foreign_records)})


def report_rows(batch: ScreenedBatch) -> str:
    """The report's row of each sequence."""
    chunk, results, classes = batch.chunk, batch.results, batch.classes
    lengths = np.array([r.length for r in results], dtype=np.int64)
    foreign = np.array([r.foreign_bases for r in results], dtype=np.int64)
    columns = [tsv.text_column(chunk.ids), tsv.int_column(lengths),
               tsv.int_column(np.array([r.scored for r in results], dtype=np.int64)), tsv.int_column(foreign),
               tsv.fixed_column(foreign / np.maximum(lengths, 1), 6),
               tsv.int_column(np.array([len(r.ranges) for r in results], dtype=np.int64)),
               tsv.fixed_column(np.array([r.mean_llr for r in results]), 6),
               tsv.text_column([r.action for r in results]),
               tsv.fixed_column(np.array([r.support for r in results]), 3)]
    if classes is not None:
        columns += [tsv.text_column([name for name, _ in classes]),
                    tsv.fixed_column(np.array([prob for _, prob in classes]), 6)]
    return tsv.rows(columns)


def range_bed_rows(batch: ScreenedBatch) -> str:
    """The foreign ranges as BED: sequence, start, end, `foreign`, the range's per-base LLR."""
    ranges = [(seq_id, *r) for seq_id, result in zip(batch.chunk.ids, batch.results) for r in result.ranges]
    return bed_rows([r[0] for r in ranges], np.array([r[1] for r in ranges]), np.array([r[2] for r in ranges]),
                    tsv.constant_column("foreign", len(ranges)), np.array([r[3] for r in ranges], dtype=np.float64))


def bedgraph_rows(batch: ScreenedBatch) -> str:
    """One bedGraph line per bin with a scored base: sequence, start, end, per-base LLR."""
    chunk, chunk_tracks, bin_size = batch.chunk, batch.tracks, batch.bin_size
    columns = [[], [], [], []]
    for seq_id, seq, track in zip(chunk.ids, chunk.seqs, chunk_tracks):
        bins = np.flatnonzero(track.n > 0)
        columns[0] += [seq_id] * len(bins)
        columns[1].append(bins * bin_size)
        columns[2].append(np.minimum((bins + 1) * bin_size, len(seq)))
        columns[3].append(track.llr[bins])
    if not columns[0]:
        return ""
    return tsv.rows([tsv.text_column(columns[0]), tsv.int_column(np.concatenate(columns[1])),
                     tsv.int_column(np.concatenate(columns[2])), tsv.fixed_column(np.concatenate(columns[3]), 6)])


def clean_records(batch: ScreenedBatch, mask: bool) -> bytes:
    """Every sequence not EXCLUDEd, without its foreign ranges (clean_record)."""
    return b"".join(clean_record(batch.chunk, index, result, mask) for index, result in enumerate(batch.results)
                    if result.action != "EXCLUDE")


def foreign_records(batch: ScreenedBatch) -> bytes:
    """Every foreign range as a record named ID:START-END (1-based)."""
    return b"".join(_piece(batch.chunk, index, start, end) for index, result in enumerate(batch.results)
                    for start, end, _ in result.ranges)


def clean_record(chunk: RecordChunk, index: int, result: SequenceCall, mask: bool) -> bytes:
    """The record without its foreign ranges: unchanged when it has none; else masked with N, or cut into the
    pieces between the ranges."""
    if not result.ranges:
        return chunk.record_bytes(index)
    if mask:
        record = chunk.records[index]
        sequence = bytearray(record.sequence.encode("ascii"))
        for start, end, _ in result.ranges:
            sequence[start:end] = b"N" * (end - start)
        return _write(chunk, index, None, sequence, record.qualities)
    pieces, at = [], 0
    for start, end, _ in result.ranges:
        if start > at:
            pieces.append(_piece(chunk, index, at, start))
        at = end
    if at < result.length:
        pieces.append(_piece(chunk, index, at, result.length))
    return b"".join(pieces)


def _piece(chunk: RecordChunk, index: int, start: int, end: int) -> bytes:
    """Bases start..end-1 of record `index` as a record named ID:START-END (1-based, inclusive)."""
    record = chunk.records[index]
    qualities = record.qualities[start:end] if record.qualities is not None else None
    return _write(chunk, index, f"{chunk.ids[index]}:{start + 1}-{end}".encode(),
                  record.sequence[start:end].encode("ascii"), qualities)


def _write(chunk: RecordChunk, index: int, name: bytes | None, sequence: bytes, qualities: str | None) -> bytes:
    """A record in the chunk's format; `name` None keeps the record's header as read."""
    header = name if name is not None else chunk.headers.get(index, chunk.records[index].name.encode("ascii"))
    fastq = chunk.format == "fastq" and qualities is not None
    return fastx_bytes(header, bytes(sequence), qualities.encode("ascii") if fastq else None,
                       name is None and chunk.two_headers)


def multiqc_screen(rows: dict[str, dict]) -> dict:
    """MultiQC custom content: one row per sample of `screen`'s totals."""
    headers = {"sequences": {"title": "Sequences", "format": "{:,.0f}", "scale": "Blues"},
               "bases": {"title": "Bases", "format": "{:,.0f}", "hidden": True},
               "foreign_bases": {"title": "Foreign bp", "format": "{:,.0f}"},
               "foreign_percent": {"title": "% foreign", "min": 0, "max": 100, "suffix": "%", "format": "{:,.3f}",
                                   "scale": "OrRd"},
               **{action.lower(): {"title": action, "format": "{:,.0f}"} for action in ACTIONS}}
    return multiqc_table("gooddetect_screen", "Foreign ranges of each sequence (gooddetect screen).",
                         "gooddetect screen: foreign sequence", headers, rows)
