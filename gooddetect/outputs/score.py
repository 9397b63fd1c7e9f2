"""What `score` writes: the per-fragment TSV, the reads split by call, per-window BED tracks, the per-input
report and MultiQC custom content. Every file goes through files.atomic_output (atomic; gzip for `.gz`)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO

import numpy as np

from .. import tsv
from ..calibration import Thresholds
from ..errors import InputError, UsageError
from ..files import atomic_output
from ..models import InDistributionClassifier
from ..scoring import CALLS, REASONS, ScoreCounts, ScoredChunk
from . import NA, TextSink, bed_rows, multiqc_table, open_sinks

BASE_COLUMNS = ("read_id", "length", "n_windows", "n_scored", "loglik_fg", "loglik_bg", "llr", "score", "threshold",
                "is_ood", "window_llrs", "loglik_fg_sum", "loglik_bg_sum", "reason", "support", "call")
IS_OOD_OF_CALL = ("0", "1", "1", NA)  # is_ood of each call code: novel and foreign fragments are both OOD


@dataclass
class ScoredBatch:
    """One scored chunk with its calls (call_codes), each fragment's threshold and the thresholds they come from
    (None: uncalibrated)."""

    scored: ScoredChunk
    calls: np.ndarray
    limits: np.ndarray | None
    thresholds: Thresholds | None


def sinks(stack: ExitStack, output: str | None, bed: str | None, splitter: ReadSplitter | None, mates: int,
          classifier: InDistributionClassifier | None) -> list:
    """The sinks of a run: the TSV to `output` (stdout for None or '-'), the BED track and the reads by call when
    asked for."""
    def rows(batch: ScoredBatch) -> str:
        extra = classifier_fields(batch.scored, classifier) if classifier else {}
        return tsv_rows(batch.scored, batch.limits, batch.calls, extra)

    header = "\t".join(columns(mates, classifier_columns(classifier))) + "\n"
    opened = open_sinks(stack, {"tsv": (output or "-", "w"), "bed": (bed, "w")}, {
        "tsv": lambda handle: TextSink(handle, rows, header),
        "bed": lambda handle: TextSink(handle, window_bed_rows)})
    if splitter:
        splitter.open(stack)
        opened.append(splitter)
    return opened


def columns(mates: int, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The TSV columns: with pairs, `length` is R1's and `length2` R2's; `extra` (the classifier's) at the end."""
    base = BASE_COLUMNS if mates == 1 else ("read_id", "length", "length2", *BASE_COLUMNS[2:])
    return (*base, *extra)


def classifier_columns(classifier: InDistributionClassifier | None) -> tuple[str, ...]:
    """The TSV columns a model with a classifier adds."""
    return ("class", "class_prob", *classifier.score_names) if classifier is not None else ()


def classifier_fields(scored: ScoredChunk, classifier: InDistributionClassifier) -> dict[str, tsv.Column]:
    """The classifier's columns of one scored chunk: most probable class, its probability, the OOD scores."""
    classes, probs = classifier.classes, scored.class_probs
    best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    unscored = ~scored.scored
    fields = {"class": tsv.choice_column(np.where(unscored, len(classes), best), [*classes, NA]),
              "class_prob": tsv.fixed_column(np.where(unscored, np.nan, probs.max(axis=1, initial=0)), 6)}
    return fields | {name: tsv.fixed_column(scored.classifier_scores[name], 6) for name in classifier.score_names}


def tsv_rows(scored: ScoredChunk, thresholds: np.ndarray | None, calls: np.ndarray,
             extra: dict[str, tsv.Column]) -> str:
    """The TSV lines of one scored chunk (see README for the columns); `calls`: its call_codes."""
    n = len(scored)
    bounds = np.concatenate([[0], np.cumsum(scored.n_windows)])
    unscored = ~scored.scored
    threshold_text = tsv.constant_column(NA, n) if thresholds is None else tsv.fixed_column(thresholds, 6)
    support = tsv.constant_column(NA, n) if scored.support is None else \
        tsv.fixed_column(np.where(unscored, np.nan, scored.support), 3)
    window_llrs = tsv.grouped(tsv.fixed_column(scored.window_llr, 6), bounds) if (scored.n_windows > 1).any() else \
        tsv.constant_column(NA, n)  # NA for fragments of one window: none to format when all are
    columns = [tsv.text_column(scored.chunk.ids), *map(tsv.int_column, scored.read_lengths.T),
               tsv.int_column(scored.n_windows), tsv.int_column(scored.n_scored),
               *(tsv.fixed_column(values, 6) for values in (scored.loglik_fg, scored.loglik_bg, scored.llr,
                                                             scored.score)),
               threshold_text, tsv.choice_column(calls, IS_OOD_OF_CALL), window_llrs,
               *(tsv.fixed_column(np.where(unscored, np.nan, s), 3) for s in (scored.fg_sum, scored.bg_sum)),
               tsv.choice_column(scored.reason_codes, [reason or NA for reason in REASONS]), support,
               tsv.choice_column(calls, (*CALLS, NA)), *extra.values()]
    return tsv.rows(columns)


class ReadSplitter:
    """Writes each input record, unchanged, to the output of its fragment's call: `in`, `ood` (novel and foreign),
    `novel` (novel ones apart from the foreign, when given) or `unscored` (unscored fragments go with `in` when no
    `unscored` output is given, so no read is silently dropped). With two mates, a '#' in an output name becomes _1
    and _2 (Kraken2's convention); paired input needs it."""

    CALLS = ("in", "ood", "unscored", "novel")

    def __init__(self, paths: dict[str, str | None], mates: int, layout: str):
        self.paths = {call: path for call, path in paths.items() if path}
        self.mates = mates
        if layout == "paired" and any("#" not in p for p in self.paths.values()):
            raise UsageError("with --paired, read outputs need a '#' in their name (written as _1 and _2), e.g. "
                             "--in-out clean#.fq.gz")
        self.split_mates = mates == 2 and all("#" in p for p in self.paths.values())
        if mates == 2 and not self.split_mates and any("#" in p for p in self.paths.values()):
            raise UsageError("with --interleaved, give every read output a '#' (one file per mate) or none "
                             "(interleaved output)")
        self.handles: dict[str, list[IO[bytes]]] = {}
        self.format: str | None = None

    @staticmethod
    def output_files(paths: dict[str, str | None], mates: int) -> list[str]:
        """Every file the outputs `paths` name ('#' expanded for two mates)."""
        files = []
        for path in filter(None, paths.values()):
            files += [path.replace("#", f"_{m}") for m in (1, 2)] if mates == 2 and "#" in path else [path]
        return files

    def open(self, stack: ExitStack) -> None:
        for call, path in self.paths.items():
            names = [path.replace("#", f"_{m}") for m in (1, 2)] if self.split_mates else [path]
            self.handles[call] = [stack.enter_context(atomic_output(name, "wb")) for name in names]

    def write(self, batch: ScoredBatch) -> None:
        chunk, calls = batch.scored.chunk, batch.calls
        if self.format is None:
            self.format = chunk.format
        elif chunk.format != self.format:
            raise InputError("read outputs: the inputs mix FASTA and FASTQ; split them into separate runs")
        novel = "novel" if "novel" in self.handles else "ood"
        unscored = "unscored" if "unscored" in self.handles else "in"
        for code, target in enumerate(("in", novel, "ood", unscored)):  # by call code: in, novel, foreign, none
            if target not in self.handles:
                continue
            fragments = np.flatnonzero(calls == code).tolist()
            outputs = self.handles[target]
            for mate in range(self.mates):
                handle = outputs[mate] if self.split_mates else outputs[0]
                rows = [f * self.mates + m for f in fragments for m in ((mate,) if self.split_mates else
                                                                       range(self.mates))]
                handle.write(b"".join(chunk.record_bytes(r) for r in rows))
                if not self.split_mates:
                    break


def window_bed_rows(batch: ScoredBatch) -> str:
    """One BED line per scored window: read id, 0-based start, end, call (in/ood/. without a threshold), per-base
    LLR as the score."""
    scored = batch.scored
    ids = scored.chunk.record_ids
    keep = scored.window_scored > 0
    llr = scored.window_llr[keep]
    if batch.thresholds is None:
        names = tsv.constant_column(".", len(llr))
    else:
        limits = batch.thresholds.for_fragments(scored.window_scored)
        names = tsv.text_column(np.where(-llr > limits[keep], "ood", "in").tolist())
    return bed_rows([ids[r] for r in scored.window_record[keep].tolist()], scored.window_start[keep],
                    scored.window_end[keep], names, llr)


REPORT_COLUMNS = ("input", "reads", "scored_reads", "ood_reads", "ood_fraction", "unscored_reads", "thresholds",
                  "novel_reads", "foreign_reads")


def write_report(out: IO[str], per_input: dict[str, ScoreCounts], thresholds: str) -> None:
    """A Kraken2-style one-glance table: per input, reads, scored reads, OOD reads and their fraction; the
    thresholds as `fixed:T` or `fpr:F` (by read length), NA without any; the OOD reads called novel and foreign."""
    out.write("\t".join(REPORT_COLUMNS) + "\n")
    for name, counts in per_input.items():
        d = counts.as_dict(thresholds != NA)
        fraction = NA if d["ood_fraction"] is None else f"{d['ood_fraction']:.6f}"
        ood, novel, foreign = (NA if d[key] is None else str(d[key]) for key in ("ood", "novel_reads", "foreign_reads"))
        out.write(f"{name}\t{counts.reads}\t{counts.scored_reads}\t{ood}\t{fraction}\t{d['unscored_reads']}\t"
                  f"{thresholds}\t{novel}\t{foreign}\n")


def multiqc_content(rows: dict[str, dict], thresholds: str) -> dict:
    """MultiQC custom content (a `*_mqc.json` file): one table row per sample from its counts (ScoreCounts.as_dict:
    reads, scored_reads, unscored_reads, and ood, None without a threshold)."""
    calibrated = any(row["ood"] is not None for row in rows.values())
    data = {}
    for name, counts in rows.items():
        row = {key: counts[key] for key in ("reads", "scored_reads", "unscored_reads")}
        if counts["ood"] is not None:
            row |= {"ood_reads": counts["ood"], "in_reads": counts["scored_reads"] - counts["ood"],
                    "novel_reads": counts["novel_reads"], "foreign_reads": counts["foreign_reads"],
                    "ood_percent": 100 * counts["ood"] / counts["scored_reads"] if counts["scored_reads"] else None,
                    "foreign_percent": 100 * counts["foreign_reads"] / counts["scored_reads"]
                    if counts["scored_reads"] else None}
        data[name] = row
    headers = {"reads": {"title": "Reads", "description": "Reads (fragments for pairs) in the input",
                         "format": "{:,.0f}", "scale": "Blues"},
               "scored_reads": {"title": "Scored", "description": "Fragments with a score", "format": "{:,.0f}",
                                "hidden": True},
               "unscored_reads": {"title": "Unscored", "description": "Too short or too many unknown bases",
                                  "format": "{:,.0f}", "hidden": True}}
    if calibrated:
        headers |= {"in_reads": {"title": "In-dist.", "description": "Fragments like the training organisms",
                                 "format": "{:,.0f}", "hidden": True},
                    "ood_reads": {"title": "OOD", "description": "Fragments flagged out of distribution (novel "
                                  "and foreign)", "format": "{:,.0f}"},
                    "novel_reads": {"title": "Novel", "description": "OOD fragments that share k-mers with the "
                                    "references", "format": "{:,.0f}", "hidden": True},
                    "foreign_reads": {"title": "Foreign", "description": "Fragments that share almost no k-mer "
                                      "with the references", "format": "{:,.0f}", "hidden": True},
                    "ood_percent": {"title": "% OOD", "description": f"Scored fragments flagged OOD ({thresholds})",
                                    "min": 0, "max": 100, "suffix": "%", "format": "{:,.2f}", "scale": "OrRd"},
                    "foreign_percent": {"title": "% Foreign", "description": "Scored fragments called foreign",
                                        "min": 0, "max": 100, "suffix": "%", "format": "{:,.2f}", "scale": "Reds"}}
    return multiqc_table("gooddetect", "Reads from organisms the model was not trained on (likelihood ratio of a "
                         "foreground and a background model; Ren et al. 2019).",
                         "gooddetect: out-of-distribution reads", headers, data)
