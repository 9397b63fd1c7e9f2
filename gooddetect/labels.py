"""Per-read label tables: TSV files of read_id<TAB>value, optionally gzip-compressed, with an optional header."""

from __future__ import annotations

import gzip

from .errors import InputError


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
