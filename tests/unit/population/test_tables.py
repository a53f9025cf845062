import codecs
import csv
import io
import pickle
import re
import tracemalloc
import zipfile
from collections import deque
from collections.abc import Iterator
from datetime import date, datetime, time

import pytest
from openpyxl import Workbook, load_workbook

from services.population.tables import (
    ENCODING_PROBE_CHUNK_BYTES,
    Column,
    ImportFileError,
    RowError,
    Table,
    error_report_csv,
    open_table,
)

COLUMNS = (
    Column("id_number", ("公民身份号码", "身份证号"), required=True),
    Column("name", ("姓名",), required=True),
    Column("phone", ("联系电话", "手机号码")),
    Column("birth_date", ("出生日期",)),
)

BIG_ROW_COUNT = 200_000


def open_csv(data: bytes, columns=COLUMNS, filename="people.csv") -> Table:
    return open_table(io.BytesIO(data), filename, columns)


def rows_of(table: Table) -> list[tuple[int, dict[str, str]]]:
    return list(table.rows)


def import_error(data: bytes, filename="people.csv", columns=COLUMNS) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        open_table(io.BytesIO(data), filename, columns)
    return caught.value


def xlsx_bytes(rows: list[list[object]], extra_sheet_rows: list[list[object]] = ()) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)  # an empty list still advances to the next row
    if extra_sheet_rows:
        other = workbook.create_sheet("second")
        for row in extra_sheet_rows:
            other.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- CSV encodings ---------------------------------------------------------------------------


def test_utf8_csv_yields_rows_keyed_by_canonical_name_in_file_order():
    data = (
        "name,id_number,phone\r\n"
        "张三,110101199001011234,13800138000\r\n"
        "李四,110101199202022345,\r\n"
    ).encode()
    table = open_csv(data)

    assert table.columns == ["name", "id_number", "phone"]
    assert table.ignored == []
    assert isinstance(table.rows, Iterator)
    assert rows_of(table) == [
        (2, {"name": "张三", "id_number": "110101199001011234", "phone": "13800138000"}),
        (3, {"name": "李四", "id_number": "110101199202022345", "phone": ""}),
    ]


def test_utf8_csv_with_bom_matches_the_first_header():
    data = codecs.BOM_UTF8 + "id_number,name\n110101199001011234,张三\n".encode()
    table = open_csv(data)

    assert table.columns == ["id_number", "name"]
    assert rows_of(table) == [(2, {"id_number": "110101199001011234", "name": "张三"})]


def test_gbk_csv_with_chinese_headers_is_read_through_aliases():
    data = "姓名,公民身份号码,手机号码,民族\r\n张三,110101199001011234,13800138000,汉族\r\n".encode(
        "gbk"
    )
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")

    table = open_csv(data)

    assert table.columns == ["name", "id_number", "phone"]
    assert table.ignored == ["民族"]
    assert rows_of(table) == [
        (2, {"name": "张三", "id_number": "110101199001011234", "phone": "13800138000"})
    ]


def test_gbk_csv_larger_than_a_probe_chunk_is_decoded_across_chunk_boundaries():
    # An odd-length prefix puts two-byte GBK characters across every power-of-two boundary.
    header = "民族x,姓名,身份证号\r\n"
    rows = [f"汉族,张{i}三,1101011990{i:08d}\r\n" for i in range(150_000)]
    data = (header + "".join(rows)).encode("gbk")
    assert len(data) > 3 * ENCODING_PROBE_CHUNK_BYTES

    table = open_csv(data)
    got = rows_of(table)

    assert table.ignored == ["民族x"]
    assert table.columns == ["name", "id_number"]
    assert len(got) == 150_000
    assert got[-1] == (150_001, {"name": "张149999三", "id_number": "110101199000149999"})


def test_utf8_character_split_across_probe_chunks_is_still_utf8():
    # Decoding each chunk on its own would fail here and fall back to GB18030, garbling text.
    long_name = "张" * 30_000
    for padding in range(3):
        data = ("id_number,name\n" + f"1,{'x' * padding}{long_name}\n" * 15).encode()
        if data[ENCODING_PROBE_CHUNK_BYTES] & 0xC0 == 0x80:
            break  # the first chunk ends inside a character
    else:
        pytest.fail("could not place a character across the chunk boundary")

    got = rows_of(open_csv(data))

    assert len(got) == 15
    assert {record["name"] for _, record in got} == {"x" * padding + long_name}


def test_encoding_is_decided_over_the_whole_file_not_its_start():
    # Megabytes of ASCII, valid in both encodings, then one GBK row at the very end.
    ascii_rows = "".join(f"{i},name{i}\r\n" for i in range(300_000)).encode("ascii")
    data = b"id_number,name\r\n" + ascii_rows + "300000,张三\r\n".encode("gbk")
    assert len(ascii_rows) > 2**20

    last = deque(open_csv(data).rows, maxlen=1).pop()

    assert last == (300_002, {"id_number": "300000", "name": "张三"})


def test_bytes_that_are_neither_utf8_nor_gb18030_are_refused():
    data = b"id_number,name\r\n\xff\xfe\xfa,1\r\n"
    for encoding in ("utf-8", "utf-8-sig", "gbk", "gb18030"):
        with pytest.raises(UnicodeDecodeError):
            data.decode(encoding)

    error = import_error(data)

    assert error.field == "encoding"
    assert "neither UTF-8 nor GBK/GB18030" in str(error)
    assert str(error).startswith("encoding: ")


# --- file type and emptiness -----------------------------------------------------------------


@pytest.mark.parametrize(
    "filename", ["people.xls", "people.txt", "people", "csv", "people.csv.zip", ".csv", "people."]
)
def test_unknown_extension_is_refused(filename):
    error = import_error(b"id_number,name\n1,a\n", filename=filename)

    assert error.field == "file"
    assert ".csv or .xlsx" in error.problem


@pytest.mark.parametrize(
    "filename", ["PEOPLE.CSV", "people.Csv", " 名单.csv ", "C:\\上传\\名单.csv"]
)
def test_csv_extension_is_case_insensitive_and_path_tolerant(filename):
    table = open_csv(b"id_number,name\n1,a\n", filename=filename)

    assert rows_of(table) == [(2, {"id_number": "1", "name": "a"})]


def test_xlsx_extension_is_case_insensitive():
    data = xlsx_bytes([["id_number", "name"], ["1", "a"]])

    table = open_table(io.BytesIO(data), "People.XLSX", COLUMNS)

    assert rows_of(table) == [(2, {"id_number": "1", "name": "a"})]


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", b" , ,\n,,,\n", codecs.BOM_UTF8])
def test_empty_csv_is_refused(data):
    error = import_error(data)

    assert str(error) == "file: the file is empty"


def test_empty_xlsx_is_refused():
    error = import_error(xlsx_bytes([]), filename="people.xlsx")

    assert str(error) == "file: the file is empty"


# --- header ----------------------------------------------------------------------------------


def test_missing_required_columns_are_named_with_their_first_alias():
    columns = (
        Column("id_number", ("公民身份号码", "身份证号"), required=True),
        Column("name", required=True),
        Column("phone"),
    )

    error = import_error("phone,备注\n13800138000,x\n".encode(), columns=columns)

    assert error.field == "header"
    assert str(error) == "header: missing required column(s): id_number (公民身份号码), name"


def test_a_column_given_twice_is_refused_naming_it():
    error = import_error("身份证号,姓名,公民身份号码\n1,张三,1\n".encode())

    assert error.field == "header"
    assert error.problem == (
        "column id_number (公民身份号码) appears more than once: "
        "'身份证号' (column A), '公民身份号码' (column C)"
    )


def test_missing_and_repeated_columns_are_reported_together():
    error = import_error("姓名,name\n张三,张三\n".encode())

    assert error.problem == (
        "missing required column(s): id_number (公民身份号码); "
        "column name (姓名) appears more than once: '姓名' (column A), 'name' (column B)"
    )


def test_a_header_with_no_recognised_column_is_refused_even_if_none_is_required():
    columns = (Column("phone", ("联系电话",)), Column("note"))

    error = import_error(b"foo,bar\n1,2\n", columns=columns)

    assert error.field == "header"
    assert error.problem == "no recognised column; expected some of: phone (联系电话), note"


def test_header_matching_ignores_case_surrounding_space_and_full_width_forms():
    full_width_phone = "\uff30\uff28\uff2f\uff2e\uff25"  # "PHONE" in full-width letters
    padded_name = "\u3000姓\u3000\u3000名\u3000"  # as Chinese forms align two-character labels
    data = f" ID_Number ,{padded_name},\ufeff{full_width_phone},出生 日期\n1,张三,2,1990-01-01\n"

    table = open_csv(data.encode())

    assert table.columns == ["id_number", "name", "phone", "birth_date"]
    assert table.ignored == []


def test_unrecognised_header_texts_are_kept_in_file_order_and_blank_ones_dropped():
    table = open_csv("备注,id_number,,name,民族,备注\n".encode())

    assert table.columns == ["id_number", "name"]
    assert table.ignored == ["备注", "民族", "备注"]
    assert rows_of(table) == []


def test_columns_whose_texts_collide_are_a_programming_error():
    columns = (Column("phone", ("电话",)), Column("mobile", ("电 话",)))

    with pytest.raises(ValueError, match="fits both phone and mobile"):
        open_csv(b"phone\n1\n", columns=columns)


def test_no_columns_is_a_programming_error():
    with pytest.raises(ValueError):
        open_csv(b"phone\n1\n", columns=())


# --- rows ------------------------------------------------------------------------------------


def test_blank_rows_are_skipped_but_counted_so_numbers_match_the_spreadsheet():
    data = (
        "\r\n"  # row 1
        ",,,\r\n"  # row 2
        "id_number,name,民族\r\n"  # row 3: header
        "1,张三,汉\r\n"  # row 4
        "\r\n"  # row 5
        " , \u3000,\r\n"  # row 6: only whitespace
        ",,回族\r\n"  # row 7: a value only in an ignored column
        "2,李四\r\n"  # row 8
    )

    assert rows_of(open_csv(data.encode())) == [
        (4, {"id_number": "1", "name": "张三"}),
        (8, {"id_number": "2", "name": "李四"}),
    ]


def test_short_rows_are_padded_and_long_rows_trimmed():
    data = b"id_number,name,phone\n1\n2,b,3,extra,more\n,c\n"

    assert rows_of(open_csv(data)) == [
        (2, {"id_number": "1", "name": "", "phone": ""}),
        (3, {"id_number": "2", "name": "b", "phone": "3"}),
        (4, {"id_number": "", "name": "c", "phone": ""}),
    ]


def test_values_are_stripped_and_quoted_cells_unquoted():
    data = b'id_number,name\n" 1 ","a, b" \n 2\t,"say ""hi"""\n'

    assert rows_of(open_csv(data)) == [
        (2, {"id_number": "1", "name": "a, b"}),
        (3, {"id_number": "2", "name": 'say "hi"'}),
    ]


def test_a_quoted_line_break_is_one_spreadsheet_row():
    data = 'id_number,name\n1,"张\n三"\n2,李四\n'.encode()

    assert rows_of(open_csv(data)) == [
        (2, {"id_number": "1", "name": "张\n三"}),
        (3, {"id_number": "2", "name": "李四"}),
    ]


def test_damaged_csv_further_down_fails_while_iterating_with_its_row():
    runaway_quote = '"' + "x" * 200_000
    data = f"id_number,name\n1,a\n2,{runaway_quote}\n".encode()
    table = open_csv(data)

    assert next(table.rows) == (2, {"id_number": "1", "name": "a"})
    with pytest.raises(ImportFileError) as caught:
        next(table.rows)
    assert caught.value.field == "file"
    assert caught.value.problem.startswith("row 3 is not valid CSV")


def test_the_callers_stream_is_left_open():
    exhausted = io.BytesIO(b"id_number,name\n1,a\n2,b\n")
    rows_of(open_table(exhausted, "a.csv", COLUMNS))
    abandoned = io.BytesIO(b"id_number,name\n1,a\n2,b\n")
    table = open_table(abandoned, "a.csv", COLUMNS)
    next(table.rows)
    table.rows.close()
    refused = io.BytesIO(b"phone\n1\n")
    with pytest.raises(ImportFileError):
        open_table(refused, "a.csv", COLUMNS)

    assert not exhausted.closed
    assert not abandoned.closed
    assert not refused.closed


# --- large files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_csv() -> bytes:
    header = "公民身份号码,姓名,联系电话,现住址\r\n"
    address = "云南省玉溪市红塔区玉兴街道聂耳路社区第三网格幸福小区"
    rows = (
        f"5304021990{i:08d},张{i},1380{i:07d},{address}{i}栋{i % 30}单元{i % 7}01室\r\n"
        for i in range(BIG_ROW_COUNT)
    )
    return (header + "".join(rows)).encode()


def test_big_csv_is_streamed_not_parsed_up_front(big_csv):
    assert len(big_csv) > 25 * 2**20
    stream = io.BytesIO(big_csv)

    table = open_table(stream, "people.csv", COLUMNS)
    first = next(table.rows)

    assert first[0] == 2
    assert first[1]["id_number"] == "530402199000000000"
    # The parser has read one buffer from the rewound stream, not the whole file.
    assert stream.tell() < len(big_csv) // 100
    remaining = sum(1 for _ in table.rows)
    assert remaining == BIG_ROW_COUNT - 1
    assert stream.tell() == len(big_csv)


def test_big_csv_encoding_check_keeps_memory_bounded(big_csv):
    stream = io.BytesIO(big_csv)

    tracemalloc.start()
    try:
        table = open_table(stream, "people.csv", COLUMNS)
        next(table.rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Decoding it whole, or listing its rows, would take several times the file's size.
    assert peak < 10 * 2**20 < len(big_csv)


def test_big_csv_rows_are_numbered_to_the_end(big_csv):
    last = deque(open_csv(big_csv).rows, maxlen=1).pop()

    assert last[0] == BIG_ROW_COUNT + 1
    assert last[1]["id_number"] == f"5304021990{BIG_ROW_COUNT - 1:08d}"


# --- XLSX ------------------------------------------------------------------------------------


def test_xlsx_values_are_normalised_to_text():
    data = xlsx_bytes(
        [
            ["公民身份号码", "姓名", "联系电话", "出生日期", "身高", "登记时间", "在册", "备注"],
            ["110101199001011234", "  张三  ", 13800138000.0, date(1990, 1, 1), 1.75,
             datetime(2024, 5, 6, 8, 30), True, None],
            ["11010119920202234X", "李四", 13900139000, datetime(1992, 2, 2), 0.125,
             time(8, 30), False, 1e20],
        ]
    )  # fmt: skip
    columns = (
        *COLUMNS,
        Column("height", ("身高",)),
        Column("registered_at", ("登记时间",)),
        Column("active", ("在册",)),
        Column("note", ("备注",)),
    )

    table = open_table(io.BytesIO(data), "people.xlsx", columns)

    assert table.columns == [
        "id_number", "name", "phone", "birth_date", "height", "registered_at", "active", "note",
    ]  # fmt: skip
    assert rows_of(table) == [
        (2, {
            "id_number": "110101199001011234", "name": "张三", "phone": "13800138000",
            "birth_date": "1990-01-01", "height": "1.75", "registered_at": "2024-05-06T08:30:00",
            "active": "TRUE", "note": "",
        }),
        (3, {
            "id_number": "11010119920202234X", "name": "李四", "phone": "13900139000",
            "birth_date": "1992-02-02", "height": "0.125",
            "registered_at": "08:30:00", "active": "FALSE", "note": "100000000000000000000",
        }),
    ]  # fmt: skip


def test_xlsx_blank_rows_are_skipped_but_counted():
    data = xlsx_bytes(
        [
            [],  # row 1
            [None, "  "],  # row 2
            ["姓名", "身份证号", "民族"],  # row 3: header
            ["张三", "1"],  # row 4
            [],  # row 5
            [None, None, "汉族"],  # row 6: a value only in an ignored column
            ["李四", 2, "回族", "beyond the header"],  # row 7
        ]
    )

    table = open_table(io.BytesIO(data), "people.xlsx", COLUMNS)

    assert table.columns == ["name", "id_number"]
    assert table.ignored == ["民族"]
    assert rows_of(table) == [
        (4, {"name": "张三", "id_number": "1"}),
        (7, {"name": "李四", "id_number": "2"}),
    ]


def test_xlsx_reads_only_the_first_worksheet():
    data = xlsx_bytes([["id_number", "name"], [1, "a"]], extra_sheet_rows=[["x"], ["y"]])

    assert rows_of(open_table(io.BytesIO(data), "people.xlsx", COLUMNS)) == [
        (2, {"id_number": "1", "name": "a"})
    ]


def test_xlsx_with_a_wrong_dimension_record_is_read_in_full():
    original = xlsx_bytes([["id_number", "name", "phone"], [1, "a", 10], [2, "b", 20]])
    data = rewrite_member(
        original,
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1"/>', xml),
    )
    misled = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    assert list(misled.iter_rows(values_only=True)) == [("id_number",)]

    table = open_table(io.BytesIO(data), "people.xlsx", COLUMNS)

    assert table.columns == ["id_number", "name", "phone"]
    assert rows_of(table) == [
        (2, {"id_number": "1", "name": "a", "phone": "10"}),
        (3, {"id_number": "2", "name": "b", "phone": "20"}),
    ]


def test_xlsx_header_errors_are_the_same_as_for_csv():
    error = import_error(xlsx_bytes([["联系电话"], [1]]), filename="people.xlsx")

    assert str(error) == "header: missing required column(s): id_number (公民身份号码), name (姓名)"


def rewrite_member(archive: bytes, member: str, change) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(output, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            target.writestr(info, change(content) if info.filename == member else content)
    return output.getvalue()


def zip_with(members: dict[str, bytes]) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return output.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"id_number,name\n1,a\n",  # a CSV renamed to .xlsx
        b"",
        b"PK\x03\x04 truncated",
        zip_with({"readme.txt": b"hello"}),  # a zip, but not a workbook
        zip_with({"[Content_Types].xml": b"<not xml"}),
    ],
    ids=["csv", "empty", "truncated-zip", "other-zip", "broken-xml"],
)
def test_a_fake_xlsx_is_refused_clearly(data):
    error = import_error(data, filename="people.xlsx")

    assert error.field == "file"
    assert "not a valid .xlsx workbook" in error.problem


# --- error report ----------------------------------------------------------------------------


def test_error_report_is_utf8_with_bom_and_round_trips_awkward_reasons():
    errors = [
        RowError(2, "id_number", "校验位错误: 110101199001011235"),
        RowError(3, "name", 'contains a comma, and "quotes"'),
        RowError(4, "phone", "two\nlines\r\nand a CR"),
        RowError(5, "birth_date", ""),
    ]

    report = error_report_csv(errors)

    assert report.startswith(codecs.BOM_UTF8)
    assert not report.startswith(codecs.BOM_UTF8 * 2)
    text = report.decode("utf-8-sig")
    assert '"contains a comma, and ""quotes"""' in text
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["row", "field", "reason"],
        ["2", "id_number", "校验位错误: 110101199001011235"],
        ["3", "name", 'contains a comma, and "quotes"'],
        ["4", "phone", "two\nlines\r\nand a CR"],
        ["5", "birth_date", ""],
    ]


def test_error_report_of_no_errors_is_just_the_header():
    assert error_report_csv([]) == codecs.BOM_UTF8 + b"row,field,reason\r\n"


def test_error_report_accepts_a_generator():
    report = error_report_csv(RowError(n, "name", "empty") for n in (2, 3))

    assert report.decode("utf-8-sig").splitlines()[1:] == ["2,name,empty", "3,name,empty"]


@pytest.mark.parametrize("reason", ['=HYPERLINK("http://x")', "+1", "-5 is negative", "@SUM(A1)"])
def test_error_report_keeps_reasons_from_running_as_excel_formulas(reason):
    text = error_report_csv([RowError(2, "note", reason)]).decode("utf-8-sig")

    assert list(csv.reader(io.StringIO(text)))[1] == ["2", "note", "'" + reason]


# --- exceptions ------------------------------------------------------------------------------


def test_import_file_error_reads_well_and_survives_pickling():
    error = ImportFileError("header", "missing required column(s): name")

    assert isinstance(error, ValueError)
    assert str(error) == "header: missing required column(s): name"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  (our own bytes)
    assert (copy.field, copy.problem, str(copy)) == (error.field, error.problem, str(error))
