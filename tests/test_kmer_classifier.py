"""The k-mer classifier (one Markov chain per class, the default with classes): Bayes' rule over its chains, the
tempering, validation windows counted in after the statistics, model files (round trip, a lying config refused from
the header), the options of each classifier kind, and a tiny end-to-end run on data/ with --class-per-file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors import safe_open

from gooddetect import api
from gooddetect.detector import Detector
from gooddetect.errors import ModelFileError, UsageError
from gooddetect.models.kmer.model import BUCKET_SLOTS, KmerModel
from gooddetect.models.kmer_classifier import KmerClassifier, KmerClassifierConfig, train_kmer_classifier
from fixtures import READS, READS_LABELS, TRAIN, gd, read_tsv

CONFIG = KmerClassifierConfig(classes=["a", "b", "c"], order=3)


def markov_windows(n: int, source: int, seed: int, length: int = 120) -> np.ndarray:
    """Windows from first-order Markov source `source` (each has its own transition matrix)."""
    transitions = np.random.default_rng([source, 99]).dirichlet(np.full(4, 0.3), size=4)
    rng = np.random.default_rng([source, seed])
    codes = np.empty((n, length), dtype=np.uint8)
    codes[:, 0] = rng.integers(0, 4, n)
    for t in range(1, length):
        cumulative = transitions[codes[:, t - 1]].cumsum(axis=1)
        codes[:, t] = (rng.random((n, 1)) > cumulative).sum(axis=1).clip(max=3)
    return codes


def labeled(n_per_class: int, seed: int, length: int = 120):
    codes = np.concatenate([markov_windows(n_per_class, source, seed, length) for source in range(3)])
    labels = np.repeat(np.arange(3), n_per_class)
    return codes, np.full(len(codes), codes.shape[1], dtype=np.int64), labels


@pytest.fixture(scope="module")
def trained() -> KmerClassifier:
    return train_kmer_classifier(*labeled(60, seed=1), *labeled(20, seed=2), CONFIG)


def chains(classifier: KmerClassifier) -> list[KmerModel]:
    """Each class's chain on its own: the k-mer model of its counts, scored one chain at a time."""
    chain = classifier.config.chain()
    return [KmerModel(chain, counts, np.zeros((0, 1 << chain.hash_bits, BUCKET_SLOTS), np.uint16))
            for counts in classifier.counts]


def test_each_window_goes_to_the_source_it_came_from(trained):
    codes, lengths, labels = labeled(50, seed=3)
    probs, _ = trained.predict(codes, lengths)
    assert trained.stats["val_accuracy"] > 0.95 and (probs.argmax(axis=1) == labels).mean() > 0.95


def test_probabilities_are_bayes_rule_over_the_tempered_chains(trained):
    codes, lengths, _ = labeled(5, seed=4)
    logliks = np.stack([chain.loglik(codes, lengths)[0] for chain in chains(trained)], axis=1)
    np.testing.assert_allclose(trained.loglik(codes, lengths), logliks, rtol=1e-6)  # all classes at once, float32
    probs, scores = trained.predict(codes, lengths)
    for row, p in zip(trained.loglik(codes, lengths), probs):
        weights = [np.exp((x - row.max()) / CONFIG.temperature) for x in row]
        np.testing.assert_allclose(p, [w / sum(weights) for w in weights], rtol=1e-12)
        assert abs(p.sum() - 1) < 1e-12
    np.testing.assert_allclose(scores["msp"], 1 - probs.max(axis=1))
    np.testing.assert_allclose(scores["entropy"], [-sum(q * np.log(q) for q in p) for p in probs])


def test_all_classes_at_once_score_as_each_chain_alone(trained):
    """Unknown bases, short and padded rows: the class table gives each chain's own log-likelihood (to float32),
    the same on any number of threads."""
    rng = np.random.default_rng(11)
    codes = rng.integers(0, 4, (3000, 40), dtype=np.uint8)
    codes[rng.random(codes.shape) < 0.05] = 4
    lengths = rng.integers(0, 41, len(codes))
    expected = np.stack([chain.loglik(codes, lengths)[0] for chain in chains(trained)], axis=1)
    one = trained.loglik(codes, lengths)
    np.testing.assert_allclose(one, expected, rtol=1e-6, atol=1e-9)
    trained.configure(threads=3)
    try:
        np.testing.assert_array_equal(trained.loglik(codes, lengths), one)
    finally:
        trained.configure(threads=1)


def test_a_higher_temperature_spreads_the_probabilities(trained):
    codes, lengths, _ = labeled(20, seed=5)
    hot = KmerClassifier(KmerClassifierConfig(classes=CONFIG.classes, order=3, temperature=30.0), trained.counts)
    assert (hot.predict(codes, lengths)[1]["entropy"] > trained.predict(codes, lengths)[1]["entropy"]).all()


def test_validation_windows_are_counted_in_after_the_statistics(trained):
    windows = 3 * 60 + 3 * 20
    assert sum(int(chain.top_counts.sum()) for chain in chains(trained)) == 2 * windows * 117  # 4-mers, both strands
    assert trained.stats["windows_per_class"] == [60, 60, 60] and trained.stats["val_windows"] == 60


def test_the_statistics_come_before_the_validation_windows_are_counted_in():
    """The validation accuracy is that of chains counted on the training windows alone; the chains kept are counted
    on the training and the validation windows (both compared with chains counted here by hand)."""
    from gooddetect.models.kmer.model import Counter

    (codes, lengths, labels), (val_codes, val_lengths, val_labels) = labeled(1, seed=1, length=12), labeled(30, seed=8, length=12)
    config = KmerClassifierConfig(classes=CONFIG.classes, order=6)
    classifier = train_kmer_classifier(codes, lengths, labels, val_codes, val_lengths, val_labels, config)

    def chain(*parts):
        counter = Counter(config.chain(), config.chain().hash_bits)
        for c, n in parts:
            counter.add(c, n, np.zeros(len(n), np.int64))
        return counter.model(fold=False)

    before = [chain((codes[labels == k], lengths[labels == k])) for k in range(3)]
    predicted = np.argmax([m.loglik(val_codes, val_lengths)[0] for m in before], axis=0)
    after = np.mean(classifier.predict(val_codes, val_lengths)[0].argmax(axis=1) == val_labels)
    assert classifier.stats["val_accuracy"] == np.mean(predicted == val_labels) < after  # one window a class errs
    for k, kept in enumerate(chains(classifier)):
        both = chain((codes[labels == k], lengths[labels == k]),
                     (val_codes[val_labels == k], val_lengths[val_labels == k]))
        np.testing.assert_array_equal(kept.top_counts, both.top_counts)


def test_model_file_round_trip_and_a_lying_config(trained, tmp_path):
    from test_detector import lstm_detector

    detector = lstm_detector()
    detector.classifier = trained
    detector.save(tmp_path / "m.gdm")
    with safe_open(str(tmp_path / "m.gdm"), framework="np") as handle:  # the chains' arrays are stored deflated
        stored, deflated = handle.keys(), json.loads(handle.metadata()["deflated"])
    assert sorted(deflated) == sorted(k for k in stored if k.startswith("classifier.")) != []
    codes, lengths, _ = labeled(4, seed=6)
    for threads in (1, 3):  # chains rebuilt one after the other, or side by side
        loaded = Detector.load(tmp_path / "m.gdm", threads)
        assert type(loaded.classifier) is KmerClassifier and loaded.classifier.config == CONFIG
        np.testing.assert_array_equal(loaded.classifier.predict(codes, lengths)[0], trained.predict(codes, lengths)[0])
    info = api.info(str(tmp_path / "m.gdm"))
    assert info["classifier_kind"] == "kmer" and info["models"]["classifier"]["order"] == 3

    from test_model_file import _resave

    lying = _resave(tmp_path / "m.gdm", tmp_path / "lying.gdm", lambda d: {**d, "models": {
        **d["models"], "classifier": {**d["models"]["classifier"], "order": 12}}})
    with pytest.raises(ModelFileError, match=r"classifier.class_0.direct_counts is U8\[136\], the config calls for "
                                             r"U8/U16\[33554432\]"):
        Detector.load(lying)


@pytest.mark.parametrize("options, message", [
    ({"classifier": "kmer", "classifier_epochs": 2}, "--classifier-epochs: not used by --classifier kmer"),
    ({"classifier": "convnet", "classifier_order": 8}, "--classifier-order: not used by --classifier convnet"),
    ({"classifier_order": 8, "class_per_file": False}, "--classifier-order: a classifier is trained only with"),
    ({"classifier": "svm"}, "--classifier must be one of kmer, convnet, got 'svm'"),
])
def test_options_of_the_other_classifier_kind_are_refused(options, message, tmp_path):
    with pytest.raises(UsageError, match=message):
        api.train([str(p) for p in TRAIN], str(tmp_path / "m.gdm"), arch="kmer",
                  **{"class_per_file": True, **options})
    assert not (tmp_path / "m.gdm").exists()


@pytest.mark.slow
def test_tiny_end_to_end_with_the_default_classifier(tmp_path):
    model = tmp_path / "m.gdm"
    gd("train", *TRAIN, "-o", model, "--arch", "kmer", "--max-order", "8", "--class-per-file", "--threads", "1")
    info = json.loads(gd("info", "--json", model).stdout)
    assert info["classifier_kind"] == "kmer" and info["models"]["classifier"]["order"] == 10
    assert info["training"]["classifier"]["val_accuracy"] > 0.8  # 5 classes: chance is 0.2
    gd("score", model, READS, "-o", tmp_path / "s.tsv", "--threads", "1")
    rows = read_tsv((tmp_path / "s.tsv").read_text())
    assert list(rows[0])[-4:] == ["class", "class_prob", "msp", "entropy"]
    assert all(0.2 <= float(r["class_prob"]) <= 1.0 for r in rows)
    done = gd("evaluate", model, READS, "--labels", READS_LABELS, "--json", tmp_path / "e.json", "--threads", "1")
    result = json.loads((tmp_path / "e.json").read_text())
    assert set(result["scores"]) == {"likelihood", "llr", "support", "msp", "entropy"}
    assert result["class_accuracy_reads"] == 500 and result["class_accuracy"] > 0.7  # measured 0.78
    assert b"class accuracy" in done.stdout
