import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gooddetect import metrics

# Four reads, one in/OOD tie at score 2: the in-vs-OOD pairs are (3>1, 3>2, 2=2, 2>1) -> AUROC = 3.5 / 4.
TIED_SCORES = [1.0, 2.0, 2.0, 3.0]
TIED_LABELS = [0, 0, 1, 1]


def test_roc_curve_one_point_per_distinct_threshold():
    fpr, tpr, thresholds = metrics.roc_curve(TIED_SCORES, TIED_LABELS)
    np.testing.assert_array_equal(thresholds, [3.0, 2.0, 1.0, -np.inf])
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 1.0, 1.0])


def test_auroc_with_ties_by_hand():
    assert metrics.auroc(TIED_SCORES, TIED_LABELS) == pytest.approx(0.875)


def test_auroc_perfect_inverted_and_all_tied():
    labels = [False, False, True, True]
    assert metrics.auroc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert metrics.auroc([0.9, 0.8, 0.2, 0.1], labels) == 0.0
    assert metrics.auroc([5.0, 5.0, 5.0, 5.0], labels) == 0.5


def test_auroc_of_random_scores_is_near_one_half():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=4000)
    labels = rng.random(4000) < 0.5
    assert abs(metrics.auroc(scores, labels) - 0.5) < 0.04


def test_auprc_by_hand():
    # scikit-learn's documented example: precision 1 at recall 1/2, then 2/3 at recall 1.
    assert metrics.auprc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(1 / 2 + 1 / 2 * 2 / 3)
    # Positives at ranks 1, 3, 5: mean of precisions 1, 2/3, 3/5.
    assert metrics.auprc([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 1]) == pytest.approx(34 / 45)
    # A tied group is one step: (R, P) = (1/2, 1) then (1, 2/3).
    assert metrics.auprc(TIED_SCORES, TIED_LABELS) == pytest.approx(5 / 6)


def test_auprc_perfect_inverted_and_all_tied():
    labels = [0, 0, 1, 1]
    assert metrics.auprc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    # Positives at ranks 3 and 4: precisions 1/3 and 2/4.
    assert metrics.auprc([0.9, 0.8, 0.2, 0.1], labels) == pytest.approx(5 / 12)
    assert metrics.auprc([1.0, 1.0, 1.0, 1.0, 1.0], [0, 1, 0, 0, 0]) == pytest.approx(0.2)


def test_fpr_at_tpr_by_hand():
    assert metrics.fpr_at_tpr(TIED_SCORES, TIED_LABELS, 0.8) == 0.5
    assert metrics.fpr_at_tpr(TIED_SCORES, TIED_LABELS, 0.5) == 0.0
    # TPR reaches exactly 0.8 with 8 of 10 OOD reads above every in-distribution read but one.
    scores = np.arange(20.0)
    labels = np.array([0] * 9 + [1] * 2 + [0] + [1] * 8)
    assert metrics.fpr_at_tpr(scores, labels, 0.8) == 0.0
    assert metrics.fpr_at_tpr(scores, labels, 0.9) == 0.1
    assert metrics.fpr_at_tpr(scores, labels, 1.0) == 0.1


def test_confusion_at_is_strictly_greater_than():
    at_1_5 = metrics.confusion_at(TIED_SCORES, TIED_LABELS, 1.5)  # flags 2, 2, 3: TP 2, FP 1, FN 0, TN 1
    assert at_1_5 == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "fpr": 0.5, "tpr": 1.0})
    at_2 = metrics.confusion_at(TIED_SCORES, TIED_LABELS, 2.0)  # flags only 3: TP 1, FP 0, FN 1, TN 2
    assert at_2 == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "fpr": 0.0, "tpr": 0.5})


def test_confusion_at_with_nothing_flagged_or_one_class():
    nothing = metrics.confusion_at(TIED_SCORES, TIED_LABELS, 3.0)
    assert math.isnan(nothing["precision"])
    assert (nothing["recall"], nothing["f1"], nothing["fpr"]) == (0.0, 0.0, 0.0)
    in_only = metrics.confusion_at([1.0, 2.0, 3.0, 4.0], [0, 0, 0, 0], 2.5)
    assert in_only["fpr"] == 0.5
    assert math.isnan(in_only["tpr"])


def test_threshold_target_fpr_by_hand():
    in_scores = [4.0, 2.0, 1.0, 3.0, 2.0]
    assert metrics.threshold_target_fpr(in_scores, 0.0) == 4.0
    assert metrics.threshold_target_fpr(in_scores, 0.2) == 3.0
    assert metrics.threshold_target_fpr(in_scores, 0.4) == 2.0
    assert metrics.threshold_target_fpr(in_scores, 0.6) == 2.0  # tie at 2: achieved FPR 0.4 <= 0.6
    assert metrics.threshold_target_fpr(in_scores, 0.8) == 1.0
    assert metrics.threshold_target_fpr(in_scores, 0.99) == 1.0
    # 0.29 * 100 is 28.999999999999996 in floating point; 29 scores may still exceed the threshold.
    assert metrics.threshold_target_fpr(np.arange(100.0), 0.29) == 70.0


def test_threshold_max_f1_and_youden_by_hand():
    # F1 over thresholds 3, 2, 1, -inf: 0, 2/3, 4/5, 2/3 -> flag > 1.
    assert metrics.threshold_max_f1(TIED_SCORES, TIED_LABELS) == 1.0
    # J over the same thresholds: 0, 1/2, 1/2, 0 -> the first (highest) of the tie, flag > 2.
    assert metrics.threshold_youden(TIED_SCORES, TIED_LABELS) == 2.0
    separable = [0.1, 0.2, 0.8, 0.9]
    assert metrics.threshold_max_f1(separable, [0, 0, 1, 1]) == 0.2
    assert metrics.threshold_youden(separable, [0, 0, 1, 1]) == 0.2
    # One in-distribution read among many OOD ones: flagging everything maximises F1.
    assert metrics.threshold_max_f1([5.0, 1.0, 2.0, 3.0, 4.0], [0, 1, 1, 1, 1]) == -np.inf


def test_threshold_percentile_interpolates_linearly_between_order_statistics():
    """alibi-detect's rule, by hand: the P-th percentile of n scores sits at rank (n - 1) P / 100 of the sorted
    scores, interpolated linearly between its two neighbours."""
    scores = [3.0, 1.0, 5.0, 2.0, 4.0]  # sorted: 1 2 3 4 5
    assert metrics.threshold_percentile(scores, 90) == pytest.approx(4.6)  # rank 3.6: 4 + 0.6 * (5 - 4)
    assert metrics.threshold_percentile(scores, 50) == 3.0  # rank 2
    assert metrics.threshold_percentile(scores, 0) == 1.0 and metrics.threshold_percentile(scores, 100) == 5.0
    assert metrics.threshold_percentile([10.0, 20.0], 25) == pytest.approx(12.5)  # rank 0.25
    assert metrics.threshold_percentile([7.0], 37) == 7.0


def test_summarize_is_json_ready():
    report = metrics.summarize(TIED_SCORES, TIED_LABELS, threshold=1.5)
    assert report["auroc"] == pytest.approx(0.875)
    assert report["auprc"] == pytest.approx(5 / 6)
    assert report["fpr_at_tpr80"] == 0.5
    assert report["fpr_at_tpr95"] == 0.5
    assert (report["n_in"], report["n_ood"]) == (2, 2)
    assert report["f1"] == pytest.approx(0.8)
    assert all(type(value) in (int, float) for value in report.values())
    assert json.loads(json.dumps(report)) == report
    assert set(metrics.summarize(TIED_SCORES, TIED_LABELS)) == {
        "auroc", "auprc", "fpr_at_tpr80", "fpr_at_tpr95", "n_in", "n_ood"
    }


def test_pearson():
    assert metrics.pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert metrics.pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="constant"):
        metrics.pearson([1, 2, 3], [5, 5, 5])


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.auroc([1.0, np.nan], [0, 1]),
        lambda: metrics.auprc([1.0, np.nan], [0, 1]),
        lambda: metrics.summarize([1.0, np.nan], [0, 1]),
        lambda: metrics.threshold_target_fpr([1.0, np.nan], 0.1),
        lambda: metrics.threshold_percentile([np.nan], 50),
        lambda: metrics.confusion_at([np.nan], [1], 0.0),
        lambda: metrics.pearson([1.0, 2.0, np.nan], [1.0, 2.0, 3.0]),
    ],
)
def test_nan_scores_are_rejected(call):
    with pytest.raises(ValueError, match="non-finite"):
        call()


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="both"):
        metrics.auroc([1.0, 2.0], [1, 1])
    with pytest.raises(ValueError, match="both"):
        metrics.fpr_at_tpr([1.0, 2.0], [0, 0])
    with pytest.raises(ValueError, match="shape"):
        metrics.auroc([1.0, 2.0], [0, 1, 1])
    with pytest.raises(ValueError, match="0/1"):
        metrics.auroc([1.0, 2.0], [0, 2])
    with pytest.raises(ValueError, match="fpr"):
        metrics.threshold_target_fpr([1.0], 1.0)
    with pytest.raises(ValueError, match="percentile"):
        metrics.threshold_percentile([1.0], 101)


# Small integer scores so that ties between and within classes are frequent.
scored_reads = st.integers(min_value=2, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-4, 4), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda labels: 0 < sum(labels) < len(labels)),
    )
)


def brute_force_auroc(scores, labels):
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    ood = scores[labels][:, None]
    ind = scores[~labels][None, :]
    return float(np.mean((ood > ind) + 0.5 * (ood == ind)))


@settings(max_examples=150, deadline=None)
@given(scored_reads)
def test_auroc_equals_pairwise_count(reads):
    scores, labels = reads
    assert metrics.auroc(scores, labels) == pytest.approx(brute_force_auroc(scores, labels), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(scored_reads)
def test_auroc_of_negated_scores_is_complement(reads):
    scores, labels = reads
    negated = [-s for s in scores]
    assert metrics.auroc(negated, labels) == pytest.approx(1.0 - metrics.auroc(scores, labels), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(scored_reads, st.floats(min_value=0.05, max_value=1.0))
def test_fpr_at_tpr_and_best_thresholds_match_brute_force(reads, target):
    scores, labels = reads
    candidates = sorted(set(float(s) for s in scores)) + [-np.inf]
    confusions = {t: metrics.confusion_at(scores, labels, t) for t in candidates}
    reaching = [c["fpr"] for c in confusions.values() if c["tpr"] >= target - 1e-9]  # float slack as documented
    assert metrics.fpr_at_tpr(scores, labels, target) == min(reaching)
    best_f1 = confusions[metrics.threshold_max_f1(scores, labels)]["f1"]
    assert best_f1 == pytest.approx(max(c["f1"] for c in confusions.values()))
    best_j = confusions[metrics.threshold_youden(scores, labels)]
    assert best_j["tpr"] - best_j["fpr"] == pytest.approx(max(c["tpr"] - c["fpr"] for c in confusions.values()))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=2, max_size=30).filter(
        lambda scores: len(set(scores)) == len(scores)
    ),
    st.data(),
)
def test_auprc_without_ties_is_mean_precision_at_each_ood_read(scores, data):
    labels = data.draw(
        st.lists(st.booleans(), min_size=len(scores), max_size=len(scores)).filter(
            lambda labels: 0 < sum(labels) < len(labels)
        )
    )
    ranked = np.asarray(labels)[np.argsort(scores)[::-1]]
    precision_at = np.cumsum(ranked) / np.arange(1, ranked.size + 1)
    assert metrics.auprc(scores, labels) == pytest.approx(float(precision_at[ranked].mean()))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=1, max_size=50), st.floats(min_value=0.0, max_value=0.999))
def test_threshold_target_fpr_meets_target_and_is_smallest(in_scores, target):
    values = np.asarray(in_scores, dtype=float)
    threshold = metrics.threshold_target_fpr(values, target)
    assert np.mean(values > threshold) <= target
    lower = values[values < threshold]
    if lower.size:  # the next lower score (and anything between) would flag too many
        assert np.mean(values > lower.max()) > target
