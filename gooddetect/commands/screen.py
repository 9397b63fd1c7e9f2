"""`gooddetect screen`: which parts of each sequence (contig, scaffold, long read) are foreign. One report row per
sequence with an action in FCS-GX's vocabulary (PASS, TRIM, EXCLUDE, REVIEW), and on request the foreign ranges
(BED), the per-bin LLR track (bedGraph), the sequences with the foreign ranges cut out or masked, the foreign ranges
as sequences, and a MultiQC table. The segmentation itself is gooddetect.screening."""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
import numpy as np

from .. import calibration, tsv
from ..detector import Detector, load_detector
from ..errors import UsageError
from ..options import option
from ..outputs import NA, multiqc_sample, multiqc_table, write_multiqc
from ..runtime import Runtime, atomic_output, check_distinct_outputs
from ..screening import ACTIONS, DEFAULT_BIN, Segmentation, SequenceCall, call, tracks
from ..seqio import DuplicateCounter, RecordChunk, display_name, fastx_bytes, read_chunks
from ..windows import cut_reads
from .score import check_readable

log = logging.getLogger("gooddetect")

# Chosen on the screening benchmark's validation sets (bench_screen.py --split dev; docs/method.md): the threshold
# flags 8 % of in-distribution windows, rises with a sequence's own level to at most the one flagging 2 %.
DEFAULT_FPR, CEILING_FPR, DEFAULT_PENALTY = 0.08, 0.02, 100.0
REPORT_COLUMNS = ("seq_id", "length", "scored_bases", "foreign_bases", "foreign_fraction", "ranges", "mean_llr",
                  "action", "support")


@dataclass(frozen=True)
class ScreenOutput:
    output: str = option("-", "Report TSV, one row per sequence ('-' = stdout; .gz compresses), written atomically.",
                         short="-o")


@dataclass(frozen=True)
class ScreenOptions:
    """How ranges are called and what `screen` writes besides its report."""

    threshold: float | None = option(None, "Per-base OOD score (−LLR) above which bases count as foreign evidence, "
                                     "everywhere (overrides the calibration and its adaptation to each sequence).")
    fpr: float = option(DEFAULT_FPR, "Take that score from the model's calibration table: the threshold that flags "
                        "this fraction of in-distribution windows (raised where a sequence's own in-distribution "
                        "level is higher).", min=0, max=1, min_open=True, max_open=True)
    penalty: float = option(DEFAULT_PENALTY, "Cost of each change between in-distribution and foreign, in score × "
                            "bases: higher calls fewer, longer ranges.", min=0)
    bin_size: int = option(DEFAULT_BIN, "Bases per bin of the LLR track (the resolution of range boundaries).",
                           min=10, max=1000)
    min_range: int = option(Segmentation.min_range, "Shortest foreign range cut out (bp); a sequence with only "
                            "shorter ones is REVIEW.", min=1)
    exclude_fraction: float = option(Segmentation.exclude_fraction, "EXCLUDE a sequence when at least this fraction "
                                     "of it is foreign.", min=0, max=1, min_open=True)
    min_support: float | None = option(None, "EXCLUDE a sequence as foreign from end to end when less than this "
                                       "fraction of its minimizers is in the references, and no more than chance "
                                       "explains (models with a support table; 0: judge every sequence by its "
                                       "bins alone).", min=0, max=1, default_text="the model's calibration")
    bed: str | None = option(None, "Write the foreign ranges as BED (sequence, start, end, `foreign`, mean LLR).")
    bedgraph: str | None = option(None, "Write the per-bin LLR track as bedGraph.")
    clean_out: str | None = option(None, "Write the sequences with their foreign ranges cut out (pieces named "
                                   "ID:START-END, 1-based) or, with --mask, replaced by N; EXCLUDE sequences are "
                                   "left out.")
    mask: bool = option(False, "--clean-out: mask foreign ranges with N instead of cutting them out.")
    foreign_out: str | None = option(None, "Write the foreign ranges as sequences (named ID:START-END, 1-based).")
    multiqc: str | None = option(None, "Also write a per-input table (sequences, bases, foreign bases, actions) as "
                                 "MultiQC custom content.", metavar="NAME_mqc.json")
    sample_name: str | None = option(None, "MultiQC: one row for the whole run under this name.",
                                     default_text="one per input, named after it")


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


def screen(model: str, inputs: list[str], output: str | None = "-", options: ScreenOptions = ScreenOptions(),
           runtime: Runtime = Runtime()) -> dict:
    """`gooddetect screen`: one report row per sequence of `inputs`, in input order, to `output`; returns the
    run's totals. See ScreenOptions for the rest."""
    files = [o for o in (output, options.bed, options.bedgraph, options.clean_out, options.foreign_out,
                         options.multiqc) if o not in (None, "-")]
    check_distinct_outputs(files)
    if options.mask and not options.clean_out:
        raise UsageError("--mask applies to --clean-out")
    detector = load_detector(model, runtime)
    rule = segmentation(detector, options)
    check_readable(inputs)
    per_input: dict[str, ScreenCounts] = {}
    duplicates = DuplicateCounter()
    with ExitStack() as stack:
        out = stack.enter_context(atomic_output(output))
        bed = stack.enter_context(atomic_output(options.bed)) if options.bed else None
        bedgraph = stack.enter_context(atomic_output(options.bedgraph)) if options.bedgraph else None
        clean = stack.enter_context(atomic_output(options.clean_out, "wb")) if options.clean_out else None
        foreign = stack.enter_context(atomic_output(options.foreign_out, "wb")) if options.foreign_out else None
        bar = stack.enter_context(runtime.bar(unit="seq", desc="screening"))
        classes = detector.classifier is not None
        out.write("\t".join((*REPORT_COLUMNS, *(("class", "class_prob") if classes else ()))) + "\n")
        if bedgraph:
            bedgraph.write('track type=bedGraph name="gooddetect LLR" description="per-base LLR per bin"\n')
        for path in inputs:
            counts = per_input.setdefault(display_name(path), ScreenCounts())
            for chunk in read_chunks(path):
                duplicates.add(chunk.ids)
                chunk_tracks = tracks(detector, chunk.seqs, rule.bin_size)
                results = [call(track, seq, rule) for track, seq in zip(chunk_tracks, chunk.seqs)]
                out.write(_report_rows(chunk, results, _top_classes(detector, chunk) if classes else None))
                for index, result in enumerate(results):
                    counts.add(result)
                    if bed:
                        bed.write(_bed_rows(chunk.ids[index], result))
                    if clean and result.action != "EXCLUDE":
                        clean.write(_clean_record(chunk, index, result, options.mask))
                    if foreign:
                        foreign.write(b"".join(_piece(chunk, index, start, end) for start, end, _ in result.ranges))
                if bedgraph:
                    bedgraph.write(_bedgraph_rows(chunk, chunk_tracks, rule.bin_size))
                bar.update(len(chunk))
    totals = sum(per_input.values(), ScreenCounts())
    if options.multiqc:
        rows = {options.sample_name: totals} if options.sample_name else \
            {multiqc_sample(name): counts for name, counts in per_input.items()}
        write_multiqc(options.multiqc, multiqc_screen({name: c.as_dict() for name, c in rows.items()}))
    result = totals.as_dict() | {"duplicate_ids": duplicates.count(), "inputs": list(per_input),
                                 "threshold": rule.threshold, "ceiling": rule.ceiling, "penalty": rule.penalty}
    log.info("screen: %d sequences, %d bases; %d foreign bases (%.3f%%); %s; %d duplicate ids", totals.sequences,
             totals.bases, totals.foreign_bases, result["foreign_percent"] or 0.0,
             ", ".join(f"{totals.actions[a]} {a}" for a in ACTIONS), result["duplicate_ids"])
    return result


def segmentation(detector: Detector, options: ScreenOptions) -> Segmentation:
    """The ranges' rule: the threshold from --threshold, or from the calibration table at --fpr (its value for a
    window of the model's length), and the options."""
    min_support = calibration.min_support(detector.calibration, options.min_support)
    if options.threshold is not None:
        return Segmentation(options.threshold, options.penalty, bin_size=options.bin_size,
                            min_range=options.min_range, exclude_fraction=options.exclude_fraction,
                            min_length=detector.window_length, min_support=min_support)
    if detector.calibration is None:
        raise UsageError("screening needs a threshold: calibrate the model, or give --threshold")
    window = np.array([detector.window_length - 1])

    def at(fpr: float) -> float:
        return float(calibration.resolve(detector.calibration, fpr=fpr).for_fragments(window)[0])

    threshold, median = at(options.fpr), at(0.5)
    return Segmentation(threshold, options.penalty, margin=(threshold - median) / 2,
                        ceiling=max(threshold, at(CEILING_FPR)), bin_size=options.bin_size,
                        min_range=options.min_range, exclude_fraction=options.exclude_fraction,
                        min_length=detector.window_length, min_support=min_support)


def _report_rows(chunk: RecordChunk, results: list[SequenceCall], classes: list[tuple[str, float]] | None) -> str:
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


def _top_classes(detector: Detector, chunk: RecordChunk) -> list[tuple[str, float]]:
    """The classifier's most probable class of each sequence and its probability (base-weighted over its
    windows); NA for a sequence without a window."""
    cut = cut_reads(chunk.seqs, detector.window_length, None, detector.min_length)
    probs = np.zeros((len(chunk.seqs), len(detector.classifier.classes)))
    if len(cut):
        for first in range(0, len(cut), 4096):
            codes, lengths = cut.padded(first, min(first + 4096, len(cut)))
            window_probs, _ = detector.classifier.predict(codes, lengths)
            np.add.at(probs, cut.reads[first:first + len(lengths)], window_probs * lengths[:, None])
    top = probs.argmax(axis=1)
    total = probs.sum(axis=1)
    return [(detector.classifier.classes[t], probs[i, t] / total[i]) if total[i] else (NA, float("nan"))
            for i, t in enumerate(top.tolist())]


def _bed_rows(seq_id: str, result: SequenceCall) -> str:
    return "".join(f"{seq_id}\t{start}\t{end}\tforeign\t{llr:.6f}\n" for start, end, llr in result.ranges)


def _bedgraph_rows(chunk: RecordChunk, chunk_tracks: list, bin_size: int) -> str:
    """One bedGraph line per bin with a scored base: sequence, start, end, per-base LLR."""
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


def _clean_record(chunk: RecordChunk, index: int, result: SequenceCall, mask: bool) -> bytes:
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

