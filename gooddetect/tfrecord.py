"""The paper's data format, without TensorFlow: TFRecord files (plain or GZIP) of `tf.train.Example`s holding a
sequence and a class label.

Two layouts are read: genomics_ood's research code (`x`: the bases as space-separated integers 0-3 for A, C, G, T;
`y`: the class) and TensorFlow Datasets' `genomics_ood` (`seq`: the bases as text; `label`: the class). A record is
framed as: length (uint64, little-endian), masked CRC32C of the length, the serialized Example, masked CRC32C of it;
both checksums are verified. The Example's protocol-buffer wire format is decoded here (it has four message types),
so neither TensorFlow nor protobuf is needed; CRC32C comes from the `crc32c` package.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

import crc32c

from .errors import InputError

MASK_DELTA = 0xA282EAD8
BASES = "ACGT"
SEQUENCE_FEATURES = ("x", "seq")
LABEL_FEATURES = ("y", "label")


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC32C of `data`."""
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def looks_like_tfrecord(head: bytes) -> bool:
    """Whether a file starting with `head` (12 bytes at least) is a TFRecord: its length field's checksum holds."""
    return len(head) >= 12 and struct.unpack("<I", head[8:12])[0] == masked_crc(head[:8])


def read_examples(stream: BinaryIO, name: str) -> Iterator[tuple[str, int | None]]:
    """(sequence as text, class label or None) of every Example of a TFRecord stream, checked."""
    index = 0
    while header := stream.read(12):
        index += 1
        where = f"{name}: record {index}"
        if len(header) < 12:
            raise InputError(f"{where}: truncated (the file ends inside the record's header)")
        length, length_crc = struct.unpack("<QI", header)
        if length_crc != masked_crc(header[:8]):
            raise InputError(f"{where}: bad CRC of the record length (a damaged file)")
        data, data_crc = stream.read(length), stream.read(4)
        if len(data) < length or len(data_crc) < 4:
            raise InputError(f"{where}: truncated (the file ends inside the record)")
        if struct.unpack("<I", data_crc)[0] != masked_crc(data):
            raise InputError(f"{where}: bad CRC of the record data (a damaged file)")
        try:
            features = _features(data)
        except (ValueError, IndexError, struct.error) as exc:
            raise InputError(f"{where}: not a tf.train.Example ({exc})") from None
        yield _sequence(features, where).decode("ascii", "replace"), _label(features, where)


def _sequence(features: dict, where: str) -> bytes:
    for key in SEQUENCE_FEATURES:
        if key in features:
            kind, values = features[key]
            if kind == "int64":  # x as integers
                return _bases(values, where)
            text = b"".join(values)
            if key == "x":  # space-separated integers, as genomics_ood writes them
                try:
                    return _bases([int(v) for v in text.split()], where)
                except ValueError:
                    raise InputError(f"{where}: feature 'x' holds text that is not integers 0-3") from None
            return text
    raise InputError(f"{where}: no sequence feature ('x' or 'seq')")


def _bases(values: list[int], where: str) -> bytes:
    if any(not 0 <= v <= 3 for v in values):
        raise InputError(f"{where}: feature 'x' holds a value outside 0-3 (A, C, G, T)")
    return "".join(BASES[v] for v in values).encode()


def _label(features: dict, where: str) -> int | None:
    for key in LABEL_FEATURES:
        if key in features:
            kind, values = features[key]
            if kind != "int64" or len(values) != 1:
                raise InputError(f"{where}: feature {key!r} is not one integer")
            return values[0]
    return None


# -- protocol-buffer wire format: Example{features=1} Features{feature=1: map<string, Feature>}
#    Feature{bytes_list=1 | float_list=2 | int64_list=3}, *List{value=1 (repeated; int64 packed or not)}


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of a message: value is bytes (length-delimited) or an int."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            size, position = _varint(data, position)
            if position + size > len(data):
                raise ValueError("a field runs past the end of its message")
            value, position = data[position:position + size], position + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, position = data[position:position + width], position + width
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _features(example: bytes) -> dict[str, tuple[str, list]]:
    """name → ("bytes", [bytes...]) or ("int64", [int...]) for the features of a serialized Example."""
    features = {}
    for number, wire, message in _fields(example):
        if number != 1 or wire != 2:
            continue
        for entry_number, entry_wire, entry in _fields(message):
            if entry_number != 1 or entry_wire != 2:
                continue
            key, feature = "", b""
            for part, part_wire, value in _fields(entry):
                if part == 1 and part_wire == 2:
                    key = value.decode("utf-8", "replace")
                elif part == 2 and part_wire == 2:
                    feature = value
            features[key] = _feature(feature)
    return features


def _feature(feature: bytes) -> tuple[str, list]:
    for number, wire, values in _fields(feature):
        if number == 1 and wire == 2:
            return "bytes", [v for n, w, v in _fields(values) if n == 1 and w == 2]
        if number == 3 and wire == 2:
            ints = []
            for n, w, v in _fields(values):
                if n == 1 and w == 0:
                    ints.append(_signed(v))
                elif n == 1 and w == 2:  # packed
                    position = 0
                    while position < len(v):
                        value, position = _varint(v, position)
                        ints.append(_signed(value))
            return "int64", ints
        if number == 2 and wire == 2:
            return "float", []
    return "empty", []


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value
