"""The compiled TSV text: every number byte for byte as Python's printf-style formatting writes it (ties to even,
signed zeros, values beyond the exact range), NaN as NA, cells joined into rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gooddetect import tsv


def cells(column: tsv.Column) -> list[str]:
    starts = np.concatenate([[0], column.ends[:-1]]).astype(int)
    return [column.text[a:b].tobytes().decode() for a, b in zip(starts, column.ends)]


def printf(values, digits: int) -> list[str]:
    return [tsv.NA if math.isnan(v) else f"%.{digits}f" % v for v in values]


@given(st.lists(st.floats(-9e6, 9e6) | st.just(math.nan), max_size=50), st.integers(0, tsv.MAX_DIGITS))
def test_fixed_matches_printf(values, digits):
    """The compiled path: every magnitude below 2^53 / 10^digits."""
    assert cells(tsv.fixed_column(np.array(values, dtype=np.float64), digits)) == printf(values, digits)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50), st.integers(0, tsv.MAX_DIGITS))
def test_fixed_matches_printf_on_any_double(values, digits):
    assert cells(tsv.fixed_column(np.array(values, dtype=np.float64), digits)) == printf(values, digits)


@given(st.lists(st.tuples(st.integers(-10**6, 10**6), st.integers(0, 40)), min_size=1, max_size=50),
       st.integers(0, tsv.MAX_DIGITS))
def test_fixed_rounds_exact_ties_to_even_like_printf(pairs, digits):
    """Dyadic values k / 2^m include exact halfway cases (0.0625 to 3 digits: 0.062), and their neighbours one
    ulp away decide the other way: the cases a rounded product would get wrong."""
    exact = np.array([k / 2.0**m for k, m in pairs])
    values = np.concatenate([exact, np.nextafter(exact, np.inf), np.nextafter(exact, -np.inf)])
    assert cells(tsv.fixed_column(values, digits)) == printf(values.tolist(), digits)


def test_fixed_by_hand():
    values = np.array([0.0625, 0.1875, -0.0, -1e-9, 2.5, np.nan, -1.294461234, 1e300, -np.inf])
    assert cells(tsv.fixed_column(values, 3)) == ["0.062", "0.188", "-0.000", "-0.000", "2.500", "NA", "-1.294",
                                                  "%.3f" % 1e300, "-inf"]
    assert cells(tsv.fixed_column(np.array([0.5, 1.5, 2.5]), 0)) == ["0", "2", "2"]
    with pytest.raises(ValueError):
        tsv.fixed_column(np.zeros(1), tsv.MAX_DIGITS + 1)


@given(st.lists(st.integers(-2**63, 2**63 - 1), max_size=50))
def test_int_column_is_decimal(values):
    assert cells(tsv.int_column(np.array(values, dtype=np.int64))) == [str(v) for v in values]


@given(st.lists(st.text(st.characters(blacklist_characters="\t\n\r", blacklist_categories=("Cs",))), max_size=20))
def test_text_column_keeps_any_string(strings):
    assert cells(tsv.text_column(strings)) == strings


@given(st.lists(st.integers(0, 4), max_size=20), st.data())
def test_grouped_joins_two_or_more_cells_and_writes_na_otherwise(sizes, data):
    values = data.draw(st.lists(st.floats(-1e6, 1e6), min_size=sum(sizes), max_size=sum(sizes)))
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    text = printf(values, 6)
    want = [",".join(text[a:b]) if b - a > 1 else tsv.NA for a, b in zip(bounds[:-1], bounds[1:])]
    assert cells(tsv.grouped(tsv.fixed_column(np.array(values), 6), bounds)) == want


def test_rows_join_cells_with_tabs_and_newlines():
    columns = [tsv.text_column(["r1", "réad2"]), tsv.int_column(np.array([150, 7])),
               tsv.fixed_column(np.array([np.nan, -0.25]), 2), tsv.constant_column("NA", 2)]
    assert tsv.rows(columns) == "r1\t150\tNA\tNA\nréad2\t7\t-0.25\tNA\n"
    assert tsv.rows([tsv.text_column([])]) == ""
    with pytest.raises(ValueError):
        tsv.rows([tsv.text_column(["a"]), tsv.int_column(np.array([1, 2]))])


@given(st.lists(st.integers(0, 3), max_size=50), st.lists(st.text(max_size=6).filter(lambda t: "\t" not in t and
                                                                                          "\n" not in t),
                                                           min_size=4, max_size=4))
def test_choice_column_equals_the_text_column_of_the_chosen_cells(index, cells):
    chosen = tsv.choice_column(np.array(index, dtype=np.int64), cells)
    expected = tsv.text_column([cells[i] for i in index])
    assert chosen.text.tobytes() == expected.text.tobytes()
    np.testing.assert_array_equal(chosen.ends, expected.ends)
