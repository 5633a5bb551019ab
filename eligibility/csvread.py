"""CSV text to a frame of strings, keeping every line after the header as a row.

Fast path: pyarrow's parser, for the usual well-formed file. Anything it cannot take
(a ragged row, a trailing comma, an empty line, an unterminated quote, a header longer
than its block) goes through Python's csv module, which sees every line and lets
the reader say which line had what:

- an empty line is an (empty) row, reported by the loader like any empty row;
- a row with fewer fields than the header: the missing cells are empty, reported;
- a row with more fields: empty extra fields are ignored (info); non-empty ones are
  ignored and named (warning);
- a quote that is never closed: refused, naming the line where it opens.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

HEADER_SCAN_LINES = 20
_FIELD_LIMIT = 2**31 - 1  # csv's default (128 KiB) would refuse a long cell
# what pyarrow would skip or split differently: an empty line, a bare CR, a NUL byte
_SLOW = re.compile(r"\n[ \t]*\r?\n|\r(?!\n)|\x00")
_BLANK_LINE_BYTES = re.compile(rb"\n[ \t]*\r?\n")


def _slow_bytes(data: bytes, start: int) -> bool:
    """`_SLOW.search` on UTF-8 bytes from `start`, without a regex over the whole body
    (seconds at a million rows): NUL and CR by byte searches, blank lines by looking at the
    byte after each newline (numpy, in slices, so no body-sized temporary)."""
    if data.find(b"\x00", start) >= 0:
        return True
    # a lone CR: more CRs than CRLFs
    if data.find(b"\r", start) >= 0 and data.count(b"\r", start) != data.count(b"\r\n", start):
        return True
    body = np.frombuffer(data, np.uint8)
    for lo in range(start, len(data), _SLICE):
        part = body[lo:min(lo + _SLICE, len(data) - 1)]  # a newline's next byte is always in `body`
        nl = np.flatnonzero(part == 10) + lo
        after = body[nl + 1]
        if (after == 10).any() or ((after == 13) & (body[np.minimum(nl + 2, len(data) - 1)] == 10)
                                   & (nl + 2 < len(data))).any():
            return True
        for p in nl[(after == 32) | (after == 9)]:  # "\n", spaces or tabs, then a newline?
            if _BLANK_LINE_BYTES.match(data, int(p)):
                return True
    return False


_SLICE = 1 << 24


class CsvError(ValueError):
    """The text cannot be read as CSV; str(e) is one line without the file name."""


@dataclass(frozen=True)
class RowNote:
    row: int  # 0-based data row
    line: int  # 1-based physical line in the file
    pid: str | None
    value: str | None
    problem: str
    severity: str
    kind: str


@dataclass
class CsvRead:
    header: list[str]
    header_line: int  # 1-based line where the header starts
    table: pa.Table  # columns c0..cN-1 as strings (never null: "" = empty)
    notes: list[RowNote]
    delimiter: str

    @property
    def frame(self) -> pd.DataFrame:
        """The table as a pandas frame of Arrow strings (zero-copy), columns 0..N-1."""
        frame = self.table.to_pandas(types_mapper=pd.ArrowDtype)
        frame.columns = list(range(self.table.num_columns))
        return frame


def _head_lines(text: str, n: int) -> list[str]:
    """The first n lines, however long (a 110 kB header line is still one line)."""
    out: list[str] = []
    pos = 0
    while len(out) < n and pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end + 1
        out.append(text[pos:end])
        pos = end
    return out


def _find_header(text: str, is_header: Callable[[list], bool]) -> tuple[int, int, str, list[str]]:
    """(1-based first line, last line of the header record, delimiter, header fields)."""
    lines = _head_lines(text, HEADER_SCAN_LINES + 1)
    first = next((ln for ln in lines if ln.strip()), "")
    candidates = sorted([",", "\t", ";"], key=lambda d: -first.count(d))
    scan = "".join(lines)

    def found(rows, i):
        end = rows[i + 1][0] - 1 if i + 1 < len(rows) else len(lines)
        return rows[i][0], end, rows[i][1]

    for delim in candidates:  # the delimiter that reveals the header wins
        rows = _parse(scan, delim, strict=False)
        for i, (_line, r) in enumerate(rows[:HEADER_SCAN_LINES]):
            if is_header(r):
                return (*found(rows, i)[:2], delim, rows[i][1])
    delim = candidates[0] if first.count(candidates[0]) else ","
    rows = _parse(scan, delim, strict=False)
    for i, (_line, r) in enumerate(rows):
        if any(c.strip() for c in r):
            return (*found(rows, i)[:2], delim, r)
    raise CsvError("no header row found (the file has no text)")


def _parse(text: str, delim: str, strict: bool = True, first_line: int = 1) -> list[tuple[int, list[str]]]:
    """(1-based line where the record starts, fields) for each record; `first_line` is
    the file line of the text's first line (for messages)."""
    csv.field_size_limit(_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=strict)
    out = []
    start = 1
    try:
        for rec in reader:
            out.append((start, rec))
            start = reader.line_num + 1
    except csv.Error as e:
        if strict:
            raise CsvError(f"line {start + first_line - 1}: {_csv_problem(str(e))}") from None
    return out


def _csv_problem(msg: str) -> str:
    if "unexpected end of data" in msg or "EOF" in msg:
        return 'a quoted value opened on this line is never closed (unterminated ")'
    if "field larger" in msg:
        return "a value longer than 2 GB"
    if "NUL" in msg or "null byte" in msg:
        return "the line holds a NUL byte: this is not a text file"
    return msg.splitlines()[0][:120]


_DICT = pa.dictionary(pa.int32(), pa.string())


def _fast(body: pa.Buffer, ncols: int, delim: str, as_dict: frozenset[int] = frozenset()) -> pa.Table | None:
    import pyarrow.csv as pacsv

    cols = [f"c{i}" for i in range(ncols)]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(column_names=cols, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: _DICT if i in as_dict else pa.string() for i, c in enumerate(cols)},
                strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return table


def _utf8_head(utf8: bytes, offset: int, n: int) -> str:
    """The first n lines of valid UTF-8 bytes, decoded (a line ends at its newline byte)."""
    end = offset
    for _ in range(n):
        nl = utf8.find(b"\n", end)
        if nl < 0:
            end = len(utf8)
            break
        end = nl + 1
    return str(memoryview(utf8)[offset:end], "utf-8")


def read_text(
    text: str | Callable[[], str], is_header: Callable[[list], bool], id_label: Callable[[str], bool],
    utf8: bytes | None = None, utf8_offset: int = 0, as_dictionary: Callable[[str], bool] | None = None,
) -> CsvRead:
    """`text` is the whole decoded file, or a function giving it (called only if the slow path
    needs it) when `utf8` holds its UTF-8 bytes from `utf8_offset` on (after a byte-order mark);
    `id_label` says which header label is patient_id; the fast path reads the columns whose label
    `as_dictionary` accepts as dictionaries (each distinct value once; the Python slow path and
    other columns give plain strings)."""
    if isinstance(text, str):
        head = text
    else:
        assert utf8 is not None, "without the text, its UTF-8 bytes"
        head = _utf8_head(utf8, utf8_offset, HEADER_SCAN_LINES + 1)
    header_first, header_last, delim, header = _find_header(head, is_header)
    ncols = len(header)
    as_dict = frozenset(i for i, h in enumerate(header) if as_dictionary is not None and as_dictionary(h))
    body_start = sum(len(ln) for ln in _head_lines(head, header_last))
    table = None
    if utf8 is not None:  # no copy of the body: checked and parsed in the bytes at hand
        start = utf8_offset + len(head[:body_start].encode("utf-8"))
        if not utf8.startswith((b"\n", b"\r"), start) and not _slow_bytes(utf8, start):
            table = _fast(pa.py_buffer(utf8).slice(start), ncols, delim, as_dict)
    else:
        assert isinstance(text, str)
        body = text[body_start:]
        if not body.startswith(("\n", "\r")) and not _SLOW.search(body):
            table = _fast(pa.py_buffer(body.encode("utf-8")), ncols, delim, as_dict)
        del body
    notes: list[RowNote] = []
    if table is None:
        whole = text if isinstance(text, str) else text()
        records = _parse(whole[body_start:], delim, strict=True, first_line=header_last + 1)
        del whole
        id_col = next((i for i, h in enumerate(header) if id_label(h)), None)
        rows: list[list[str]] = []
        for i, (line0, rec) in enumerate(records):
            line = header_last + line0
            if len(rec) == ncols:
                rows.append(rec)
                continue
            pid = (rec[id_col].strip() or None) if id_col is not None and id_col < len(rec) else None
            if not rec:  # an empty line: an empty row (the loader reports it)
                rows.append([""] * ncols)
                continue
            if len(rec) < ncols:
                notes.append(RowNote(i, line, pid, None,
                                     f"line {line} has {len(rec)} field(s) but the header has {ncols}: "
                                     f"the last {ncols - len(rec)} cell(s) read as empty",
                                     "warning", "ragged_row"))
                rows.append(rec + [""] * (ncols - len(rec)))
                continue
            extra = rec[ncols:]
            if all(not x.strip() for x in extra):
                notes.append(RowNote(i, line, pid, None,
                                     f"line {line} ends with {len(extra)} empty field(s) beyond the header's "
                                     f"{ncols}; ignored", "info", "ragged_row"))
            else:
                notes.append(RowNote(i, line, pid, delim.join(extra),
                                     f"line {line} has {len(rec)} fields but the header has {ncols}: "
                                     "the extra values are ignored", "warning", "ragged_row"))
            rows.append(rec[:ncols])
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in range(ncols)]
        table = pa.table({f"c{i}": pa.array(list(c), type=pa.string()) for i, c in enumerate(cols)})
    return CsvRead(header, header_first, table, notes, delim)
