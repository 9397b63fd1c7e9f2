"""`gooddetect info`: everything a model file records."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..detector import read_model_file
from ..options import option


@dataclass(frozen=True)
class InfoOptions:
    as_json: bool = option(False, "Machine-readable JSON.", flag="--json")


def info(model: str) -> dict:
    """Everything a model file records (no weights), as plain JSON-ready data."""
    document, tensors = read_model_file(model)
    document = dict(document)
    document["parameters"] = {role: int(sum(t.size for n, t in tensors.items() if n.startswith(role + ".")))
                              for role in document["models"]}
    document["file_bytes"] = os.path.getsize(model)
    return document
