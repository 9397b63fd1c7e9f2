"""The output layer of `score` and `screen`: the files of a run (checked before any work, then opened together,
each atomically), the sinks that write each batch of results to one of them, the per-input counts, the one BED
writer and the one MultiQC writer. What each command writes is in `outputs.score` and `outputs.screen`."""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Callable, Generic, Protocol, TypeVar

import numpy as np

from .. import tsv
from ..errors import UsageError
from ..files import atomic_output, check_distinct_outputs, check_output_paths
from ..seqio import SEQUENCE_SUFFIXES

NA = tsv.NA
MATE_TAG = re.compile(r"([._-]R?[12])$")
Batch = TypeVar("Batch")
Counts = TypeVar("Counts")


def checked_paths(*paths: str | None) -> list[str]:
    """The named files among `paths` (not None, not stdout), checked as every command checks its outputs before any
    work: no two the same file, each in an existing folder."""
    named = [path for path in paths if path not in (None, "-")]
    check_distinct_outputs(named)
    check_output_paths(*named)
    return named


class Sink(Protocol[Batch]):
    """Writes each batch of a command's results to the file it owns."""

    def write(self, batch: Batch) -> None: ...


class TextSink(Generic[Batch]):
    """A sink whose lines come from `rows(batch)`, after an optional header."""

    def __init__(self, handle: IO, rows: Callable[[Batch], str | bytes], header: str | None = None):
        self.handle, self.rows = handle, rows
        if header:
            handle.write(header)

    def write(self, batch: Batch) -> None:
        self.handle.write(self.rows(batch))


def open_sinks(stack: ExitStack, outputs: dict[str, tuple[str | None, str]],
               make: dict[str, Callable[[IO], Sink]]) -> list[Sink]:
    """A sink for every output given ({name: (path, mode)}; None: not asked for), each file opened atomically in
    `stack` (a failed run keeps none of them), built by `make[name]`, in the order of `outputs`."""
    return [make[name](stack.enter_context(atomic_output(path, mode)))
            for name, (path, mode) in outputs.items() if path is not None]


class PerInput(dict, Generic[Counts]):
    """Counts of one kind per input label, in input order; `total` their sum."""

    def __init__(self, new: Callable[[], Counts]):
        super().__init__()
        self.new = new

    def of(self, label: str) -> Counts:
        return self.setdefault(label, self.new())

    def total(self) -> Counts:
        return sum(self.values(), self.new())

    def samples(self, sample_name: str | None) -> dict[str, Counts]:
        """MultiQC's rows: the whole run under `sample_name`, else one per input, named after it."""
        return {sample_name: self.total()} if sample_name else \
            {multiqc_sample(label): counts for label, counts in self.items()}


def bed_rows(ids: list[str], starts: np.ndarray, ends: np.ndarray, names: tsv.Column, scores: np.ndarray) -> str:
    """BED lines: sequence, 0-based start, end, name, score (six decimals, NA where undefined)."""
    if not ids:
        return ""
    return tsv.rows([tsv.text_column(ids), tsv.int_column(np.asarray(starts, dtype=np.int64)),
                     tsv.int_column(np.asarray(ends, dtype=np.int64)), names, tsv.fixed_column(scores, 6)])


def multiqc_sample(label: str) -> str:
    """A MultiQC sample name from an input label: the first file's name without sequence suffixes (and, for a
    pair, without its mate tag such as _R1)."""
    first = label.split(",")[0]
    name = SEQUENCE_SUFFIXES.sub("", Path(first).name) or first
    return MATE_TAG.sub("", name) if "," in label else name


def multiqc_table(section: str, description: str, title: str, headers: dict, data: dict) -> dict:
    """MultiQC custom content: one table section `section` with its column `headers` and rows `data`."""
    return {"id": section, "section_name": section, "description": description, "plot_type": "table",
            "pconfig": {"id": f"{section}_table", "title": title, "namespace": "gooddetect"},
            "headers": headers, "data": data}


def check_multiqc_name(path: str | None) -> None:
    if path is not None and not Path(path).name.endswith("_mqc.json"):
        raise UsageError(f"--multiqc {path}: MultiQC finds custom content by name; end it in _mqc.json")


def write_multiqc(path: str, content: dict) -> None:
    check_multiqc_name(path)
    write_json(path, content)


def write_json(path: str, data: dict) -> None:
    """`data` as indented JSON with sorted keys, atomically (the summaries, reports and MultiQC content)."""
    with atomic_output(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
