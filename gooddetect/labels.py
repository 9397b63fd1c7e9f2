"""Per-read label tables (TSV files of read_id<TAB>value, optionally gzip-compressed, with an optional header), and
the classes of training reads (ClassLabels)."""

from __future__ import annotations

import gzip
import os

import numpy as np

from .errors import InputError, UsageError
from .seqio import SEQUENCE_SUFFIXES, display_name
from .windows import Windows


def read_id_table(path: str, column: str, allowed: tuple[str, ...] | None = None) -> dict[str, str]:
    """read_id → value of `column`: the named column of a header line starting with `read_id`, else the second.
    Blank lines are skipped; an empty or (with `allowed`) unexpected value is an error naming the line."""
    values: dict[str, str] = {}
    index = 1
    expected = f"read_id<TAB>{column}" + (f" with {column} {' or '.join(map(repr, allowed))}" if allowed else "")
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rt") as handle:
            for line_no, line in enumerate(handle, start=1):
                fields = line.rstrip("\r\n").split("\t")
                if line_no == 1 and fields[0] == "read_id":
                    index = fields.index(column) if column in fields else 1
                    continue
                if not line.strip():
                    continue
                if len(fields) <= index or not fields[index] or (allowed and fields[index] not in allowed):
                    raise InputError(f"{path}: line {line_no}: expected {expected}")
                values[fields[0]] = fields[index]
    except OSError as exc:
        raise InputError(f"{path}: cannot read {column}s ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: not a text table ({exc})") from None
    return values


def read_labels(path: str) -> dict[str, bool]:
    """read_id → True for OOD, from a TSV with columns read_id and label (`in`/`ood`)."""
    return {read_id: label == "ood" for read_id, label in read_id_table(path, "label", ("in", "ood")).items()}


def read_classes(path: str) -> dict[str, str]:
    """read_id → class from a TSV (read_id<TAB>class, or a header with `read_id` and `class` columns)."""
    classes = read_id_table(path, "class")
    if not classes:
        raise InputError(f"{path}: no classes")
    return classes


class ClassLabels:
    """The class of every training read: from a TSV (read_id, class; a header naming a `class` column allowed), from
    the input file each read comes from, or from each read's header (`class=NAME`, as TFRecord inputs have it).
    Checked once the inputs are read: every read labeled, every label used, every class with windows, two classes
    or more."""

    def __init__(self, inputs: list[str], path: str | None = None, per_file: bool = False, per_record: bool = False):
        if sum(map(bool, (path, per_file, per_record))) > 1:
            raise UsageError("give one of --classes, --class-per-file, --record-classes")
        self.path, self.per_file, self.per_record = path, per_file, per_record
        self.source = path or ("--class-per-file" if per_file else "--record-classes")
        if per_file:
            self.file_class = [SEQUENCE_SUFFIXES.sub("", os.path.basename(display_name(p))) for p in inputs]
            self.names = sorted(set(self.file_class))
        elif path:
            self.class_of = read_classes(path)
            self.names = sorted(set(self.class_of.values()))
        else:
            self.names = []
        self.index = {name: i for i, name in enumerate(self.names)}
        self.seen: set[str] = set()
        self.unlabeled: list[str] = []

    def __call__(self, file_index: int, headers: list[str]) -> np.ndarray:
        if self.per_file:
            return np.full(len(headers), self.index[self.file_class[file_index]], dtype=np.int64)
        ids = [h.split(None, 1)[0] for h in headers]
        if self.per_record:
            names = [next((w[6:] for w in h.split()[1:] if w.startswith("class=")), None) for h in headers]
            for name in filter(None, names):
                self.index.setdefault(name, len(self.index))
        else:
            self.seen.update(ids)
            names = [self.class_of.get(i) for i in ids]
        labels = np.array([self.index.get(name, -1) if name else -1 for name in names], dtype=np.int64)
        if (labels < 0).any():
            self.unlabeled += [i for i, label in zip(ids, labels.tolist()) if label < 0]
        return labels

    def check(self, windows: Windows) -> Windows:
        """The windows, their labels renumbered by sorted class name; raises for the problems listed above."""
        if self.unlabeled:
            raise InputError(f"{self.source}: {len(self.unlabeled)} training reads have no class (first: "
                             f"{self.unlabeled[0]})")
        if self.path:
            unused = [i for i in self.class_of if i not in self.seen]
            if unused:
                raise InputError(f"{self.source}: names {len(unused)} reads that are not in the inputs (first: "
                                 f"{unused[0]})")
        if self.per_record:  # classes met while reading: number them by name
            self.names = sorted(self.index)
            order = np.array([self.names.index(name) for name in self.index], dtype=np.int64)
            windows = Windows(windows.codes, windows.lengths, order[windows.labels])
        if len(self.names) < 2:
            raise InputError(f"{self.source}: a classifier needs two classes or more; found {len(self.names)}")
        per_class = np.bincount(windows.labels, minlength=len(self.names))
        empty = [name for name, n in zip(self.names, per_class.tolist()) if n == 0]
        if empty:
            raise InputError(f"{self.source}: class {empty[0]} has no training window")
        return windows
