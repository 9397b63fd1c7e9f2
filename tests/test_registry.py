"""The registry of model and classifier kinds: every kind provides what `train`, `score`, `screen` and the model
file need of it, and an unknown kind is refused by name."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from gooddetect.errors import ModelFileError
from gooddetect.models import registry


@pytest.mark.parametrize("name", list(registry.KINDS))
def test_every_model_kind_provides_what_train_and_the_model_file_need(name):
    kind = registry.model_kind(name)
    assert kind.NAME == name and isinstance(kind.USES_TORCH, bool)
    for function in ("check", "window_options", "train", "model_class"):
        assert callable(getattr(kind, function)), function
    fields = {f.name for group in kind.OPTION_GROUPS for f in dataclasses.fields(group)}
    assert {"score_strands", "mutation_rate"} <= fields  # what train records of every kind
    model = kind.model_class()
    assert model.kind == name and model.uses_torch == kind.USES_TORCH
    for attribute in ("stored_deflated", "chunks_in_flight", "loglik", "binned_loglik", "from_state"):
        assert hasattr(model, attribute), attribute


@pytest.mark.parametrize("name", list(registry.CLASSIFIERS))
def test_every_classifier_kind_names_its_class_and_its_options(name):
    entry = registry.CLASSIFIERS[name]
    assert registry.classifier_class(name).kind == name
    assert dataclasses.is_dataclass(entry.config)
    assert entry.schedule is None or dataclasses.is_dataclass(entry.schedule)


def test_unknown_kinds_are_refused_naming_the_known_ones():
    with pytest.raises(ModelFileError, match="unknown model kind 'hmm' \\(known: lstm, kmer\\)"):
        registry.model_class("hmm")
    with pytest.raises(ModelFileError, match="unknown classifier kind 'svm' \\(known: kmer, convnet\\)"):
        registry.classifier_class("svm")


def test_the_kmer_kind_and_its_classifier_load_without_torch():
    """Only the kinds that use torch import it: a k-mer user needs no torch at run time."""
    code = ("import sys; from gooddetect.models import registry; registry.model_class('kmer'); "
            "registry.classifier_class('kmer'); registry.model_kind('lstm'); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
