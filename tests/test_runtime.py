"""runtime's thread helpers: the reading → computing → consuming pipeline keeps the order, hands each result over
as soon as it is ready (even while the next input is awaited), raises an error at its place, and stops its reader
when the consumer leaves; run_tasks runs every task, returns their results in order and raises the first
error."""

from __future__ import annotations

import threading

import pytest

from gooddetect.runtime import pipelined, run_tasks


def test_pipelined_keeps_the_order_of_any_item_count():
    for n in (0, 1, 2, 3, 50):
        assert list(pipelined(lambda x: x * x, range(n), depth=2)) == [x * x for x in range(n)]


def test_two_workers_compute_two_items_at_once_and_keep_the_order():
    """With two workers the second item is computed while the first still is (the first waits until the second
    has started, which one worker would never let happen), and the results still come in input order."""
    second_started = threading.Event()

    def compute(x: int) -> int:
        if x == 0:
            assert second_started.wait(timeout=30), "the second item was not computed beside the first"
        elif x == 1:
            second_started.set()
        return x * 10

    assert list(pipelined(compute, range(8), depth=2, workers=2)) == [x * 10 for x in range(8)]


def test_a_result_is_handed_over_while_the_next_item_is_awaited():
    """A slow pipe: the second item only comes once the consumer has the first result."""
    first_consumed = threading.Event()

    def items():
        yield 1
        assert first_consumed.wait(timeout=30), "the first result was held back until the second item came"
        yield 2

    results = pipelined(lambda x: -x, items(), depth=2)
    assert next(results) == -1
    first_consumed.set()
    assert list(results) == [-2]


def test_errors_are_raised_at_their_place():
    def compute(x):
        if x == 3:
            raise ValueError("bad item 3")
        return x

    def items():
        yield from range(5)
        raise OSError("unreadable after item 4")

    got = []
    with pytest.raises(ValueError, match="bad item 3"):
        for value in pipelined(compute, range(6), depth=2):
            got.append(value)
    assert got == [0, 1, 2]
    got = []
    with pytest.raises(OSError, match="unreadable after item 4"):
        for value in pipelined(lambda x: x, items(), depth=2):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]


def test_leaving_early_stops_and_closes_the_reader():
    closed = threading.Event()
    drawn = []

    def items():
        try:
            for i in range(10**6):
                drawn.append(i)
                yield i
        finally:
            closed.set()

    results = pipelined(lambda x: x, items(), depth=2)
    assert next(results) == 0
    results.close()
    assert closed.wait(timeout=30)
    assert len(drawn) <= 5  # the item in hand, the queue's two and the one being computed


def test_run_tasks_runs_every_task_returns_results_in_order_and_raises_the_first_error():
    for threads in (1, 3):
        done = []
        run_tasks([lambda i=i: done.append(i) for i in range(7)], threads)
        assert sorted(done) == list(range(7))
        assert run_tasks([lambda i=i: i * i for i in range(7)], threads) == [i * i for i in range(7)]

        def fail():
            raise RuntimeError("task failed")

        with pytest.raises(RuntimeError, match="task failed"):
            run_tasks([lambda: None, fail, lambda: None], threads)


def test_run_tasks_keeps_its_threads_and_tasks_may_run_tasks():
    """Calls share `threads` threads (no new ones per call), and tasks that run tasks of their own finish (they get
    threads of their own instead of waiting on their callers')."""
    seen = []

    def note():
        seen.append(threading.current_thread())

    for _ in range(3):
        run_tasks([note] * 6, 2)
    assert len(set(seen)) <= 2
    inner = [lambda i=i: run_tasks([lambda j=j: (i, j) for j in range(3)], 2) for i in range(4)]
    assert run_tasks(inner, 2) == [[(i, j) for j in range(3)] for i in range(4)]


def test_off_a_terminal_the_progress_bar_draws_nothing_and_needs_no_tqdm(monkeypatch, capsys):
    """A pipeline's stderr is no terminal: the bar takes tqdm's calls silently (tqdm is not imported for it)."""
    import sys

    from gooddetect.runtime import Runtime, SilentBar

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with Runtime().bar(unit="read", desc="scoring", total=3) as bar:
        assert isinstance(bar, SilentBar)
        bar.update(2)
        bar.set_postfix(loss=1.0)
    bar.close()
    assert capsys.readouterr().err == ""
