"""The results writer spells failed/unknown lists once per distinct bit mask."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.database.engine import _MaskText
from eligibility.database.outcomes import UNITS_PER_WORD, unit_shift, unit_word

EVEN = sum(1 << unit_shift(i) for i in range(UNITS_PER_WORD))  # every unit of a word set

IDS = tuple(f"U{i}" for i in range(3 * UNITS_PER_WORD))  # three mask words


def _spelled(words: list[int]) -> str:
    return ";".join(u for i, u in enumerate(IDS) if words[unit_word(i)] >> unit_shift(i) & 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.sampled_from([0, 1, 5, 1 << 60, EVEN, 4097])] * 3), max_size=40))
def test_every_row_spelled_as_its_own_mask(rows):
    cols = [np.array([r[w] for r in rows], np.int64) for w in range(3)]
    got = _MaskText(IDS)(cols).to_pylist()
    assert got == [_spelled(list(r)) for r in rows]


def test_masks_differing_in_one_word_only_are_told_apart():
    # same first word, different second word; and the reverse: a key built from one word alone fails
    cols = [np.array([1, 1, 4, 4], np.int64), np.array([1, 4, 1, 4], np.int64), np.zeros(4, np.int64)]
    assert _MaskText(IDS)(cols).to_pylist() == ["U0;U31", "U0;U32", "U1;U31", "U1;U32"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(*[st.sampled_from([0, 1, 5, 1 << 60, EVEN, 4097])] * 3), max_size=40))
def test_masks_sharing_a_hash_are_spelled_word_by_word(rows):
    """Every mask hashed alike (the mixing constants zeroed): the check finds the clash and
    the exact word-by-word numbering spells each row as its own mask."""
    from unittest import mock

    from eligibility.database import engine

    cols = [np.array([r[w] for r in rows], np.int64) for w in range(3)]
    with mock.patch.object(engine, "MIX64", tuple(np.uint64(0) for _ in engine.MIX64)):
        got = _MaskText(IDS)(cols).to_pylist()
    assert got == [_spelled(list(r)) for r in rows]
