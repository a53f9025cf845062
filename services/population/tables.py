"""Reading bulk-import files (CSV or XLSX) into rows of canonical fields.

Pure on purpose: no database, no service framework, no network, so the population service
can validate and write rows however it likes, and this code is tested on plain bytes.

Files are streamed: a 200,000-row upload is never held as a list of rows. Only the header
is read before `open_table` returns; data rows are parsed as `Table.rows` is consumed.
"""

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import BinaryIO

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

# UTF-8 first (with or without BOM); GB18030 is a superset of GBK, which Excel uses when
# a Chinese Windows user saves "CSV (comma delimited)".
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
ENCODING_PROBE_CHUNK_BYTES = 1 << 20

# A cell starting with one of these is run as a formula when the report is opened in Excel.
SPREADSHEET_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    name: str
    aliases: tuple[str, ...] = ()
    required: bool = False


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; nothing is written."""

    def __init__(self, field: str, problem: str):
        # Both in args, so the exception survives pickling and RPC serialisation.
        super().__init__(field, problem)
        self.field = field
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    reason: str


@dataclass
class Table:
    """A file whose header has been accepted; `rows` yields (row number, values) lazily.

    Row numbers are those a person sees in a spreadsheet (the header is row 1 unless blank
    rows precede it). Blank rows are skipped but still counted. Iterating `rows` may raise
    ImportFileError when the file turns out to be damaged further down. Closing `rows`
    (or exhausting it) releases the workbook; the caller's stream is never closed.
    """

    columns: list[str]
    ignored: list[str]
    rows: Iterator[tuple[int, dict[str, str]]]


_NumberedCells = Iterator[tuple[int, list[str]]]


def open_table(stream: BinaryIO, filename: str, columns: Sequence[Column]) -> Table:
    """Read the header of a .csv or .xlsx upload and return its data rows as a lazy iterator.

    Raises ImportFileError when the file type, encoding or header makes the whole file
    unusable, and ValueError when `columns` itself is inconsistent (a programming error).
    """
    columns_by_key = _columns_by_header_key(columns)
    extension = _extension(filename)
    if extension == "csv":
        numbered_cells = _csv_cells(stream)
    elif extension == "xlsx":
        numbered_cells = _xlsx_cells(stream)
    else:
        shown = f"'.{extension}'" if extension else "a file without an extension"
        raise ImportFileError("file", f"cannot import {shown}; upload a .csv or .xlsx file")

    try:
        header = _first_non_blank_row(numbered_cells)
        positions, ignored = _match_header(header, columns, columns_by_key)
    except BaseException:
        numbered_cells.close()
        raise
    return Table(
        columns=[name for name, _ in positions],
        ignored=ignored,
        rows=_records(numbered_cells, positions),
    )


def error_report_csv(errors: Iterable[RowError]) -> bytes:
    """A CSV of row errors for people to open in Excel: UTF-8 with BOM so Chinese shows."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["row", "field", "reason"])
    for error in errors:
        writer.writerow([error.row, _inert_cell(error.field), _inert_cell(error.reason)])
    return text.getvalue().encode("utf-8-sig")


def _inert_cell(text: str) -> str:
    # Reasons may quote uploaded values; a leading apostrophe makes Excel show, not run, them.
    return "'" + text if text.startswith(SPREADSHEET_FORMULA_TRIGGERS) else text


def _extension(filename: str) -> str:
    name = filename.strip().replace("\\", "/").rpartition("/")[2]
    stem, dot, extension = name.rpartition(".")
    return extension.lower() if dot and stem else ""


def _header_key(text: str) -> str:
    # NFKC folds full-width letters, brackets and spaces; all whitespace goes because Chinese
    # forms pad headers for alignment ("姓　　名"); a stray BOM can survive re-saved files.
    folded = unicodedata.normalize("NFKC", text).replace("\ufeff", "").casefold()
    return "".join(folded.split())


def _columns_by_header_key(columns: Sequence[Column]) -> dict[str, Column]:
    if not columns:
        raise ValueError("at least one column is needed")
    by_key: dict[str, Column] = {}
    for column in columns:
        for text in (column.name, *column.aliases):
            key = _header_key(text)
            other = by_key.setdefault(key, column)
            if other is not column:
                raise ValueError(f"header text {text!r} fits both {other.name} and {column.name}")
    return by_key


def _describe(column: Column) -> str:
    return f"{column.name} ({column.aliases[0]})" if column.aliases else column.name


def _column_label(position: int) -> str:
    # Spreadsheet letters are what people see; openpyxl's end at 18,278 (ZZZ).
    return get_column_letter(position + 1) if position < 18_278 else str(position + 1)


def _first_non_blank_row(numbered_cells: _NumberedCells) -> list[str]:
    for _, cells in numbered_cells:
        if any(cells):
            return cells
    raise ImportFileError("file", "the file is empty")


def _match_header(
    header: list[str], columns: Sequence[Column], columns_by_key: dict[str, Column]
) -> tuple[list[tuple[str, int]], list[str]]:
    """(canonical name, cell position) of each recognised column in file order, and the
    header texts that matched no column."""
    positions_by_name: dict[str, list[int]] = {}
    ignored: list[str] = []
    for position, text in enumerate(header):
        if not text:
            continue
        column = columns_by_key.get(_header_key(text))
        if column is None:
            ignored.append(text)
        else:
            positions_by_name.setdefault(column.name, []).append(position)

    problems = []
    missing = [c for c in columns if c.required and c.name not in positions_by_name]
    if missing:
        names = ", ".join(_describe(column) for column in missing)
        problems.append(f"missing required column(s): {names}")
    for column in columns:
        repeated = positions_by_name.get(column.name, [])
        if len(repeated) > 1:
            cells = ", ".join(f"{header[p]!r} (column {_column_label(p)})" for p in repeated)
            problems.append(f"column {_describe(column)} appears more than once: {cells}")
    if not positions_by_name and not problems:
        # Otherwise every row would look blank and a wrong file would import nothing, silently.
        expected = ", ".join(_describe(column) for column in columns)
        problems.append(f"no recognised column; expected some of: {expected}")
    if problems:
        raise ImportFileError("header", "; ".join(problems))

    recognised = sorted((found[0], name) for name, found in positions_by_name.items())
    return [(name, position) for position, name in recognised], ignored


def _records(
    numbered_cells: _NumberedCells, positions: list[tuple[str, int]]
) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        for number, cells in numbered_cells:
            width = len(cells)
            record = {name: cells[p] if p < width else "" for name, p in positions}
            if any(record.values()):
                yield number, record
    finally:
        numbered_cells.close()


def _csv_cells(stream: BinaryIO) -> _NumberedCells:
    encoding = _csv_encoding(stream)
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        # Numbered by record, not by physical line: a quoted cell holding a line break is
        # still one row when the file is opened in a spreadsheet.
        records = enumerate(csv.reader(text), start=1)
        number = 0
        while True:
            try:
                number, record = next(records)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFileError("file", f"row {number + 1} is not valid CSV: {exc}") from exc
            yield number, [cell.strip() for cell in record]
    finally:
        # Detach so that dropping the wrapper does not close the caller's stream.
        if not text.closed:
            text.detach()


def _csv_encoding(stream: BinaryIO) -> str:
    """The first encoding that decodes the whole stream, read in bounded chunks."""
    for encoding in CSV_ENCODINGS:
        stream.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while chunk := stream.read(ENCODING_PROBE_CHUNK_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ImportFileError(
        "encoding",
        "the file is neither UTF-8 nor GBK/GB18030 text; save it as 'CSV UTF-8' and upload again",
    )


def _xlsx_cells(stream: BinaryIO) -> _NumberedCells:
    stream.seek(0)
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl fails in many ways (zip, XML, missing parts) on non-xlsx
        raise ImportFileError(
            "file", "the file is not a valid .xlsx workbook; save it from Excel as .xlsx"
        ) from exc
    try:
        if not workbook.worksheets:
            raise ImportFileError("file", "the workbook has no worksheet")
        sheet = workbook.worksheets[0]
        # Some producers write a wrong <dimension> (often just "A1"); trusting it would cut
        # rows and columns off, so read whatever cells the sheet really has.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        number = 0
        while True:
            number += 1
            try:
                values = next(rows)
            except StopIteration:
                return
            except Exception as exc:  # damaged sheet XML or zip member, found while streaming
                raise ImportFileError("file", f"row {number} cannot be read: {exc}") from exc
            yield number, [_cell_text(value) for value in values]
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Phone numbers and ID numbers typed into Excel come back as floats: 13800138000.0.
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()
