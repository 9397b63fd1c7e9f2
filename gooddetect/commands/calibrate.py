"""`gooddetect calibrate`: the OOD threshold and the in-distribution score table by length, stored in the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import __version__, calibration, metrics
from ..detector import Detector, load_detector
from ..errors import UsageError
from ..files import check_output_paths
from ..options import Switch, option
from ..runtime import Runtime
from ..samples import labeled_scores
from ..scoring import CALLS, DEFAULT_BATCH_SIZE, call_codes, score_chunks
from ..seqio import CHUNK_RECORDS, RecordChunk
from ..support import MIN_SUPPORT, foreign


@dataclass(frozen=True)
class CalibrateOptions:
    """Where the calibrated model goes, the threshold rule and its value, and what is stored with it."""

    output: str | None = option(None, "Calibrated model file to write (default: update MODEL in place, atomically).",
                                short="-o")
    rule: str = option("target_fpr", "", switches=(
        Switch("--target-fpr", "target_fpr", "Flag at most FPR of in-distribution reads (default rule; needs only "
               "in-distribution reads)."),
        Switch("--max-f1", "max_f1", "Threshold maximising F1 (OOD positive)."),
        Switch("--youden", "youden", "Threshold maximising TPR - FPR."),
        Switch("--percentile", "percentile", "alibi-detect's rule: the P-th percentile of the sample's OOD scores.")))
    fpr: float = option(0.05, "FPR for --target-fpr.", min=0, max=1)
    perc: float = option(95.0, "P for --percentile.", short="-p", min=0, max=100)
    length_aware: bool | None = option(None, "Whether score flags each read by the in-distribution score table at "
                                       "its length (default for --target-fpr) or by the one threshold (default for "
                                       "the other rules).", off_flag="--single-threshold")
    min_support: float = option(MIN_SUPPORT, "Models with a support table: call a read foreign when less than this "
                                "fraction of its minimizers is in the references (stored; score --min-support "
                                "overrides it).", min=0, max=1)
    json: str | None = option(None, "Also write the calibration report as JSON.")

    @property
    def value(self) -> float | None:
        """The rule's value: the FPR of target_fpr, the P of percentile, else none."""
        return {"target_fpr": self.fpr, "percentile": self.perc}.get(self.rule)


def length_table(detector: Detector, sequences: list[str], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 seed: int = 0) -> calibration.LengthTable:
    """The table of in-distribution score quantiles by length, from pieces of `sequences` (see calibration)."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    groups, n_scored = {}, {}
    for length, (which, starts) in calibration.piece_spans(lengths, np.random.default_rng([seed, 3])).items():
        pieces = [sequences[i][s:s + length] for i, s in zip(which.tolist(), starts.tolist())]
        sample_chunks = (RecordChunk.of_sequences(pieces[a:a + CHUNK_RECORDS], a)
                         for a in range(0, len(pieces), CHUNK_RECORDS))
        scores, scored_bases = [], []
        for scored in score_chunks(detector, sample_chunks, batch_size=batch_size):
            scores.append(scored.score[scored.scored])
            scored_bases.append(scored.n_scored[scored.scored])
        groups[length], n_scored[length] = np.concatenate(scores), np.concatenate(scored_bases)
    return calibration.LengthTable.fit(groups, n_scored)


def calibrate(model: str, output: str | None = None, *, rule: str = "target_fpr", value: float | None = 0.05,
              in_dist: list[str] = (), ood: list[str] = (), reads: list[str] = (), labels: str | None = None,
              length_aware: bool | None = None, min_support: float = MIN_SUPPORT,
              batch_size: int = DEFAULT_BATCH_SIZE, runtime: Runtime = Runtime()) -> dict:
    """`gooddetect calibrate`: choose a threshold on a labeled sample by `rule`, store it with the calibration
    metrics, the FPR/TPR trade-off and the table of in-distribution score quantiles by read length in the model file
    (written atomically to `output`, default: in place). `length_aware` (default: for the target_fpr rule) makes
    `score` flag each read by the table at its length instead of by the one threshold. With a support table,
    `min_support` is stored as the foreign boundary, and the report gives the calls each sample gets."""
    if rule not in calibration.RULES:
        raise UsageError(f"unknown threshold rule {rule!r}")
    check_output_paths(output)
    detector = load_detector(model, runtime)
    scored, is_ood, in_sequences = labeled_scores(detector, in_dist=in_dist, ood=ood, reads=reads, labels=labels,
                                                  batch_size=batch_size, keep_sequences=True)
    if not (~is_ood).any():
        raise UsageError("calibration needs in-distribution reads (--in-dist, or 'in' labels)")
    threshold = calibration.choose_threshold(rule, value, scored["score"], is_ood)
    in_scores = scored["score"][~is_ood]
    flagged = float((in_scores > threshold).mean())
    table = length_table(detector, in_sequences, batch_size=batch_size)
    length_aware = rule == "target_fpr" if length_aware is None else length_aware
    report: dict = {"value": threshold, "rule": rule, "rule_value": value, "score": "score = -llr (per-base mean)",
                    "n_in": int((~is_ood).sum()), "n_ood": int(is_ood.sum()), "in_dist_flagged": flagged,
                    "fpr": value if rule == "target_fpr" else flagged, "length_aware": length_aware,
                    "table": table.to_dict(), "trade_off": calibration.trade_off(scored["score"], is_ood),
                    "gooddetect_version": __version__}
    if is_ood.any():
        report["metrics"] = metrics.summarize(scored["score"], is_ood, threshold)
    if "support" in scored:
        min_support = calibration.support_boundary(scored["support_hits"][~is_ood],
                                                   scored["support_lookups"][~is_ood], min_support)
        flagged = scored["score"] > calibration.resolve(report).for_fragments(scored["n_scored"])
        calls = call_codes(np.ones(len(is_ood), dtype=bool), flagged,
                           foreign(scored["support_hits"], scored["support_lookups"], min_support))
        report["min_support"] = min_support
        report["calls"] = {sample: {call: float(np.mean(calls[which] == code)) for code, call in enumerate(CALLS)}
                           for sample, which in (("in_dist", ~is_ood), ("ood", is_ood)) if which.any()}
    report = _finite_or_none(report)
    detector.meta["threshold"] = report
    detector.save(output or model)
    return report


def _finite_or_none(value):
    """The same data with non-finite floats (±inf, NaN) replaced by None, so it is valid JSON."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
