"""`gooddetect score`: one TSV row per read or pair, the reads split by call, BED, report and MultiQC outputs."""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Iterator

from .. import calibration
from ..detector import Detector, load_detector
from ..errors import GooddetectError, UsageError
from ..files import atomic_output, check_distinct_outputs
from ..formatting import describe_counts
from ..options import Switch, option
from ..outputs import PerInput, check_multiqc_name, checked_paths, write_json, write_multiqc
from ..outputs import score as score_outputs
from ..outputs.score import ReadSplitter, ScoredBatch, multiqc_content, write_report
from ..runtime import Runtime
from ..scoring import DEFAULT_BATCH_SIZE, ScoreCounts, call_codes, score_chunks
from ..seqio import CHUNK_RECORDS, MATES, DuplicateCounter, RecordChunk, check_layout, check_readable, read_fragments
from ..support import MIN_SUPPORT

log = logging.getLogger("gooddetect")


class _Shard:
    """Keeps fragments i, i+n, i+2n, ... of shard (i, n), 1-based and counted across all the chunks it is given."""

    def __init__(self, shard: tuple[int, int]):
        (self.which, self.n), self.seen = shard, 0

    def __call__(self, chunk: RecordChunk) -> RecordChunk:
        first = (self.which - 1 - self.seen) % self.n
        self.seen += len(chunk)
        return chunk.every(first, self.n)


def parse_shard(value: str) -> tuple[int, int]:
    """(I, N) of --shard I/N."""
    try:
        index, total = (int(part) for part in value.split("/"))
    except ValueError:
        raise ValueError(f"{value!r} is not I/N (e.g. 2/8)") from None
    if not 1 <= index <= total:
        raise ValueError(f"{value!r}: need 1 <= I <= N")
    return index, total


@dataclass(frozen=True)
class ScoreFiles:
    """Where the TSV goes, or the sheet of samples to score instead of READS."""

    output: str = option("-", "Output TSV ('-' = stdout; .gz compresses), written atomically.", short="-o")
    sheet: str | None = option(None, "Score every sample of this sheet (sample<TAB>R1[<TAB>R2]; two files are a "
                               "pair) with one model load; every output names its sample with {sample}, e.g. -o "
                               "'scores/{sample}.tsv'.", flag="--samples", metavar="SHEET.tsv")


@dataclass(frozen=True)
class ScoreOptions:
    """What `score` writes and how it flags: every output besides the TSV, the thresholds, the read layout, the
    windows' stride and sharding."""

    layout: str = option("single", "", switches=(
        Switch("--paired", "paired", "READS are two files, R1 and R2, mates in the same order: one row per fragment."),
        Switch("--interleaved", "interleaved", "Each READS file holds R1 and R2 of every fragment, alternating: one "
               "row per fragment.")))
    shard: tuple[int, int] | None = option(None, "Score only fragments I, I+N, I+2N, ... (1-based); `gooddetect "
                                           "merge` restores the order.", parse=parse_shard, metavar="I/N")
    threshold: float | None = option(None, "Flag reads with score > THRESHOLD (overrides the model's calibration).")
    fpr: float | None = option(None, "Flag reads at this in-distribution FPR, by read length, from the model's "
                               "calibration table.", min=0, max=1, min_open=True, max_open=True)
    in_out: str | None = option(None, "Write in-distribution reads here (unchanged records; '#' -> _1/_2 for pairs; "
                                ".gz compresses). Unscored reads go here too unless --unscored-out is given.")
    ood_out: str | None = option(None, "Write out-of-distribution reads (novel and foreign) here.")
    novel_out: str | None = option(None, "Write novel reads here instead of with --ood-out (which then holds the "
                                   "foreign ones).")
    min_support: float | None = option(None, "Call a read foreign when less than this fraction of its minimizers "
                                       "is in the references, and no more than chance explains (models with a "
                                       "support table).", min=0, max=1,
                                       default_text=f"the model's calibration, else {MIN_SUPPORT}")
    unscored_out: str | None = option(None, "Write reads without a score (too short, too many N) here.")
    bed: str | None = option(None, "Write one BED line per scored window (read, start, end, call, LLR).")
    summary: str | None = option(None, "Also write the run's counts as JSON to this file.")
    report: str | None = option(None, "Also write a one-glance TSV: OOD fraction per input file.")
    multiqc: str | None = option(None, "Also write the per-input table as MultiQC custom content.",
                                 metavar="NAME_mqc.json")
    sample_name: str | None = option(None, "MultiQC: one row for the whole run under this name.",
                                     default_text="one per input, named after it")
    stride: int | None = option(None, "Step between windows.", min=1, default_text="the window length")
    bf16: bool = option(False, "lstm: score under bfloat16 autocast (CPUs with AMX or AVX512-BF16).")
    batch_size: int = DEFAULT_BATCH_SIZE  # set by scoring.Batching's --batch-size

    @property
    def read_outputs(self) -> dict[str, str | None]:
        """Where the reads themselves go, by call."""
        return {"in": self.in_out, "ood": self.ood_out, "unscored": self.unscored_out, "novel": self.novel_out}


def score(model: str, reads: list[str], output: str | None = "-", options: ScoreOptions = ScoreOptions(),
          runtime: Runtime = Runtime()) -> dict:
    """`gooddetect score`: one TSV row per fragment of `reads` (in input order) to `output`, atomically; returns
    the run's counts (what --summary writes). See ScoreOptions for the rest."""
    check_layout(reads, options.layout)
    _check_outputs(output, options)
    detector = load_detector(model, runtime, options.bf16)
    return score_reads(detector, reads, output, options, runtime)


def _check_outputs(output: str | None, options: ScoreOptions) -> list[str]:
    """Every output file of a run, checked before any work (outputs.checked_paths)."""
    read_files = ReadSplitter.output_files(options.read_outputs, MATES[options.layout])
    check_multiqc_name(options.multiqc)
    return checked_paths(output, options.summary, options.report, options.bed, options.multiqc, *read_files)


def score_reads(detector: Detector, reads: list[str], output: str | None, options: ScoreOptions,
                runtime: Runtime, label: str = "") -> dict:
    """`score` with a loaded model: `options.layout` "single" reads, "paired" (two files, R1 and R2, mates in the
    same order) or "interleaved". `options.shard=(i, n)` scores only fragments i, i+n, i+2n, ... (1-based, counted
    across all inputs), so n shards can run in parallel and `merge_shards` restores the input order. `threshold`
    (fixed) or `fpr` (from the calibration table, by read length) override the model's thresholds; the read
    outputs write the records by call, `bed` a track of per-window LLRs, `report` a per-input table, `multiqc`
    the same as MultiQC custom content. `label` starts the closing log line."""
    layout, mates = options.layout, MATES[options.layout]
    splitter = ReadSplitter(options.read_outputs, mates, layout) if any(options.read_outputs.values()) else None
    thresholds = calibration.resolve(detector.calibration, options.threshold, options.fpr)
    min_support = calibration.min_support(detector.calibration, options.min_support)
    if splitter and thresholds is None:
        raise UsageError("writing reads by call needs a threshold: calibrate the model, or give --threshold")
    check_readable(reads)
    duplicates = DuplicateCounter()
    per_input = PerInput(ScoreCounts)
    sharded = _Shard(options.shard) if options.shard else None
    batch_size = options.batch_size
    with ExitStack() as stack:
        sinks = score_outputs.sinks(stack, output, options.bed, splitter, mates, detector.classifier)
        bar = stack.enter_context(runtime.bar(unit="read", desc="scoring"))
        labels: deque[str] = deque()  # the input of each chunk on its way through the scoring pipeline

        def fragments() -> Iterator[RecordChunk]:
            for label, chunk in read_fragments(reads, layout, min(batch_size, CHUNK_RECORDS)):
                labels.append(label)
                duplicates.add(chunk.ids)
                yield sharded(chunk) if sharded else chunk

        for scored in score_chunks(detector, fragments(), batch_size=batch_size, stride=options.stride):
            limits = thresholds.for_fragments(scored.n_scored) if thresholds else None
            calls = call_codes(scored.scored, scored.score > limits if thresholds else None,
                               scored.foreign(min_support))
            per_input.of(labels.popleft()).add(scored, calls)
            batch = ScoredBatch(scored, calls, limits, thresholds)
            for sink in sinks:
                sink.write(batch)
            bar.update(len(scored))
    calibrated = thresholds is not None
    totals = per_input.total()
    shard = options.shard
    result = totals.as_dict(calibrated) | {
        "duplicate_ids": duplicates.count(), "inputs": list(per_input), "layout": layout,
        "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "thresholds": thresholds.summary() if calibrated else None}
    threshold_text = thresholds.describe() if calibrated else "NA"
    if options.summary:
        write_json(options.summary, result)
    if options.report:
        with atomic_output(options.report) as handle:
            write_report(handle, per_input, thresholds.code() if calibrated else "NA")
    if options.multiqc:
        samples = per_input.samples(options.sample_name)
        write_multiqc(options.multiqc, multiqc_content({n: c.as_dict(calibrated) for n, c in samples.items()},
                                                       threshold_text))
    log.info("score: %s%s", label, describe_counts(result | {"thresholds_text": threshold_text}))
    return result


# -- many samples, one model load ------------------------------------------------------------------------------------

SAMPLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
SAMPLE_FIELD = "{sample}"
PER_SAMPLE_OUTPUTS = ("output", "in_out", "ood_out", "novel_out", "unscored_out", "bed", "summary", "report")


@dataclass(frozen=True)
class Sample:
    """One row of a samples sheet: a name, and one reads file (or two: R1 and R2, scored as pairs)."""

    name: str
    reads: tuple[str, ...]
    row: int  # 1-based line of the sheet


def read_samples(path: str) -> list[Sample]:
    """The samples of a sheet: `sample<TAB>R1[<TAB>R2]` per line (a header line starting with `sample` and `#`
    comments are skipped). A row of the wrong shape, a duplicate or unsafe name, or a reads file that does not exist
    is a UsageError naming the sheet and its row."""
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the samples sheet ({getattr(exc, 'strerror', None) or exc})") from None
    base = os.path.dirname(path)
    for number, line in enumerate(lines, start=1):
        fields = [f.strip() for f in line.split("\t")]
        if not line.strip() or fields[0].startswith("#") or (number == 1 and fields[0].lower() == "sample"):
            continue
        where = f"{path}: row {number}"
        if len(fields) not in (2, 3) or not all(fields):
            raise UsageError(f"{where}: need `sample<TAB>R1` or `sample<TAB>R1<TAB>R2`, got {len(fields)} field(s)")
        name = fields[0]
        if not SAMPLE_NAME.fullmatch(name):
            raise UsageError(f"{where}: sample name {name!r} is not safe in a file name (letters, digits, . _ -)")
        if name in seen:
            raise UsageError(f"{where}: sample {name!r} also on row {seen[name]}")
        reads = tuple(f if os.path.isabs(f) or f == "-" else os.path.join(base, f) for f in fields[1:])
        missing = [f for f in reads if not os.path.exists(f)]
        if missing:
            raise UsageError(f"{where}: sample {name!r}: no such file {missing[0]}")
        seen[name] = number
        samples.append(Sample(name, reads, number))
    if not samples:
        raise UsageError(f"{path}: no samples in the sheet")
    return samples


def score_samples(model: str, sheet: str, output: str, options: ScoreOptions = ScoreOptions(),
                  runtime: Runtime = Runtime()) -> dict:
    """`gooddetect score --samples SHEET`: every sample of the sheet with one model load, each to the outputs whose
    names hold `{sample}`; --multiqc is one table with a row per sample. A sample whose input fails is reported (one
    line naming it) and left without outputs; the others complete, and then a SampleFailures error is raised."""
    samples = read_samples(sheet)
    templates = {"output": output} | {name: getattr(options, name) for name in PER_SAMPLE_OUTPUTS[1:]}
    for name, value in templates.items():
        if value is not None and SAMPLE_FIELD not in value:
            flag = "-o/--output" if name == "output" else "--" + name.replace("_", "-")
            raise UsageError(f"{flag} {value!r}: with --samples every output names its sample with {SAMPLE_FIELD}")
    if options.layout == "paired":
        raise UsageError("with --samples, a row with two reads files is scored as a pair (no --paired)")
    if options.sample_name:
        raise UsageError("--sample-name: with --samples, the MultiQC table has one row per sample")
    runs = []
    for sample in samples:
        named = {k: v.replace(SAMPLE_FIELD, sample.name) if v is not None else None for k, v in templates.items()}
        layout = "paired" if len(sample.reads) == 2 else options.layout
        runs.append((sample, named.pop("output"), replace(options, layout=layout, multiqc=None, **named)))
    check_distinct_outputs([o for _, output_, run in runs for o in _check_outputs(output_, run)]
                           + checked_paths(options.multiqc))
    check_multiqc_name(options.multiqc)
    detector = load_detector(model, runtime, options.bf16)
    thresholds = calibration.resolve(detector.calibration, options.threshold, options.fpr)
    results, failed = {}, []
    for sample, output_, run in runs:
        try:
            results[sample.name] = score_reads(detector, list(sample.reads), output_, run, runtime,
                                               f"sample {sample.name}: ")
        except GooddetectError as error:
            log.error("error: sample %s (%s row %d): %s", sample.name, sheet, sample.row, error)
            failed.append(sample.name)
    if options.multiqc:
        write_multiqc(options.multiqc, multiqc_content(results, thresholds.describe() if thresholds else "NA"))
    if failed:
        raise SampleFailures(f"{len(failed)} of {len(samples)} samples failed ({', '.join(failed)}); the others "
                             "were scored")
    return {"samples": results}


class SampleFailures(GooddetectError):
    """Some samples of a sheet failed (each reported when it did); the others were scored."""
