"""Golden outputs: `score` and `screen` of the small inputs in tests/golden write exactly the committed files
(tests/golden/expected), byte for byte. A change meant to move bytes regenerates them with
`python tests/golden/make_golden.py` and shows the difference in review."""

from __future__ import annotations

from pathlib import Path

import pytest

from golden.make_golden import model, write_outputs

EXPECTED = Path(__file__).resolve().parent / "golden" / "expected"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("golden")
    write_outputs(model(work), work / "out")
    return work / "out"


def test_the_same_files_are_written(written):
    assert sorted(p.name for p in written.iterdir()) == sorted(p.name for p in EXPECTED.iterdir())


@pytest.mark.parametrize("name", sorted(p.name for p in EXPECTED.iterdir()))
def test_every_output_is_byte_identical(written, name):
    got, expected = (written / name).read_bytes(), (EXPECTED / name).read_bytes()
    if got != expected:
        got_lines, expected_lines = got.decode().splitlines(), expected.decode().splitlines()
        first = next((i for i, (a, b) in enumerate(zip(got_lines, expected_lines)) if a != b),
                     min(len(got_lines), len(expected_lines)))
        pytest.fail(f"{name} differs from line {first + 1}: got {got_lines[first:first + 1]}, expected "
                    f"{expected_lines[first:first + 1]} (regenerate with python tests/golden/make_golden.py if "
                    "the change is meant)")
