"""The Detector: a foreground and a background model of one kind, their likelihood ratio, and the model file.

The model file is a safetensors file (tensors + JSON metadata; nothing in it is ever executed). Its metadata holds
one JSON document, `gooddetect`, with the format version, versions, both model configs, training parameters and
statistics, and the calibrated threshold; `sha256` covers that document and every tensor, so a truncated, edited or
corrupted file is refused.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import __version__
from .errors import ModelFileError, UsageError
from .runtime import atomic_output
from .windows import reverse_complement_padded

FORMAT_NAME = "gooddetect-model"
FORMAT_VERSION = 1
MODEL_KINDS = {"lstm": "gooddetect.models.lstm:LSTMModel", "kmer": "gooddetect.models.kmer:KmerModel"}
ROLES = ("foreground", "background")
STRANDS = ("forward", "both")  # a window scored as given (the paper), or the mean over it and its reverse complement


def model_class(kind: str):
    """The class implementing model kind `kind` (imported lazily: the k-mer kind needs no torch)."""
    try:
        module, name = MODEL_KINDS[kind].split(":")
    except KeyError:
        raise ModelFileError(f"unknown model kind {kind!r} (known: {', '.join(MODEL_KINDS)})") from None
    return getattr(importlib.import_module(module), name)


@dataclass
class Detector:
    """Foreground + background generative models; LLR(x) = loglik_fg(x) − loglik_bg(x), low LLR = OOD.

    `meta` holds everything else the file records: window settings, training parameters and statistics, and the
    threshold (`meta["threshold"]`, None until calibrated) on the OOD score −LLR."""

    foreground: Any
    background: Any
    meta: dict = field(default_factory=dict)

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
    def threshold(self) -> float | None:
        calibration = self.meta.get("threshold")
        return None if calibration is None else float(calibration["value"])

    @property
    def strands(self) -> str:
        """"forward" or "both" (files without the entry: "forward", the paper's scoring)."""
        return self.meta.get("strands", "forward")

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

    def _loglik_as_given(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A model kind may compute both models at once (`loglik_pair`, e.g. side by side on the CPU cores); the
        results are the same as one after the other."""
        if hasattr(self.foreground, "loglik_pair"):
            (fg_sum, n_scored), (bg_sum, _) = self.foreground.loglik_pair(self.background, codes, lengths)
        else:
            fg_sum, n_scored = self.foreground.loglik(codes, lengths)
            bg_sum, _ = self.background.loglik(codes, lengths)
        return fg_sum, bg_sum, n_scored

    def llr(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Per-base mean log-likelihood ratio of each window (the paper's LLR); NaN where nothing is scored."""
        fg_sum, bg_sum, n_scored = self.loglik(codes, lengths)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (fg_sum - bg_sum) / n_scored

    def to(self, device: str) -> "Detector":
        """Move both models to a torch device (a no-op for models without one)."""
        for model in (self.foreground, self.background):
            if hasattr(model, "to"):
                model.to(device)
        return self

    # -- the model file ---------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the model file atomically (a previous file at `path` survives any failure)."""
        from safetensors.numpy import save

        document, tensors = self._serialisable()
        blob = _canonical_header(save(tensors, metadata={"gooddetect": document,
                                                         "sha256": _checksum(document, tensors)}))
        with atomic_output(path, "wb") as handle:
            handle.write(blob)

    def _serialisable(self) -> tuple[str, dict[str, np.ndarray]]:
        tensors: dict[str, np.ndarray] = {}
        configs = {}
        for role, model in zip(ROLES, (self.foreground, self.background)):
            configs[role] = model.config_dict()
            for name, array in model.state_arrays().items():
                tensors[f"{role}.{name}"] = np.ascontiguousarray(array)
        document = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "gooddetect_version": __version__,
            "kind": self.kind,
            "models": configs,
            **self.meta,
        }
        return json.dumps(document, sort_keys=True), tensors

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Detector":
        """Read and verify a model file; raises ModelFileError for anything but an intact, supported model."""
        document, tensors = read_model_file(path)
        kind = document["kind"]
        models = []
        for role in ROLES:
            prefix = f"{role}."
            arrays = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                models.append(model_class(kind).from_state(document["models"][role], arrays))
            except ModelFileError as exc:
                raise ModelFileError(f"{path}: {role} model: {exc}") from None
            except (KeyError, ValueError, TypeError, RuntimeError) as exc:
                raise ModelFileError(f"{path}: {role} model does not match its config ({exc})") from None
        meta = {k: v for k, v in document.items()
                if k not in ("format", "format_version", "gooddetect_version", "kind", "models")}
        meta["file_gooddetect_version"] = document["gooddetect_version"]
        return cls(models[0], models[1], meta)


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """The verified metadata document and tensors of a model file (no model objects are built)."""
    from safetensors import SafetensorError, safe_open

    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a gooddetect model file, or truncated ({_short(exc)})") from None
    if "gooddetect" not in metadata or "sha256" not in metadata:
        raise ModelFileError(f"{path}: not a gooddetect model file (no gooddetect metadata)")
    if _checksum(metadata["gooddetect"], tensors) != metadata["sha256"]:
        raise ModelFileError(f"{path}: checksum mismatch: the file is corrupted or was modified")
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
    _check_document(document, path)
    return document, tensors


def _check_document(document: dict, path) -> None:
    """Refuse metadata whose required entries are missing or of the wrong type (a file edited by hand, or
    written by a broken tool, but with a valid checksum), so that loading and scoring never fail half-way."""
    expected = {"gooddetect_version": str, "kind": str, "models": dict, "window_length": int, "min_length": int}
    for key, kind in expected.items():
        if not isinstance(document.get(key), kind):
            raise ModelFileError(f"{path}: metadata entry {key!r} is missing or not of type {kind.__name__}")
    if document.get("strands", "forward") not in STRANDS:
        raise ModelFileError(f"{path}: metadata entry 'strands' must be one of {', '.join(STRANDS)}")
    if not all(isinstance(document["models"].get(role), dict) for role in ROLES):
        raise ModelFileError(f"{path}: metadata lacks the foreground and background model configs")
    threshold = document.get("threshold")
    calibrated_value = threshold.get("value") if isinstance(threshold, dict) else None
    if threshold is not None and not isinstance(calibrated_value, (int, float)):
        raise ModelFileError(f"{path}: metadata entry 'threshold' has no numeric value")


def _canonical_header(blob: bytes) -> bytes:
    """The safetensors file with its JSON header keys sorted (safetensors orders metadata arbitrarily), padded with
    spaces to the same length, so that equal models give byte-identical files."""
    size = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8:8 + size]), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if len(header) > size:
        raise AssertionError("canonical safetensors header is longer than the original")
    return blob[:8] + header.ljust(size, b" ") + blob[8 + size:]


def looks_like_model_file(path: str) -> bool:
    """True when `path` is a regular file starting like a safetensors file (8-byte header length, then '{')."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"


def _checksum(document: str, tensors: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(document.encode("utf-8"))
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        digest.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__


def check_window_length(detector: Detector, length: int | None) -> int:
    """The window length to score with: the model's own; a different explicit one is refused."""
    if length is not None and length != detector.window_length:
        raise UsageError(f"the model was trained on {detector.window_length} bp windows; "
                         f"--length {length} does not match")
    return detector.window_length
