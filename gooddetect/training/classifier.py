"""Training the ConvNet classifier (models.classifier): Adam on labeled windows, the weights of the best validation
accuracy kept, then the Gaussians of its penultimate features fitted for the Mahalanobis scores."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..alphabet import mask_padding, reverse_complement_padded
from ..models.classifier import Classifier, ConvNet, Gaussians
from ..models.configs import ClassifierConfig, ClassifierTraining
from .optim import Adam

log = logging.getLogger("gooddetect")


def train_classifier(codes: np.ndarray, lengths: np.ndarray, labels: np.ndarray, val_codes: np.ndarray,
                     val_lengths: np.ndarray, val_labels: np.ndarray, config: ClassifierConfig,
                     training: ClassifierTraining) -> Classifier:
    """Train the ConvNet on labeled windows (a random strand per window and step with both_strands), keep the
    weights of the best validation accuracy, and fit the Gaussians of its penultimate features."""
    started = time.monotonic()
    torch.manual_seed(training.seed)
    codes, lengths = mask_padding(codes, lengths), np.asarray(lengths, dtype=np.int64)
    net = ConvNet(config)
    optimizer = Adam(net.parameters(), lr=training.lr)
    classifier = Classifier(config, net, Gaussians.untrained(config))
    best, best_state, history = -1.0, None, []
    rng = np.random.default_rng([training.seed, 7])
    for epoch in range(training.epochs):
        net.train()
        order = rng.permutation(len(codes))
        for start in range(0, len(order), training.batch_size):
            rows = order[start:start + training.batch_size]
            batch, batch_lengths = codes[rows], lengths[rows]
            if config.both_strands:
                flip = rng.random(len(rows)) < 0.5
                batch = np.where(flip[:, None], reverse_complement_padded(batch, batch_lengths), batch)
            inputs = net.encode(torch.from_numpy(batch).long())
            loss = F.cross_entropy(net(inputs, torch.from_numpy(batch_lengths)), torch.from_numpy(labels[rows]).long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        accuracy = float((classifier.predict(val_codes, val_lengths)[0].argmax(axis=1) == val_labels).mean())
        history.append(round(accuracy, 4))
        log.info("classifier epoch %d: validation accuracy %.4f", epoch + 1, accuracy)
        if accuracy > best:
            best, best_state = accuracy, {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    net.eval()
    features = np.concatenate([classifier._probs_and_features(c, n)[1]
                               for c, n in _slices(codes, lengths, 4096)])
    classifier.gaussians = Gaussians.fit(features, labels, len(config.classes))
    classifier.stats = {"val_accuracy": best, "val_accuracy_by_epoch": history, "windows": int(len(codes)),
                        "val_windows": int(len(val_codes)),
                        "windows_per_class": np.bincount(labels, minlength=len(config.classes)).tolist()}
    log.info("classifier trained in %.1f s", time.monotonic() - started)
    return classifier


def _slices(codes: np.ndarray, lengths: np.ndarray, size: int):
    for start in range(0, len(codes), size):
        yield codes[start:start + size], lengths[start:start + size]
