"""A streaming xlsx reader for cohort sheets: bounded memory, nothing lost silently.

Reads the sheet XML row by row (never the declared `<dimension>`, which a hostile
or sloppy file can set to XFD1048576), keeps only the header's columns, and
returns every cell that was changed or could not be read as a note:

- merged ranges take the top-left value (each filled cell noted);
- a formula without a saved value is a cell error, never a silent empty;
- an error value (`#DIV/0!`) is a cell error;
- a cell outside the header's columns is noted and ignored;
- numbers stay exact (integers as Python ints); date-formatted numbers become dates.

Which sheet: the one named, else the first *visible* sheet with the patient_id/disease
header, else the first visible sheet with data; the others are listed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from posixpath import join, normpath

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
MAX_NOTES_PER_KIND = 1_000  # ignored cells outside the header's columns named one by one
FORMULA_PROBLEM = "formula without a saved value — open and save the file in Excel"


class WorkbookError(ValueError):
    """The workbook cannot be read; str(e) is a one-line message without the file name."""


@dataclass(frozen=True)
class Note:
    row: int | None  # 0-based index into `body` (None: a row above the header / the sheet)
    col: int | None  # 0-based column
    ref: str  # A1 reference in the sheet
    value: str | None
    problem: str
    severity: str
    kind: str


@dataclass
class Sheet:
    name: str
    header_row: int  # 1-based sheet row of the header
    header: list
    body: list[list]  # data rows below the header, `len(header)` cells each
    body_rows: list[int]  # 1-based sheet row of each body row
    notes: list[Note] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # "'name' (hidden)" etc.
    trailing_empty: int = 0  # row elements after the last data row with nothing in the header's columns
    chosen_because: str = ""


class _Problem:
    """A cell whose value could not be read (kept out of the data, noted)."""

    __slots__ = ("problem", "value")

    def __init__(self, problem: str, value: str | None = None):
        self.problem, self.value = problem, value


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(el: ET.Element, local: str) -> str | None:
    for k, v in el.attrib.items():
        if _local(k) == local:
            return v
    return None


_REF = re.compile(r"^([A-Z]{1,3})(\d+)$")


def col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def col_letters(idx: int) -> str:
    out = ""
    idx += 1
    while idx:
        idx, r = divmod(idx - 1, 26)
        out = chr(65 + r) + out
    return out


def ref(row: int, col: int) -> str:
    return f"{col_letters(col)}{row}"


def _is_blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


# ---------------------------------------------------------------------------
# Workbook parts
# ---------------------------------------------------------------------------


@dataclass
class _Book:
    zf: zipfile.ZipFile
    sheets: list[tuple[str, str, str]]  # (name, state, part path)
    shared: list[str]
    date_styles: frozenset[int]
    epoch: object


def _xml(zf: zipfile.ZipFile, path: str) -> ET.Element | None:
    try:
        with zf.open(path) as fh:
            return ET.parse(fh).getroot()
    except KeyError:
        return None


def _text_of(el: ET.Element) -> str:
    """Text of a shared/inline string (plain <t> or rich-text runs; phonetic runs skipped)."""
    parts = []
    for child in el:
        tag = _local(child.tag)
        if tag == "t":
            parts.append(child.text or "")
        elif tag == "r":
            parts.extend(t.text or "" for t in child if _local(t.tag) == "t")
    return "".join(parts)


def _open_book(data: bytes, budget_bytes: int | None) -> _Book:
    import io

    if data.startswith(OLE_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data or b"EncryptedPackage" in data:
            raise WorkbookError("the workbook is encrypted (password-protected); save an unprotected copy")
        raise WorkbookError("an old binary Excel (.xls) workbook, not xlsx; save it as .xlsx")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise WorkbookError("not a readable xlsx workbook (not a zip archive)") from None
    if budget_bytes is not None:
        expanded = sum(i.file_size for i in infos)
        if expanded > budget_bytes:
            raise WorkbookError(
                f"the workbook expands to {expanded / 2**20:,.0f} MB, over the limit of "
                f"{budget_bytes / 2**20:,.0f} MB"
            )
    try:
        book = _xml(zf, "xl/workbook.xml")
        if book is None:
            raise WorkbookError("not an xlsx workbook (no xl/workbook.xml)")
        rels = _xml(zf, "xl/_rels/workbook.xml.rels")
        targets = {}
        for rel in (rels if rels is not None else []):
            tgt = rel.get("Target", "")
            path = tgt.lstrip("/") if tgt.startswith("/") else normpath(join("xl", tgt))
            targets[rel.get("Id")] = path
        sheets = []
        date1904 = False
        for el in book.iter():
            tag = _local(el.tag)
            if tag == "workbookPr":
                date1904 = el.get("date1904", "0").lower() in ("1", "true")
            elif tag == "sheet":
                rid = _attr(el, "id")
                sheets.append((el.get("name", "?"), el.get("state", "visible"), targets.get(rid, "")))
        shared: list[str] = []
        sst_path = next((p for p in targets.values() if p.endswith("sharedStrings.xml")), "xl/sharedStrings.xml")
        if sst_path in zf.namelist():
            with zf.open(sst_path) as fh:
                for _ev, el in ET.iterparse(fh):
                    if _local(el.tag) == "si":
                        shared.append(_text_of(el))
                        el.clear()
        date_styles = set()
        styles = _xml(zf, "xl/styles.xml")
        if styles is not None:
            custom = {}
            for el in styles.iter():
                if _local(el.tag) == "numFmt":
                    custom[int(el.get("numFmtId", "0"))] = el.get("formatCode", "")
            xfs = next((el for el in styles.iter() if _local(el.tag) == "cellXfs"), None)
            for i, xf in enumerate(xfs if xfs is not None else []):
                fid = int(xf.get("numFmtId", "0"))
                code = custom.get(fid, BUILTIN_FORMATS.get(fid, ""))
                if code and is_date_format(code):
                    date_styles.add(i)
    except (ET.ParseError, KeyError, ValueError, zipfile.BadZipFile) as e:
        if isinstance(e, WorkbookError):
            raise
        raise WorkbookError(f"not a readable xlsx workbook ({type(e).__name__})") from None
    return _Book(zf, sheets, shared, frozenset(date_styles),
                 CALENDAR_MAC_1904 if date1904 else CALENDAR_WINDOWS_1900)


# ---------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------

_INT = re.compile(r"^[+-]?\d+$")


def _number(text: str, style: int, book: _Book):
    if style in book.date_styles:
        try:
            return from_excel(float(text), book.epoch)
        except (ValueError, OverflowError):
            return _Problem("date-formatted number outside the calendar", text)
    if _INT.match(text) and len(text) <= 4000:
        return int(text)  # exact, whatever its size (IDs beyond 2**53 stay whole)
    try:
        return float(text)
    except ValueError:
        return _Problem("not a number in a number cell", text)


def _cell(c: ET.Element, book: _Book):
    t = c.get("t", "n")
    v = f = inline = None
    for child in c:
        tag = _local(child.tag)
        if tag == "v":
            v = child.text
        elif tag == "f":
            f = child
        elif tag == "is":
            inline = child
    if t == "inlineStr":
        return _text_of(inline) if inline is not None else None
    if v is None or (v == "" and t != "str"):
        if f is not None:
            return _Problem(FORMULA_PROBLEM, "=" + (f.text or "") if f.text else None)
        return None
    if t == "s":
        try:
            return book.shared[int(v)]
        except (ValueError, IndexError):
            return _Problem("shared-string reference outside the workbook's string table", v)
    if t in ("str", "d"):
        return v
    if t == "b":
        return v.strip() in ("1", "true")
    if t == "e":
        return _Problem(f"spreadsheet error value {v}", v)
    return _number(v.strip(), int(c.get("s", "0") or 0), book)


def _rows(book: _Book, path: str, merges: list[str]) -> Iterator[tuple[int, dict[int, object]]]:
    """(1-based row number, {column index: value}) for every row element, in order."""
    try:
        fh = book.zf.open(path)
    except KeyError:
        raise WorkbookError(f"the workbook lacks its sheet part {path}") from None
    row_no = 0
    parent: ET.Element | None = None
    with fh:
        try:
            for ev, el in ET.iterparse(fh, events=("start", "end")):
                tag = _local(el.tag)
                if ev == "start":
                    if tag == "sheetData":
                        parent = el
                    continue
                if tag == "row":
                    r = el.get("r")
                    row_no = int(r) if r and r.isdigit() else row_no + 1
                    cells: dict[int, object] = {}
                    col = -1
                    for c in el:
                        if _local(c.tag) != "c":
                            continue
                        m = _REF.match(c.get("r", ""))
                        col = col_index(m.group(1)) if m else col + 1
                        cells[col] = _cell(c, book)
                    if parent is not None:
                        parent.clear()
                    yield row_no, cells
                elif tag == "mergeCell" and el.get("ref"):
                    merges.append(el.get("ref"))
        except ET.ParseError as e:
            raise WorkbookError(f"sheet XML is damaged ({e})") from None


def _values(cells: dict[int, object], width: int | None = None) -> list:
    if not cells:
        return []
    last = max(cells) + 1 if width is None else width
    out: list[object] = [None] * last
    for k, v in cells.items():
        if k < last:
            out[k] = None if isinstance(v, _Problem) else v
    return out


def _has_data(cells: dict[int, object]) -> bool:
    return any(isinstance(v, _Problem) or not _is_blank(v) for v in cells.values())


# ---------------------------------------------------------------------------
# Public
# ---------------------------------------------------------------------------


def read_sheet(
    data: bytes,
    sheet: str | int | None,
    is_header: Callable[[list], bool],
    scan_rows: int = 20,
    budget_bytes: int | None = None,
) -> Sheet:
    book = _open_book(data, budget_bytes)
    names = [s[0] for s in book.sheets]
    if not names:
        raise WorkbookError("the workbook has no sheets")

    def describe(i: int, why: str = "") -> str:
        name, state, _ = book.sheets[i]
        bits = [b for b in ((state if state != "visible" else ""), why) if b]
        return repr(name) + (f" ({', '.join(bits)})" if bits else "")

    def scan(i: int) -> tuple[bool, bool]:
        """(has the header in its first rows, has any data)."""
        seen = 0
        any_data = False
        for _r, cells in _rows(book, book.sheets[i][2], []):
            if not _has_data(cells):
                continue
            any_data = True
            if is_header(_values(cells)):
                return True, True
            seen += 1
            if seen >= scan_rows:
                break
        return False, any_data

    reason = ""
    if sheet is not None:
        if isinstance(sheet, int) and not isinstance(sheet, bool):
            if not 0 <= sheet < len(names):
                raise WorkbookError(f"no sheet number {sheet}; it has {len(names)} sheet(s)")
            idx = sheet
        else:
            match = [i for i, n in enumerate(names) if n == sheet] or [
                i for i, n in enumerate(names) if n.strip().lower() == str(sheet).strip().lower()
            ]
            if not match:
                raise WorkbookError(f"no sheet named {sheet!r}; sheets: {', '.join(map(repr, names))}")
            idx = match[0]
        reason = "the sheet asked for"
        skipped: dict[int, str] = {}
    else:
        idx = None
        first_with_data = None
        skipped = {}
        for i, (_n, state, path) in enumerate(book.sheets):
            if state != "visible":
                skipped[i] = ""
                continue
            if not path.startswith("xl/worksheets/"):
                skipped[i] = "not a worksheet"
                continue
            header, any_data = scan(i)
            if header:
                idx, reason = i, "the first visible sheet with a patient_id/disease header"
                break
            skipped[i] = "no patient_id/disease header" if any_data else "empty"
            if any_data and first_with_data is None:
                first_with_data = i
        if idx is None:
            if first_with_data is None:
                raise WorkbookError(
                    "no visible sheet has data"
                    + (f"; sheets: {', '.join(describe(i, w) for i, w in skipped.items())}" if skipped else "")
                )
            idx, reason = first_with_data, "the first visible sheet with data"
            skipped.pop(idx, None)
    assert idx is not None  # every branch above chose a sheet or raised
    out = _read(book, idx, is_header, scan_rows)
    out.chosen_because = reason
    out.others = [describe(i, skipped.get(i, "")) for i in range(len(names)) if i != idx]
    return out


def _read(book: _Book, idx: int, is_header, scan_rows: int) -> Sheet:
    name, _state, path = book.sheets[idx]
    merges: list[str] = []
    notes: list[Note] = []
    counts: dict[str, int] = {}

    def note(row, col, sheet_row, value, problem, severity, kind):
        counts[kind] = counts.get(kind, 0) + 1
        if kind != "outside_cell" or counts[kind] <= MAX_NOTES_PER_KIND:
            notes.append(Note(row, col, ref(sheet_row, col) if col is not None else "", value, problem,
                              severity, kind))

    rows = _rows(book, path, merges)
    head: list[tuple[int, dict]] = []
    header_at = None
    for r, cells in rows:
        if not _has_data(cells):
            continue
        head.append((r, cells))
        if is_header(_values(cells)):
            header_at = len(head) - 1
            break
        if len(head) >= scan_rows:
            break
    if not head:
        raise WorkbookError(f"sheet {name!r} is empty")
    if header_at is None:
        header_at = 0
    header_row, header_cells = head[header_at]
    header = _values(header_cells)
    while header and _is_blank(header[-1]):
        header.pop()
    width = len(header)
    if width == 0:
        raise WorkbookError(f"sheet {name!r}: the header row is empty")

    body: list[list] = []
    body_rows: list[int] = []
    last = header_row
    trailing = 0

    def take(r: int, cells: dict) -> None:
        nonlocal last, trailing
        inside = {k: v for k, v in cells.items() if k < width}
        for k, v in cells.items():
            if k >= width and (isinstance(v, _Problem) or not _is_blank(v)):
                shown = v.value if isinstance(v, _Problem) else v
                note(None, k, r, None if shown is None else str(shown),
                     f"cell {ref(r, k)} lies outside the header's {width} columns; ignored",
                     "warning", "outside_cell")
        if not _has_data(inside):
            trailing += 1
            return  # empty (within the header's columns): materialised only if data follows
        trailing = 0
        for gap in range(last + 1, r):
            body.append([None] * width)
            body_rows.append(gap)
        body.append(_values(inside, width))
        body_rows.append(r)
        last = r
        for k, v in inside.items():
            if isinstance(v, _Problem):
                note(len(body) - 1, k, r, v.value, v.problem, "error", "cell_error")

    for r, cells in head[header_at + 1 :]:
        take(r, cells)
    for r, cells in rows:
        if r > header_row:
            take(r, cells)

    # Merged ranges: every covered cell takes the top-left value (clipped to the data read).
    row_of = {r: i for i, r in enumerate(body_rows)}
    for rng in merges:
        m = re.match(r"^([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?$", rng)
        if not m or not m.group(3):
            continue
        c0, r0, c1, r1 = col_index(m.group(1)), int(m.group(2)), col_index(m.group(3)), int(m.group(4))
        if r0 <= header_row or c0 >= width:
            continue  # header merges and ranges outside the data are left as they are
        top = row_of.get(r0)
        value = body[top][c0] if top is not None else None
        if _is_blank(value):
            continue
        for r in range(r0, min(r1, body_rows[-1] if body_rows else r0) + 1):
            i = row_of.get(r)
            if i is None:
                continue
            for c in range(c0, min(c1, width - 1) + 1):
                if (r, c) != (r0, c0) and _is_blank(body[i][c]):
                    body[i][c] = value
                    note(i, c, r, str(value),
                         f"merged cell: filled with the value of {ref(r0, c0)} (the range {rng})",
                         "warning", "merged_cell")
    for kind, n in counts.items():
        if n > MAX_NOTES_PER_KIND:
            notes.append(Note(None, None, "", None,
                              f"{n - MAX_NOTES_PER_KIND:,} more {kind.replace('_', ' ')}s not listed one by one",
                              "warning", kind))
    return Sheet(name, header_row, header, body, body_rows, notes, trailing_empty=trailing)
