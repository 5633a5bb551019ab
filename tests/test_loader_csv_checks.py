"""The CSV reader's quick checks on the raw bytes decide exactly as the slower ones they replace."""

from __future__ import annotations

import codecs

from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility import csvread, encodings

# bytes that make UTF-8 invalid or nearly so: lone continuation bytes, truncated sequences,
# overlong forms, surrogates, code points past U+10FFFF
TRICKY = [b"\x80", b"\xc0\xaf", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf0\x9f\x98\x80",
          b"\xef\xbb\xbf", b"\xc3\xa9", b"\xe4\xb8\xad", b"\xff", b"a", b"\n", b"\x00"]
utf8ish = st.lists(st.one_of(st.sampled_from(TRICKY), st.binary(max_size=4)), max_size=12).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(utf8ish, st.booleans())
def test_arrow_utf8_check_agrees_with_python(body, bom):
    data = (codecs.BOM_UTF8 if bom else b"") + body
    offset = 3 if bom else 0
    try:
        body.decode("utf-8")
        python_ok = True
    except UnicodeDecodeError:
        python_ok = False
    assert encodings._is_utf8(data, offset) == python_ok


LINE_BITS = [b"a,b", b"\n", b"\r\n", b"\r", b" ", b"\t", b"\x00", b'"', b",", b"x"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LINE_BITS), max_size=12).map(b"".join), st.integers(0, 4))
def test_quick_slow_path_check_matches_the_regex(data, start):
    start = min(start, len(data))
    expected = csvread._SLOW.search(data[start:].decode("utf-8")) is not None
    assert csvread._slow_bytes(data, start) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LINE_BITS), max_size=16).map(b"".join), st.integers(0, 4), st.integers(1, 5))
def test_quick_check_in_small_slices_matches_the_regex(data, start, slice_bytes):
    """The newline scan runs in slices: a blank line or CRLF across a slice edge still counts."""
    start = min(start, len(data))
    expected = csvread._SLOW.search(data[start:].decode("utf-8")) is not None
    saved = csvread._SLICE
    csvread._SLICE = slice_bytes
    try:
        assert csvread._slow_bytes(data, start) == expected
    finally:
        csvread._SLICE = saved


def test_utf8_file_is_not_decoded_until_needed():
    data = codecs.BOM_UTF8 + b"patient_id,disease\nP1,SSc\n"
    dec = encodings.decode(data)
    assert dec.text is None and dec.utf8 is data and dec.utf8_offset == 3
    assert dec.full_text() == "patient_id,disease\nP1,SSc\n"
