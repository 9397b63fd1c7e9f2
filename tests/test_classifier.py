"""The ConvNet classifier and its OOD scores: shapes and softmax sums, ODIN's perturbation direction, (relative)
Mahalanobis distances against a hand computation, model files with and without a classifier, the class errors of
`train`, and a tiny end-to-end run on data/ with --class-per-file --classifier convnet."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from gooddetect import api
from gooddetect.alphabet import mask_padding
from gooddetect.detector import Detector
from gooddetect.errors import InputError
from gooddetect.models.classifier import Classifier, ClassifierConfig, ConvNet, Gaussians
from gooddetect.models.configs import ClassifierTraining
from gooddetect.training.classifier import train_classifier
from fixtures import READS, READS_LABELS, TRAIN, gd, read_tsv

pytestmark = pytest.mark.usefixtures("one_thread")
CONFIG = ClassifierConfig(classes=["a", "b", "c"], filters=8, width=5, hidden=6)


def random_classifier(seed: int = 0, config: ClassifierConfig = CONFIG) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(config, ConvNet(config), Gaussians.untrained(config))


def windows(n: int, length: int = 40, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4, (n, length), dtype=np.uint8), rng.integers(10, length + 1, n)


def test_shapes_and_probabilities():
    probs, scores = random_classifier().predict(*windows(7))
    assert probs.shape == (7, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert set(scores) == {"msp", "entropy", "mahalanobis", "rel_mahalanobis"}
    assert all(values.shape == (7,) for values in scores.values())
    np.testing.assert_allclose(scores["msp"], 1 - probs.max(axis=1))
    np.testing.assert_allclose(scores["entropy"], -(probs * np.log(probs)).sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize("width", [1, 4, 7, 20])
@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_convolution_equals_the_network(width, threads):
    """The table-lookup convolution (scoring) against torch's (training): unknown bases, windows shorter than the
    filter, widths that are and are not a multiple of the lookup group, one and two threads."""
    config = ClassifierConfig(classes=["a", "b"], filters=16, width=width, hidden=5, both_strands=False)
    classifier = random_classifier(seed=width, config=config)
    classifier.threads = threads
    codes, lengths = windows(700, length=60, seed=width)
    codes[np.random.default_rng(0).random(codes.shape) < 0.05] = 4
    lengths[:3] = [width - 1, width, 0]
    codes = mask_padding(codes, lengths)
    with torch.inference_mode():
        expected = classifier.net.features(classifier.net.encode(torch.from_numpy(codes).long()),
                                           torch.from_numpy(lengths)).numpy()
    features = classifier._probs_and_features(codes, lengths)[1]
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    assert (features[0] == np.maximum(classifier.net.dense.bias.detach().numpy(), 0)).all()  # no position fits


def test_compiled_convolution_follows_new_weights():
    classifier = random_classifier()
    codes, lengths = windows(5)
    before = classifier.predict(codes, lengths)[0]
    with torch.no_grad():
        classifier.net.conv.weight.mul_(-2.0)  # in place, as the optimiser changes it
    with torch.inference_mode():
        expected = torch.softmax(classifier.net(classifier.net.encode(torch.from_numpy(codes).long()),
                                                torch.from_numpy(lengths)), dim=1).numpy()
    after = classifier._probs_and_features(codes, lengths)[0]
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)


def test_positions_beyond_the_length_do_not_count():
    classifier = random_classifier()
    codes, lengths = windows(5)
    junk = codes.copy()
    junk[np.arange(codes.shape[1]) >= lengths[:, None]] = 3 - junk[np.arange(codes.shape[1]) >= lengths[:, None]]
    np.testing.assert_array_equal(classifier.predict(codes, lengths)[0], classifier.predict(junk, lengths)[0])


def test_both_strands_average_the_window_and_its_reverse_complement():
    one = random_classifier(config=ClassifierConfig(**{**CONFIG.to_dict(), "both_strands": False}))
    both = Classifier(ClassifierConfig(**CONFIG.to_dict()), one.net, one.gaussians)
    codes, lengths = windows(4, seed=3)
    lengths[:] = codes.shape[1]
    reverse = (3 - codes)[:, ::-1].copy()
    expected = (one.predict(codes, lengths)[0] + one.predict(reverse, lengths)[0]) / 2
    np.testing.assert_allclose(both.predict(codes, lengths)[0], expected, rtol=1e-6)


def test_odin_moves_the_input_towards_a_higher_top_class_score():
    """ODIN's perturbed input has a higher tempered top-class probability than the input itself (so its OOD score,
    1 - that probability, is lower than at epsilon 0)."""
    classifier = random_classifier(seed=2, config=ClassifierConfig(**{**CONFIG.to_dict(), "both_strands": False}))
    codes, lengths = windows(20, seed=4)
    plain = classifier.odin(codes, lengths, temperature=10.0, epsilon=0.0)
    moved = classifier.odin(codes, lengths, temperature=10.0, epsilon=0.05)
    assert (moved < plain).all()
    np.testing.assert_allclose(plain, 1 - np.max(torch.softmax(torch.from_numpy(np.log(
        classifier.predict(codes, lengths)[0])) * 0 + classifier.net(classifier.net.encode(torch.from_numpy(
            codes).long()), torch.from_numpy(lengths)).detach() / 10.0, dim=1).numpy(), axis=1), rtol=1e-5)


def test_mahalanobis_against_a_hand_computation():
    rng = np.random.default_rng(5)
    means = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 6.0]])
    features = np.concatenate([rng.normal(m, 1.0, (300, 2)) for m in means])
    labels = np.repeat([0, 1, 2], 300)
    gaussians = Gaussians.fit(features, labels, 3)
    fitted_means = np.stack([features[labels == c].mean(axis=0) for c in range(3)])
    centred = features - fitted_means[labels]
    shared = np.linalg.inv(centred.T @ centred / len(features))
    spread = features - features.mean(axis=0)
    overall = np.linalg.inv(spread.T @ spread / len(features))
    points = np.array([[0.5, 0.2], [10.0, -3.0], [4.0, 6.0]])
    by_class = np.array([[(p - m) @ shared @ (p - m) for m in fitted_means] for p in points])
    to_all = np.array([(p - features.mean(axis=0)) @ overall @ (p - features.mean(axis=0)) for p in points])
    distance, relative = gaussians.distances(points)
    np.testing.assert_allclose(distance, by_class.min(axis=1), rtol=1e-4)
    np.testing.assert_allclose(relative, (by_class - to_all[:, None]).min(axis=1), rtol=1e-4, atol=1e-4)
    assert distance[1] > 10 * distance[0]  # far from every class


def test_training_learns_separable_classes():
    rng = np.random.default_rng(6)
    motifs = [rng.integers(0, 4, 8) for _ in range(3)]

    def sample(n, seed):
        r = np.random.default_rng(seed)
        labels = r.integers(0, 3, n)
        codes = r.integers(0, 4, (n, 40)).astype(np.uint8)
        for i, label in enumerate(labels):
            start = r.integers(0, 32)
            codes[i, start:start + 8] = motifs[label]
        return codes, np.full(n, 40), labels

    train, val = sample(600, 7), sample(100, 8)
    config = ClassifierConfig(classes=["a", "b", "c"], filters=16, width=8, hidden=8, both_strands=False)
    classifier = train_classifier(*train, *val, config, ClassifierTraining(lr=1e-2, epochs=4))
    assert classifier.stats["val_accuracy"] > 0.9
    assert classifier.gaussians.means.shape == (3, 8)


def test_model_files_with_and_without_a_classifier(tmp_path):
    from test_detector import lstm_detector

    plain = lstm_detector()
    plain.save(tmp_path / "plain.gdm")
    assert Detector.load(tmp_path / "plain.gdm").classifier is None
    plain.classifier = random_classifier()
    plain.save(tmp_path / "with.gdm")
    loaded = Detector.load(tmp_path / "with.gdm")
    assert loaded.classifier.classes == ["a", "b", "c"]
    codes, lengths = windows(6)
    for a, b in zip(plain.classifier.predict(codes, lengths), loaded.classifier.predict(codes, lengths)):
        if isinstance(a, dict):
            assert all(np.array_equal(a[k], b[k]) for k in a)
        else:
            np.testing.assert_array_equal(a, b)
    info = api.info(str(tmp_path / "with.gdm"))
    assert info["models"]["classifier"]["classes"] == ["a", "b", "c"] and info["parameters"]["classifier"] > 0


def test_a_file_without_classifier_kind_holds_a_convnet(tmp_path):
    """Files written before `classifier_kind` was recorded load their classifier as the ConvNet."""
    from test_detector import lstm_detector
    from test_model_file import _resave

    detector = lstm_detector()
    detector.classifier = random_classifier()
    detector.save(tmp_path / "with.gdm")
    old = _resave(tmp_path / "with.gdm", tmp_path / "old.gdm",
                  lambda d: {k: v for k, v in d.items() if k != "classifier_kind"})
    assert "classifier_kind" not in api.info(str(old))
    loaded = Detector.load(old)
    assert type(loaded.classifier) is Classifier and loaded.classifier.config == CONFIG


# -- train: class errors (each one line, exit 1, no model written) -------------------------------------------------


def classes_file(tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    path = tmp_path / "classes.tsv"
    path.write_text("".join(f"{a}\t{b}\n" for a, b in rows))
    return path


def reads_file(tmp_path: Path, names: list[str]) -> Path:
    rng = np.random.default_rng(9)
    path = tmp_path / "reads.fa"
    path.write_text("".join(f">{n}\n{''.join(rng.choice(list('ACGT'), 120))}\n" for n in names))
    return path


@pytest.mark.parametrize("case, rows, message", [
    ("labels naming reads not in the input", [("r0", "x"), ("r1", "y"), ("r2", "x"), ("zz", "y")],
     "names 1 reads that are not in the inputs (first: zz)"),
    ("reads without a label", [("r0", "x"), ("r1", "y")], "1 training reads have no class (first: r2)"),
    ("a single class", [("r0", "x"), ("r1", "x"), ("r2", "x")], "needs two classes or more; found 1"),
])
def test_class_errors(tmp_path, case, rows, message):
    reads = reads_file(tmp_path, ["r0", "r1", "r2"])
    with pytest.raises(InputError, match=re.escape(message)):
        api.train([str(reads)], str(tmp_path / "m.gdm"), arch="kmer", max_order=4, classes=str(
            classes_file(tmp_path, rows)))
    assert not (tmp_path / "m.gdm").exists()


def test_a_class_without_windows(tmp_path):
    rng = np.random.default_rng(2)
    reads = tmp_path / "reads.fa"
    reads.write_text(f">r0\n{''.join(rng.choice(list('ACGT'), 120))}\n>r1\nACGT\n")  # r1: too short for a window
    with pytest.raises(InputError, match="class y has no training window"):
        api.train([str(reads)], str(tmp_path / "m.gdm"), arch="kmer", max_order=4,
                  classes=str(classes_file(tmp_path, [("r0", "x"), ("r1", "y")])))


def test_classes_and_class_per_file_together(tmp_path):
    reads = reads_file(tmp_path, ["r0"])
    done = gd("train", reads, "-o", tmp_path / "m.gdm", "--arch", "kmer", "--class-per-file", "--classes",
              classes_file(tmp_path, [("r0", "x")]), check=False)
    assert done.returncode == 1 and b"give one of --classes, --class-per-file, --record-classes" in done.stderr
    assert not (tmp_path / "m.gdm").exists()


@pytest.mark.slow
def test_tiny_end_to_end_with_the_convnet(tmp_path):
    model = tmp_path / "m.gdm"
    gd("train", *TRAIN, "-o", model, "--arch", "kmer", "--max-order", "8", "--class-per-file",
       "--classifier", "convnet", "--classifier-filters", "32", "--classifier-epochs", "2", "--classifier-lr", "1e-3", "--threads", "1")
    info = json.loads(gd("info", "--json", model).stdout)
    assert info["models"]["classifier"]["classes"] == [p.name.split(".")[0] for p in TRAIN]
    per_class = info["training"]["classifier"]["windows_per_class"]
    assert sum(per_class) == 5700 and min(per_class) > 1100  # 1200 each; 5 % drawn at random for validation
    gd("score", model, READS, "-o", tmp_path / "s.tsv", "--threads", "1")
    rows = read_tsv((tmp_path / "s.tsv").read_text())
    assert {"class", "class_prob", "msp", "mahalanobis", "rel_mahalanobis"} <= set(rows[0])
    assert all(0.2 <= float(r["class_prob"]) <= 1.0 for r in rows)
    done = gd("evaluate", model, READS, "--labels", READS_LABELS, "--json", tmp_path / "e.json", "--threads", "1")
    result = json.loads((tmp_path / "e.json").read_text())
    assert set(result["scores"]) == {"likelihood", "llr", "support", "msp", "entropy", "odin", "mahalanobis",
                                     "rel_mahalanobis"}
    assert result["class_accuracy_reads"] == 500 and result["class_accuracy"] > 0.5  # 5 classes: chance is 0.2
    assert b"class accuracy" in done.stdout
