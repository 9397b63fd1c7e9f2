"""`gooddetect screen`: which parts of each sequence (contig, scaffold, long read) are foreign. One report row per
sequence with an action in FCS-GX's vocabulary (PASS, TRIM, EXCLUDE, REVIEW), and on request the foreign ranges
(BED), the per-bin LLR track (bedGraph), the sequences with the foreign ranges cut out or masked, the foreign ranges
as sequences, and a MultiQC table. The segmentation itself is gooddetect.screening."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np

from .. import calibration
from ..detector import Detector, load_detector
from ..errors import UsageError
from ..options import option
from ..outputs import NA, PerInput, check_multiqc_name, checked_paths, write_multiqc
from ..outputs import screen as screen_outputs
from ..outputs.screen import ScreenCounts, ScreenedBatch, multiqc_screen
from ..runtime import Runtime
from ..screening import ACTIONS, DEFAULT_BIN, Segmentation, call, tracks
from ..seqio import DuplicateCounter, RecordChunk, check_readable, display_name, read_chunks
from ..windows import cut_reads

log = logging.getLogger("gooddetect")

# Chosen on the screening benchmark's validation sets (bench_screen.py --split dev; docs/method.md): the threshold
# flags 8 % of in-distribution windows, rises with a sequence's own level to at most the one flagging 2 %.
DEFAULT_FPR, CEILING_FPR, DEFAULT_PENALTY = 0.08, 0.02, 100.0


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


def screen(model: str, inputs: list[str], output: str | None = "-", options: ScreenOptions = ScreenOptions(),
           runtime: Runtime = Runtime()) -> dict:
    """`gooddetect screen`: one report row per sequence of `inputs`, in input order, to `output`; returns the
    run's totals. See ScreenOptions for the rest."""
    checked_paths(output, options.bed, options.bedgraph, options.clean_out, options.foreign_out, options.multiqc)
    check_multiqc_name(options.multiqc)
    if options.mask and not options.clean_out:
        raise UsageError("--mask applies to --clean-out")
    detector = load_detector(model, runtime)
    rule = segmentation(detector, options)
    check_readable(inputs)
    per_input = PerInput(ScreenCounts)
    duplicates = DuplicateCounter()
    classes = detector.classifier is not None
    with ExitStack() as stack:
        sinks = screen_outputs.sinks(stack, output, options.bed, options.bedgraph, options.clean_out,
                                     options.foreign_out, options.mask, classes)
        bar = stack.enter_context(runtime.bar(unit="seq", desc="screening"))
        for path in inputs:
            counts = per_input.of(display_name(path))
            for chunk in read_chunks(path):
                duplicates.add(chunk.ids)
                chunk_tracks = tracks(detector, chunk.seqs, rule.bin_size)
                results = [call(track, seq, rule) for track, seq in zip(chunk_tracks, chunk.seqs)]
                batch = ScreenedBatch(chunk, chunk_tracks, results, rule.bin_size,
                                      _top_classes(detector, chunk) if classes else None)
                for result in results:
                    counts.add(result)
                for sink in sinks:
                    sink.write(batch)
                bar.update(len(chunk))
    totals = per_input.total()
    if options.multiqc:
        write_multiqc(options.multiqc, multiqc_screen({name: c.as_dict()
                                                        for name, c in per_input.samples(options.sample_name).items()}))
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
