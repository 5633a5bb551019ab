"""`screen_cli.prefetched`: the results writer works on one batch while the next is made."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.database.screen_cli import prefetched


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers()))
def test_every_item_comes_out_once_in_order(items):
    assert list(prefetched(items)) == items
    assert list(prefetched(iter(items))) == items


def test_the_next_item_is_made_on_another_thread_while_the_current_one_is_used():
    made_on, second_made = [], threading.Event()

    def source():
        for i in range(3):
            made_on.append(threading.get_ident())
            if i == 1:
                second_made.set()
            yield i

    it = prefetched(source())
    assert next(it) == 0
    # item 1 is made while the caller still holds item 0
    assert second_made.wait(5)
    assert list(it) == [1, 2]
    assert threading.get_ident() not in made_on


def test_an_error_of_the_source_reaches_the_caller_after_the_items_before_it():
    def source():
        yield 1
        raise ValueError("batch 2 failed")

    it = prefetched(source())
    assert next(it) == 1
    with pytest.raises(ValueError, match="batch 2 failed"):
        next(it)


def _closable():
    """A source of ten items, and the event its closing sets."""
    closed = threading.Event()

    def source():
        try:
            yield from range(10)
        finally:
            closed.set()

    return source(), closed


def test_stopping_early_closes_the_source():
    source, closed = _closable()
    it = prefetched(source)
    assert next(it) == 0
    it.close()
    assert closed.wait(5)


def test_a_caller_failing_midway_closes_the_source_too():
    source, closed = _closable()
    with pytest.raises(RuntimeError):
        for i in prefetched(source):
            if i == 2:
                raise RuntimeError("disk full")
    assert closed.wait(5)
