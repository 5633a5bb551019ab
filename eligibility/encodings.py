"""Which text encoding a CSV file is in: decided by a strict rule, never guessed silently.

- UTF-8 (with or without BOM): read as is. A UTF-8 file with a few bytes that are
  not UTF-8 is refused, naming the first such line (a damaged export, not an encoding).
- UTF-16 with a byte-order mark: read, and said so (info).
- GBK/GB18030 (the contract's Chinese hospital exports): only when the file decodes
  strictly and its non-ASCII text is plausibly Chinese: most characters are GB2312
  double-byte characters (both bytes 0xA1-0xFE). Latin-1 text decodes as GB18030
  too (`MÜLLER` → `M躄LER`), but its letter pairs fall outside that region.
  A file charset-normalizer reads as Big5, Shift-JIS or EUC-KR is refused, naming it.
- Otherwise Windows-1252 (Latin-1 where cp1252 has holes), with a warning the user
  sees on standard error and in the report, naming an example line.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# Non-ASCII characters that must be GB2312 double-byte characters for a file to be
# read as Chinese (a real GBK export is ~100 %; Latin-1 text read as GB18030 ~0 %).
GB_PLAUSIBLE_SHARE = 0.5
# A file whose non-ASCII bytes are nearly all valid UTF-8 is a UTF-8 file with damage.
UTF8_DAMAGED_SHARE = 0.9
_SAMPLE_CHARS = 20_000  # non-ASCII characters looked at for plausibility

_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_NON_ASCII_TEXT = re.compile(r"[^\x00-\x7f]+")
_NON_ASCII_BYTES = re.compile(rb"[\x80-\xff]")
_OTHER_CJK = {
    "big5": "Big5 (traditional Chinese)",
    "cp950": "Big5 (traditional Chinese)",
    "big5hkscs": "Big5-HKSCS (traditional Chinese)",
    "shift_jis": "Shift-JIS (Japanese)",
    "cp932": "Shift-JIS (Japanese)",
    "euc_jp": "EUC-JP (Japanese)",
    "euc_kr": "EUC-KR (Korean)",
    "cp949": "EUC-KR (Korean)",
    "johab": "Johab (Korean)",
}

RESAVE = "save it as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8)"


class EncodingError(ValueError):
    """The file's encoding cannot be used; str(e) is a one-line message without the file name."""


@dataclass(frozen=True)
class Decoded:
    text: str | None  # the decoded text; None for UTF-8, whose bytes are read as they are
    encoding: str  # "utf-8", "utf-16", "gb18030", "cp1252", "latin-1"
    note: str | None  # what to tell the user (None for UTF-8)
    warn: bool  # True when the user must check the result (legacy Western encodings)
    example_line: int | None = None
    example: str | None = None
    utf8: bytes | None = None  # UTF-8 files: the file's bytes (valid UTF-8 from utf8_offset on)
    utf8_offset: int = 0  # 3 after a byte-order mark

    def full_text(self) -> str:
        """The whole text (decoded from the UTF-8 bytes on first need)."""
        if self.text is not None:
            return self.text
        assert self.utf8 is not None
        return str(memoryview(self.utf8)[self.utf8_offset:], "utf-8")


def _is_utf8(data: bytes, offset: int) -> bool:
    """Whether data[offset:] is valid UTF-8, checked by Arrow without building a str."""
    import numpy as np
    import pyarrow as pa

    bounds = pa.py_buffer(np.array([offset, len(data)], dtype=np.int64))
    text = pa.Array.from_buffers(pa.large_string(), 1, [None, bounds, pa.py_buffer(data)])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _gb2312_share(text: str) -> float:
    """Share of the (sampled) non-ASCII characters that are GB2312 double-byte characters."""
    chars = "".join(_NON_ASCII_TEXT.findall(text[: _SAMPLE_CHARS * 50]))[:_SAMPLE_CHARS]
    if not chars:
        return 0.0
    good = 0
    for ch in chars:
        b = ch.encode("gb18030")
        good += len(b) == 2 and b[0] >= 0xA1 and b[1] >= 0xA1
    return good / len(chars)


def _other_cjk(data: bytes) -> str | None:
    """charset-normalizer's reading of the non-ASCII lines, if it is a non-GB CJK encoding."""
    from charset_normalizer import from_bytes

    lines = [ln for ln in data.splitlines()[:5000] if _NON_ASCII_BYTES.search(ln)][:200]
    best = from_bytes(b"\n".join(lines)).best() if lines else None
    if best is None:
        return None
    return _OTHER_CJK.get(best.encoding)


def _utf8_share(data: bytes) -> float:
    """Share of the non-ASCII bytes that form valid UTF-8 sequences."""
    high = len(_NON_ASCII_BYTES.findall(data))
    covered = sum(len(m) for m in _UTF8_MULTIBYTE.findall(data))
    return covered / high if high else 0.0


def _example(data: bytes) -> tuple[int, str]:
    m = _NON_ASCII_BYTES.search(data)
    assert m is not None
    start = data.rfind(b"\n", 0, m.start()) + 1
    end = data.find(b"\n", m.start())
    return _line_of(data, m.start()), data[start : end if end >= 0 else len(data)].decode("cp1252", "replace")


def decode(data: bytes) -> Decoded:
    if data.startswith(codecs.BOM_UTF32_LE) or data.startswith(codecs.BOM_UTF32_BE):
        raise EncodingError(f"UTF-32 text is not supported; {RESAVE}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return Decoded(data.decode("utf-16"), "utf-16", "read as UTF-16 text (byte-order mark)", False)
        except UnicodeDecodeError as e:
            raise EncodingError(
                f"UTF-16 text (byte-order mark) damaged at byte {e.start:,}; {RESAVE}"
            ) from None
    offset = 3 if data.startswith(codecs.BOM_UTF8) else 0
    head = data[offset:offset + 4096]
    if head and head.count(0) * 4 >= len(head):
        raise EncodingError(f"looks like UTF-16 text without a byte-order mark; {RESAVE}")
    if _is_utf8(data, offset):  # the common case: no copy of the file, no str of it
        return Decoded(None, "utf-8", None, False, utf8=data, utf8_offset=offset)
    data = data[offset:]
    try:
        data.decode("utf-8")
        raise AssertionError("Arrow and Python disagree on UTF-8")  # pragma: no cover
    except UnicodeDecodeError as e:
        first_bad = e.start
    try:
        gb = data.decode("gb18030")
    except UnicodeDecodeError:
        gb = None
    if gb is not None and _gb2312_share(gb) >= GB_PLAUSIBLE_SHARE:
        other = _other_cjk(data)
        if other:
            raise EncodingError(f"looks like {other} text, not UTF-8 or GBK/GB18030; {RESAVE}")
        return Decoded(gb, "gb18030", "file is not UTF-8; read as Chinese GBK/GB18030 text", False)
    if _utf8_share(data) >= UTF8_DAMAGED_SHARE:
        line = _line_of(data, first_bad)
        raise EncodingError(
            f"line {line} is not valid UTF-8 (byte 0x{data[first_bad]:02X}) although the rest of the "
            "file is UTF-8; correct that line or re-save the file as UTF-8"
        )
    other = _other_cjk(data)
    if other:
        raise EncodingError(f"looks like {other} text, not UTF-8 or GBK/GB18030; {RESAVE}")
    try:
        text, enc, label = data.decode("cp1252"), "cp1252", "Windows-1252 (Western European)"
    except UnicodeDecodeError:
        text, enc, label = data.decode("latin-1"), "latin-1", "Latin-1 (ISO-8859-1)"
    line, example = _example(data)
    return Decoded(
        text, enc,
        f"file is not UTF-8; read as {label} text: check accented letters (first on line {line}); "
        f"to be sure, {RESAVE}",
        True, line, example,
    )
