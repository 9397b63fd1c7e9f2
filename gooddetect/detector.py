"""The Detector: a foreground and a background model of one kind, their likelihood ratio, and the model file.

The model file is a safetensors file (tensors + JSON metadata; nothing in it is ever executed). Its metadata holds
one JSON document, `gooddetect`, with the format version, the version that trained it, both model configs, training
parameters and statistics, and the calibration; `sha256` covers that document and every tensor, so a truncated,
edited or corrupted file is refused. A file is untrusted input: its header (document, array names, shapes, dtypes)
is checked against the configs before any array is read or any model is built.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import __version__, container
from .alphabet import reverse_complement_padded
from .errors import ModelFileError
from .models import STRANDS, ArraySpec, GenerativeModel, bin_positions
from .models.registry import CLASSIFIERS, classifier_class, model_class
from .runtime import Runtime, run_tasks
from .support import ARRAY, SupportTable

FORMAT_NAME = "gooddetect-model"
FORMAT_VERSION = 4  # 4: the support table (older readers would refuse its array without saying why)
OLDEST_FORMAT_VERSION = 2  # 2 (gooddetect 0.2 before format 3): compact k-mer tables, calibration tables
ROLES = ("foreground", "background")
SUPPORT = "support"  # the document entry and array prefix of the support table
CLASSIFIER = "classifier"
DEFAULT_CLASSIFIER_KIND = "convnet"  # the only kind before `classifier_kind` was recorded


@dataclass
class Detector:
    """Foreground + background generative models; LLR(x) = loglik_fg(x) − loglik_bg(x), low LLR = OOD.

    `meta` holds everything else the file records: window settings, training parameters and statistics, and the
    calibration (`meta["threshold"]`, None until calibrated) on the OOD score −LLR. `version` is the gooddetect
    version that trained the models; `classifier` an optional in-distribution classifier (of a kind in
    models.registry.CLASSIFIERS)."""

    foreground: GenerativeModel
    background: GenerativeModel
    meta: dict = field(default_factory=dict)
    version: str = __version__
    classifier: Any = None
    support: SupportTable | None = None  # the references' k-mers (files before it: None, calls from the LLR alone)
    threads: int | None = None  # run-time: set by configure, not stored

    @property
    def kind(self) -> str:
        return self.foreground.kind

    @property
    def window_length(self) -> int:
        return int(self.meta["window_length"])

    @property
    def min_length(self) -> int:
        return int(self.meta["min_length"])

    @property
    def chunks_in_flight(self) -> int:
        """Chunks that scoring may compute at once: the fewest any of the models allows."""
        return min(m.chunks_in_flight for m in (self.foreground, self.background, self.classifier) if m is not None)

    @property
    def calibration(self) -> dict | None:
        return self.meta.get("threshold")

    @property
    def strands(self) -> str:
        """"forward" or "both" (files without the entry: "forward", the paper's scoring)."""
        return self.meta.get("strands", "forward")

    def configure(self, runtime: Runtime, bf16: bool = False) -> Detector:
        """Run-time settings of every model (see GenerativeModel.configure): the runtime's threads and device (an
        LSTM on `auto` takes CUDA when present; torch models get their threads capped); `bf16` scores an LSTM
        model under bfloat16 autocast."""
        self.threads = runtime.threads
        if self.foreground.uses_torch or getattr(self.classifier, "uses_torch", False):
            runtime.torch()
        device = runtime.torch_device() if self.foreground.uses_torch else \
            "cpu" if runtime.device == "auto" else runtime.device
        for model in (self.foreground, self.background, self.classifier):
            if model is not None:
                model.configure(threads=runtime.threads, device=device, bf16=bf16)
        return self

    def loglik(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(foreground sum, background sum, scored positions) per window; see the model contract. With
        strands "both", each sum is the mean of the window's and its reverse complement's, and the scored positions
        those of the window as given."""
        if self.strands == "forward":
            return self._loglik_as_given(codes, lengths)
        n = len(codes)
        both = np.concatenate([codes, reverse_complement_padded(codes, lengths)])
        fg_sum, bg_sum, n_scored = self._loglik_as_given(both, np.concatenate([lengths, lengths]))
        return (fg_sum[:n] + fg_sum[n:]) / 2, (bg_sum[:n] + bg_sum[n:]) / 2, n_scored[:n]

    def binned_loglik(self, codes: np.ndarray, lengths: np.ndarray, skip: np.ndarray,
                      bin_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(foreground sums, background sums, scored positions) per bin of `bin_size` positions along each row
        (see GenerativeModel.binned_loglik); with strands "both", each position's log-likelihoods are the mean of
        its base's on the window and on its reverse complement (rows then take no context-only prefix)."""
        pair = type(self.foreground).pair_binned_loglik
        if self.strands == "forward":
            (fg, n_scored), (bg, _) = pair(self.foreground, self.background, codes, lengths, skip, bin_size)
            return fg, bg, n_scored
        if np.any(skip):
            raise ValueError("strands 'both' scores rows without a context-only prefix")
        zero = np.zeros(len(codes), dtype=np.int64)
        (fg, n_scored), (bg, _) = pair(self.foreground, self.background, codes, lengths, zero, 1)
        rc = reverse_complement_padded(codes, lengths)
        (fg_rc, _), (bg_rc, _) = pair(self.foreground, self.background, rc, lengths, zero, 1)
        back = np.asarray(lengths)[:, None] - 1 - np.arange(codes.shape[1])  # rc position of each position
        inside = back >= 0
        picked = np.where(inside, back, 0)
        fg = (fg + np.where(inside, np.take_along_axis(fg_rc, picked, axis=1), 0.0)) / 2
        bg = (bg + np.where(inside, np.take_along_axis(bg_rc, picked, axis=1), 0.0)) / 2
        scored = n_scored > 0
        fg_bins, n_bins = bin_positions(fg, scored, zero, bin_size)
        bg_bins, _ = bin_positions(bg, scored, zero, bin_size)
        return fg_bins, bg_bins, n_bins

    def _loglik_as_given(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        (fg_sum, n_scored), (bg_sum, _) = type(self.foreground).pair_loglik(self.foreground, self.background,
                                                                            codes, lengths)
        return fg_sum, bg_sum, n_scored

    def llr(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Per-base mean log-likelihood ratio of each window (the paper's LLR); NaN where nothing is scored."""
        fg_sum, bg_sum, n_scored = self.loglik(codes, lengths)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (fg_sum - bg_sum) / n_scored

    # -- the model file ---------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the model file atomically (a previous file at `path` survives any failure)."""
        container.write(path, "gooddetect", *self._serialisable())

    def _serialisable(self) -> tuple[str, dict[str, np.ndarray], tuple[str, ...]]:
        """(document, arrays, the names of the arrays to store deflated: those of parts that ask for it)."""
        tensors: dict[str, np.ndarray] = {}
        deflate: list[str] = []
        configs = {}
        parts = [*zip(ROLES, (self.foreground, self.background))]
        if self.classifier is not None:
            parts.append((CLASSIFIER, self.classifier))
        for role, model in parts:
            configs[role] = model.config_dict()
            for name, array in model.state_arrays().items():
                tensors[f"{role}.{name}"] = np.ascontiguousarray(array)
                if model.stored_deflated:
                    deflate.append(f"{role}.{name}")
        if self.support is not None:
            tensors[f"{SUPPORT}.{ARRAY}"] = self.support.bits
        document = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "gooddetect_version": self.version,
            "kind": self.kind,
            "models": configs,
            **({"classifier_kind": self.classifier.kind} if self.classifier is not None else {}),
            **({SUPPORT: self.support.config()} if self.support is not None else {}),
            **self.meta,
        }
        return json.dumps(document, sort_keys=True), tensors, tuple(deflate)

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int = 1) -> Detector:
        """Read and verify a model file; raises ModelFileError for anything but an intact, supported model. The
        checksum and the parts are computed side by side on up to `threads` threads (hashing and the compiled table
        rebuilds release the GIL); a checksum mismatch is raised before any error of a part."""
        document, tensors, verify = _read_model_file(path)

        def build(role: str):
            prefix = f"{role}."
            arrays = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            return part_class(document, role).from_state(document["models"][role], arrays, threads)

        roles = list(document["models"])
        _, *parts = run_tasks([verify, *(functools.partial(build, role) for role in roles)], threads)
        models = dict(zip(roles, parts))
        meta = {k: v for k, v in document.items() if k not in
                ("format", "format_version", "gooddetect_version", "kind", "models", "classifier_kind", SUPPORT)}
        support = SupportTable.from_state(document[SUPPORT], tensors[f"{SUPPORT}.{ARRAY}"]) \
            if SUPPORT in document else None
        return cls(models["foreground"], models["background"], meta, document["gooddetect_version"],
                   models.get(CLASSIFIER), support)


def load_detector(path: str | os.PathLike, runtime: Runtime, bf16: bool = False) -> Detector:
    """The model file at `path`, read on the runtime's threads and configured for it (see Detector.configure)."""
    return Detector.load(path, runtime.workers).configure(runtime, bf16)


def part_class(document: dict, role: str):
    """The class of one part of a model file: a generative model of the document's kind, or its classifier."""
    if role == CLASSIFIER:
        return classifier_class(document.get("classifier_kind", DEFAULT_CLASSIFIER_KIND))
    return model_class(document["kind"])


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """The verified metadata document and tensors of a model file (no model objects are built)."""
    document, tensors, verify = _read_model_file(path)
    verify()
    return document, tensors


def _read_model_file(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray], Callable[[], None]]:
    """The metadata document and tensors of a model file, and the check of their checksum (raises ModelFileError),
    still to be called. The header is checked against the configs before any tensor is read, so a lying file costs
    no memory."""
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such model file")
    try:
        stored = container.read(path)
        metadata = stored.metadata
        document = _document(metadata, path)
        _check_arrays(document, container.declared(metadata, stored.specs), path)
        tensors = container.inflate(metadata, stored.arrays)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a gooddetect model file, or truncated ({_short(exc)})") from None

    def verify() -> None:
        if container.checksum(metadata["gooddetect"], tensors) != metadata["sha256"]:
            raise ModelFileError(f"{path}: checksum mismatch: the file is corrupted or was modified")

    return document, tensors, verify


def _document(metadata: dict, path) -> dict:
    if "gooddetect" not in metadata or "sha256" not in metadata:
        raise ModelFileError(f"{path}: not a gooddetect model file (no gooddetect metadata)")
    try:
        document = json.loads(metadata["gooddetect"])
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: unreadable metadata") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a gooddetect model file")
    version = document.get("format_version")
    if not isinstance(version, int):
        raise ModelFileError(f"{path}: invalid model format version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {version} is newer than this gooddetect "
            f"({__version__}) reads (up to {FORMAT_VERSION}); upgrade gooddetect")
    if version < OLDEST_FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {version} (gooddetect 0.1) is not read by gooddetect "
                             f"{__version__}; train the model again (`gooddetect info` shows how it was trained)")
    _check_document(document, path)
    return document


def _check_document(document: dict, path) -> None:
    """Refuse metadata whose required entries are missing or of the wrong type (a file edited by hand, or
    written by a broken tool, but with a valid checksum), so that loading and scoring never fail half-way."""
    expected = {"gooddetect_version": str, "kind": str, "models": dict, "window_length": int, "min_length": int}
    for key, kind in expected.items():
        if not isinstance(document.get(key), kind):
            raise ModelFileError(f"{path}: metadata entry {key!r} is missing or not of type {kind.__name__}")
    if not 2 <= document["min_length"] <= document["window_length"] <= 1 << 20:
        raise ModelFileError(f"{path}: window settings out of range (2 <= min_length <= window_length <= 2^20)")
    classifier_kind = document.get("classifier_kind", DEFAULT_CLASSIFIER_KIND)
    if not isinstance(classifier_kind, str) or classifier_kind not in CLASSIFIERS:
        raise ModelFileError(f"{path}: metadata entry 'classifier_kind' must be one of {', '.join(CLASSIFIERS)}")
    if document.get("strands", "forward") not in STRANDS:
        raise ModelFileError(f"{path}: metadata entry 'strands' must be one of {', '.join(STRANDS)}")
    models = document["models"]
    if not all(isinstance(models.get(role), dict) for role in ROLES) or not set(models) <= {*ROLES, CLASSIFIER}:
        raise ModelFileError(f"{path}: metadata must hold the foreground and background configs (and at most a "
                             "classifier's)")
    threshold = document.get("threshold")
    calibrated_value = threshold.get("value") if isinstance(threshold, dict) else None
    if threshold is not None and not isinstance(calibrated_value, (int, float)):
        raise ModelFileError(f"{path}: metadata entry 'threshold' has no numeric value")


def _check_arrays(document: dict, stored: dict[str, tuple[tuple[int, ...], str]], path) -> None:
    """Every stored array must be exactly one the configs call for, with its shape and dtype."""
    expected: dict[str, ArraySpec] = {}
    for role, config in document["models"].items():
        try:
            specs = part_class(document, role).expected_arrays(config)
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {role} model: {exc}") from None
        expected.update({f"{role}.{name}": spec for name, spec in specs.items()})
    if SUPPORT in document:
        words = document[SUPPORT].get("words") if isinstance(document[SUPPORT], dict) else None
        if not isinstance(words, int) or words < 1:
            raise ModelFileError(f"{path}: metadata entry 'support' has no filter size")
        expected[f"{SUPPORT}.{ARRAY}"] = ((words,), "uint64")
    if set(stored) != set(expected):
        missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
        raise ModelFileError(f"{path}: arrays do not match the model configs (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    for name, (shape, dtype) in expected.items():
        stored_shape, stored_dtype = stored[name]
        fits = len(stored_shape) == len(shape) and all(e is None or e == s for e, s in zip(shape, stored_shape))
        allowed = [container.SAFETENSORS_DTYPES[d] for d in ((dtype,) if isinstance(dtype, str) else dtype)]
        if not fits or stored_dtype not in allowed:
            wanted = ["any" if e is None else e for e in shape]
            raise ModelFileError(f"{path}: array {name} is {stored_dtype}{list(stored_shape)}, the config "
                                 f"calls for {'/'.join(allowed)}{wanted}")


def looks_like_model_file(path: str) -> bool:
    """True when `path` is a regular file starting like a safetensors file (8-byte header length, then '{')."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__
