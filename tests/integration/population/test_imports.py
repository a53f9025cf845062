"""Bulk imports of residents (CSV/XLSX) as durable jobs, and cross-department roster
matching, against a real broker, mongod and population container."""

import base64
import csv
import io
import json
import time
from datetime import timedelta

import openpyxl
import pytest
from nameko.exceptions import RemoteError
from prometheus_client import REGISTRY

from services.population import importing
from services.population.domain.identity import resident_id_check_character
from tests.integration.population.conftest import ADMIN, OPERATOR_B
from tests.population_data import GRID_A1, GRID_A2, GRID_B1, random_resident_ids

pytestmark = pytest.mark.integration

JOB_TIMEOUT_S = 30
UNKNOWN_GRID = "530402001001009"  # well formed, never imported
HEADER = ["id_number", "name", "grid_code", "phone", "residence_type"]


# ------------------------------------------------------------------ helpers
def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode()


def csv_bytes(rows: list[list[str]], header=HEADER, encoding: str = "utf-8") -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


def wrong_check_character(number: str) -> str:
    right = resident_id_check_character(number[:17])
    return number[:17] + next(c for c in "0123456789X" if c != right)


def wait_for_job(proxy, job_id: str, finished_after: str | None = None) -> dict:
    """Poll `import_job` until it is finished or failed (and, if given, finished later
    than `finished_after`, i.e. a re-run completed)."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    job = proxy.import_job(job_id)
    while time.monotonic() < deadline:
        job = proxy.import_job(job_id)
        if job["status"] in ("finished", "failed") and job["finished_at"] != finished_after:
            return job
        time.sleep(0.2)
    pytest.fail(f"import job {job_id} did not finish within {JOB_TIMEOUT_S} s: {job}")


def run_import(proxy, data: bytes, filename: str = "residents.csv") -> dict:
    job = proxy.start_import("residents", filename, encoded(data))
    assert job["status"] == "queued"
    return wait_for_job(proxy, job["id"])


def error_rows(proxy, job_id: str) -> list[list[str]]:
    report = proxy.import_error_report(job_id)
    assert report["content_type"].startswith("text/csv")
    raw = base64.b64decode(report["content_base64"])
    assert raw.startswith(b"\xef\xbb\xbf"), "the report is UTF-8 with a BOM for Excel"
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["row", "field", "reason"]
    return rows[1:]


def counts(rows=0, created=0, updated=0, unchanged=0, failed=0) -> dict:
    return {
        "rows": rows,
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "failed": failed,
    }


def events_named(events_tap, routing_key: str, expected: int, timeout: float = 5.0) -> list:
    """Drain the tap until `expected` events of that key arrived (or the time is up),
    then once more to catch any extra ones."""
    seen: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.extend(events_tap())
        if sum(key == routing_key for key, _ in seen) >= expected:
            break
    seen.extend(events_tap())
    return [event for key, event in seen if key == routing_key]


IDS = random_resident_ids(10)
# Cells of each data row; the comments give the spreadsheet row (the header is row 1).
MIXED_ROWS = [
    [IDS[0], "张三", GRID_A1, "13812345670", "registered"],  # 2
    [IDS[1], "李四", GRID_A1, "13812345671", "floating"],  # 3
    [IDS[2], "王五", GRID_A2, "", "registered"],  # 4
    [wrong_check_character(IDS[3]), "赵六", GRID_A1, "13812345673", "registered"],  # 5
    [IDS[4], "钱七", GRID_B1, "13812345674", "registered"],  # 6
    [IDS[5], "孙八", UNKNOWN_GRID, "13812345675", "registered"],  # 7
    [IDS[6], "", GRID_A2, "13812345676", "registered"],  # 8
    [IDS[0], "张三", GRID_A1, "13812345670", "registered"],  # 9: the person of row 2
    [IDS[7], "周九", GRID_B1, "13812345677", "floating"],  # 10
]
MIXED_IMPORTED = [IDS[0], IDS[1], IDS[2], IDS[4], IDS[7]]
MIXED_ERRORS = [
    ["5", "id_number", "check character does not match"],
    ["7", "grid_code", "no such grid in your scope"],
    ["8", "name", "is required"],
    ["9", "id_number", "the same person as row 2"],
]


def left_by_a_dead_replica(population_db, clock, job_id: str, counted: dict, checkpoint: int):
    """The job as a replica that died leaves it: running, its lease run out, with the
    counts and rows of its last checkpoint."""
    population_db.import_jobs.update_one(
        {"_id": job_id},
        {
            "$set": {
                "status": "running",
                "lease_until": clock() - timedelta(minutes=1),
                "lease_owner": "a replica that died",
                "counts": counted,
                "checkpoint_rows": checkpoint,
            }
        },
    )


def resident_versions(population_db) -> dict[str, int]:
    return {doc["_id"]: doc["version"] for doc in population_db.residents.find({}, {"version": 1})}


# ------------------------------------------------------------------ CSV imports
def test_csv_import_counts_every_row_and_reports_the_bad_ones(county):
    before = {o: _imported_rows(o) for o in ("created", "failed")}
    job = run_import(county, csv_bytes(MIXED_ROWS))

    assert job["status"] == "finished"
    assert job["failure"] is None
    assert job["counts"] == counts(rows=9, created=5, failed=4)
    # /metrics: the same rows, by outcome.
    assert {o: _imported_rows(o) - before[o] for o in before} == {"created": 5, "failed": 4}
    c = job["counts"]
    assert c["rows"] == c["created"] + c["updated"] + c["unchanged"] + c["failed"]
    assert error_rows(county, job["id"]) == MIXED_ERRORS

    # Every row is either imported or reported, never both, never neither.
    reported = {int(row[0]) for row in MIXED_ERRORS}
    for row_number, cells in enumerate(MIXED_ROWS, start=2):
        found = county.find_resident(id_number=cells[0])
        if row_number in reported:
            assert row_number == 9 or found == [], f"row {row_number} was reported and stored"
        else:
            assert len(found) == 1, f"row {row_number} was neither imported nor reported"
            assert found[0]["name"] == cells[1]
            assert found[0]["grid_code"] == cells[2]
            assert found[0]["residence_type"] == cells[4]
    assert county.find_resident(id_number=IDS[2])[0]["phone"] is None
    assert county.find_resident(id_number=IDS[0])[0]["phone"] == "138****5670"


def test_a_retried_start_with_the_same_key_gets_the_first_job(county, population_db):
    """The first attempt's reply was lost (the fault suite's broker scenarios): the retry
    with the same Idempotency-Key gets the accepted job; the file is imported once."""
    data = encoded(csv_bytes(MIXED_ROWS))
    first = county.start_import("residents", "residents.csv", data, "key-1")
    again = county.start_import("residents", "residents.csv", data, "key-1")
    other = county.start_import("residents", "residents.csv", data, "key-2")
    assert again["id"] == first["id"] != other["id"]
    assert population_db.import_jobs.count_documents({"_id": first["id"]}) == 1
    assert population_db.import_files.files.count_documents({}) == 2
    assert wait_for_job(county, first["id"])["counts"] == counts(rows=9, created=5, failed=4)


def test_a_job_knows_its_total_rows_for_a_progress_bar(county):
    queued = county.start_import("residents", "residents.csv", encoded(csv_bytes(MIXED_ROWS)))
    assert queued["total_rows"] is None  # counted when the job starts
    job = wait_for_job(county, queued["id"])
    assert job["total_rows"] == len(MIXED_ROWS) == job["counts"]["rows"]


def test_reimporting_the_same_file_changes_nothing(county, population_db):
    data = csv_bytes(MIXED_ROWS)
    run_import(county, data)
    versions = resident_versions(population_db)
    history_entries = population_db.resident_history.count_documents({})

    again = run_import(county, data, filename="residents-again.csv")
    assert again["counts"] == counts(rows=9, unchanged=5, failed=4)
    assert resident_versions(population_db) == versions
    assert population_db.resident_history.count_documents({}) == history_entries
    assert error_rows(county, again["id"]) == MIXED_ERRORS


def test_a_file_with_changed_rows_reports_exactly_those_as_updated(county, population_db):
    run_import(county, csv_bytes(MIXED_ROWS))
    versions = resident_versions(population_db)

    changed = [list(row) for row in MIXED_ROWS]
    changed[0][3] = "13900001111"  # row 2: new phone
    changed[1][1] = "李四四"  # row 3: new name
    job = run_import(county, csv_bytes(changed))
    assert job["counts"] == counts(rows=9, updated=2, unchanged=3, failed=4)

    phone_changed = county.find_resident(id_number=IDS[0])[0]
    name_changed = county.find_resident(id_number=IDS[1])[0]
    assert phone_changed["phone"] == "139****1111"
    assert county.find_resident(phone="13900001111")[0]["id"] == phone_changed["id"]
    assert name_changed["name"] == "李四四"
    assert phone_changed["version"] == versions[phone_changed["id"]] + 1
    assert name_changed["version"] == versions[name_changed["id"]] + 1
    untouched = county.find_resident(id_number=IDS[2])[0]
    assert untouched["version"] == versions[untouched["id"]]

    created_entry, name_entry = county.resident_history(name_changed["id"])
    assert created_entry["changes"] == {"grid_code": {"from": None, "to": GRID_A1}}
    assert name_entry["action"] == "imported"
    assert name_entry["by"] == ADMIN.user_id
    assert name_entry["changes"] == {"name": {"from": "李四", "to": "李四四"}}

    _, phone_entry = county.resident_history(phone_changed["id"])
    assert phone_entry["action"] == "imported"
    assert phone_entry["changes"] == {"phone": {"changed": True}}
    assert "13900001111" not in json.dumps(phone_entry, ensure_ascii=False)


def test_gbk_csv_with_chinese_headers_and_labels_imports(county):
    header = ["公民身份号码", "姓名", "网格编码", "联系电话", "人口类型"]
    rows = [
        [IDS[0], "欧阳娜娜", GRID_A1, "13812345670", "户籍"],
        [IDS[1], "司马光", GRID_A2, "0877-2123456", "流动"],
        [IDS[2], "诸葛亮", GRID_B1, "", "人户分离"],
    ]
    data = csv_bytes(rows, header=header, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # really not UTF-8

    job = run_import(county, data, filename="居民名单.csv")
    assert job["counts"] == counts(rows=3, created=3)
    assert job["columns"] == ["id_number", "name", "grid_code", "phone", "residence_type"]
    expected = [
        (IDS[0], "欧阳娜娜", GRID_A1, "138****5670", "registered"),
        (IDS[1], "司马光", GRID_A2, "********3456", "floating"),
        (IDS[2], "诸葛亮", GRID_B1, None, "separated"),
    ]
    for number, name, grid, phone, residence in expected:
        [resident] = county.find_resident(id_number=number)
        assert (resident["name"], resident["grid_code"]) == (name, grid)
        assert resident["phone"] == phone
        assert resident["residence_type"] == residence


def test_xlsx_built_with_openpyxl_imports(county):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["身份证号", "姓名", "所属网格", "手机号码", "居住类型", "备注", "无关列"])
    sheet.append([IDS[0], "张三", GRID_A1, 13812345670, "户籍", "独居", "x"])
    sheet.append([IDS[1], "李四", GRID_B1, "13812345671", "floating", None, "y"])
    sheet.append([None, None, None, None, None, None, None])  # blank: skipped, still counted
    sheet.append([wrong_check_character(IDS[2]), "王五", GRID_A2, None, None, None, None])
    buffer = io.BytesIO()
    workbook.save(buffer)

    job = run_import(county, buffer.getvalue(), filename="residents.XLSX")
    assert job["status"] == "finished"
    assert job["counts"] == counts(rows=3, created=2, failed=1)
    assert job["ignored_columns"] == ["无关列"]
    assert error_rows(county, job["id"]) == [["5", "id_number", "check character does not match"]]

    [first] = county.find_resident(id_number=IDS[0])
    assert (first["name"], first["grid_code"], first["phone"]) == ("张三", GRID_A1, "138****5670")
    assert first["residence_type"] == "registered"
    assert first["notes"] == "独居"
    [second] = county.find_resident(id_number=IDS[1])
    assert (second["grid_code"], second["residence_type"]) == (GRID_B1, "floating")


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        pytest.param(
            "residents.csv",
            encoded(csv_bytes([[IDS[0], "张三"]], header=["id_number", "name"])),
            "header: missing required column(s): grid_code",
            id="missing-required-column",
        ),
        pytest.param(
            "residents.txt",
            encoded(csv_bytes([[IDS[0], "张三", GRID_A1, "", ""]])),
            "file: cannot import '.txt'",
            id="unknown-extension",
        ),
        pytest.param(
            "residents.csv", "this is not base64!", "file: is not valid base64", id="bad-base64"
        ),
    ],
)
def test_unusable_files_are_refused_and_nothing_is_written(
    county, population_db, filename, content, message
):
    with pytest.raises(RemoteError) as raised:
        county.start_import("residents", filename, content)
    assert raised.value.exc_type == "InvalidInput"
    assert raised.value.value.startswith(message)
    assert population_db.import_jobs.count_documents({}) == 0
    assert population_db["import_files.files"].count_documents({}) == 0
    assert population_db["import_files.chunks"].count_documents({}) == 0


def test_stored_residents_never_contain_plain_id_or_phone_numbers(county, population_db):
    run_import(county, csv_bytes(MIXED_ROWS))
    county.register_resident(
        {
            "id_number": IDS[8],
            "name": "吴十",
            "grid_code": GRID_A2,
            "phone": "13812345678",
            "residence_type": "registered",
        }
    )
    changed = [list(row) for row in MIXED_ROWS]
    changed[0][3] = "13900001111"
    run_import(county, csv_bytes(changed))
    assert population_db.residents.count_documents({}) == 6

    stored = {
        name: json.dumps(list(population_db[name].find()), default=str, ensure_ascii=False)
        for name in ("residents", "resident_history", "import_errors", "import_jobs")
    }
    secrets = [*IDS[:9], "13812345670", "13812345678", "13900001111"]
    for name, text in stored.items():
        for secret in secrets:
            assert secret not in text, f"{secret} is stored in clear in {name}"
    assert "id_cipher" in stored["residents"] and "id_index" in stored["residents"]


def test_uploaded_files_do_not_keep_id_numbers_in_clear(county, population_db):
    run_import(county, csv_bytes(MIXED_ROWS))
    chunks = b"".join(bytes(chunk["data"]) for chunk in population_db["import_files.chunks"].find())
    assert IDS[0].encode() not in chunks


def test_rows_outside_the_importers_scope_are_reported_on_grid_code(county, as_user):
    operator_b = as_user(OPERATOR_B)
    rows = [
        [IDS[0], "张三", GRID_A1, "13812345670", "registered"],
        [IDS[1], "李四", GRID_B1, "13812345671", "registered"],
        [IDS[2], "王五", GRID_A2, "", "registered"],
    ]
    job = run_import(operator_b, csv_bytes(rows))
    assert job["counts"] == counts(rows=3, created=1, failed=2)
    assert error_rows(operator_b, job["id"]) == [
        ["2", "grid_code", "no such grid in your scope"],
        ["4", "grid_code", "no such grid in your scope"],
    ]
    assert county.find_resident(id_number=IDS[0]) == []
    assert county.find_resident(id_number=IDS[2]) == []
    assert county.find_resident(id_number=IDS[1])[0]["grid_code"] == GRID_B1
    admins_job = county.start_import("residents", "a.csv", encoded(csv_bytes(rows)))
    with pytest.raises(RemoteError, match="NotFound"):
        operator_b.import_job(admins_job["id"])  # another user's job is not theirs to see
    wait_for_job(county, admins_job["id"])


def test_an_import_cannot_take_over_a_resident_outside_the_importers_scope(county, as_user):
    county.register_resident(
        {
            "id_number": IDS[0],
            "name": "张三",
            "grid_code": GRID_A1,
            "phone": "13812345678",
            "residence_type": "registered",
        }
    )
    operator_b = as_user(OPERATOR_B)
    job = run_import(operator_b, csv_bytes([[IDS[0], "冒名", GRID_B1, "13900000000", "floating"]]))
    assert job["counts"]["failed"] == 1
    [resident] = county.find_resident(id_number=IDS[0])
    assert (resident["name"], resident["grid_code"], resident["version"]) == ("张三", GRID_A1, 1)


def test_import_finished_is_published_once_with_the_counts(county, events_tap):
    events_tap()  # the territory import's events
    job = run_import(county, csv_bytes(MIXED_ROWS))
    [finished] = events_named(events_tap, "import.finished", expected=1)
    assert finished["type"] == "gridwork.import.finished"
    assert finished["data"]["job_id"] == job["id"]
    assert finished["data"]["kind"] == "residents"
    assert finished["data"]["counts"] == job["counts"] == counts(rows=9, created=5, failed=4)
    assert finished["data"]["imported_by"] == ADMIN.user_id
    assert finished["data"]["by_grid"] == {
        GRID_A1: {"created": 2, "updated": 0},
        GRID_A2: {"created": 1, "updated": 0},
        GRID_B1: {"created": 2, "updated": 0},
    }
    text = json.dumps(finished, ensure_ascii=False)
    assert all(number not in text for number in IDS)


def test_a_job_whose_worker_died_is_run_again_after_its_lease(county, population_db, clock):
    first = run_import(county, csv_bytes(MIXED_ROWS))
    assert first["counts"] == counts(rows=9, created=5, failed=4)
    residents = population_db.residents.count_documents({})

    # The worker died before its first checkpoint: the job stays "running" and its lease
    # has run out. (Taken over after a checkpoint, it resumes there: the fault suite's
    # large-import scenario, tests/integration/faults/test_nothing_lost.py.)
    left_by_a_dead_replica(
        population_db, clock, first["id"], counts(rows=3, created=2, failed=1), 0
    )
    rerun = wait_for_job(county, first["id"], finished_after=first["finished_at"])
    assert rerun["status"] == "finished"
    # The same counts as a fresh run of the file, with the rows already there unchanged.
    assert rerun["counts"] == counts(rows=9, unchanged=5, failed=4)
    assert population_db.residents.count_documents({}) == residents
    for number in MIXED_IMPORTED:
        assert len(county.find_resident(id_number=number)) == 1
    assert error_rows(county, first["id"]) == MIXED_ERRORS  # not reported twice
    assert population_db.import_jobs.count_documents({}) == 1


def test_a_file_of_many_batches_counts_and_reports_as_one_batch_does(county, monkeypatch):
    # Each batch is checked while the one before it is written: with batches of two
    # rows, the repeat in row 9 of the person in row 2 is still refused, and the counts
    # and errors are those of the file taken in one batch.
    monkeypatch.setattr(importing, "BATCH_SIZE", 2)
    job = run_import(county, csv_bytes(MIXED_ROWS))
    assert job["status"] == "finished"
    assert job["counts"] == counts(rows=9, created=5, failed=4)
    assert error_rows(county, job["id"]) == MIXED_ERRORS
    for number in MIXED_IMPORTED:
        assert len(county.find_resident(id_number=number)) == 1


def test_a_job_taken_over_after_a_checkpoint_resumes_with_the_next_batch(
    county, population_db, clock, monkeypatch
):
    monkeypatch.setattr(importing, "BATCH_SIZE", 2)
    first = run_import(county, csv_bytes(MIXED_ROWS))
    # Put the job back as a replica that died after its second checkpoint left it: rows
    # 2-5 (four data rows) written with their one error, nothing after them.
    left_by_a_dead_replica(
        population_db, clock, first["id"], counts(rows=4, created=3, failed=1), 4
    )
    population_db.import_errors.delete_many({"job_id": first["id"], "row": {"$gt": 5}})
    rerun = wait_for_job(county, first["id"], finished_after=first["finished_at"])
    assert rerun["status"] == "finished"
    # Rows 6 and 10 were stored by the first run (unchanged now); row 9 is still the
    # person of row 2, remembered from the skipped rows.
    assert rerun["counts"] == counts(rows=9, created=3, unchanged=2, failed=4)
    assert error_rows(county, first["id"]) == MIXED_ERRORS


# ------------------------------------------------------------------ roster matching
def register(proxy, number: str, name: str, grid: str = GRID_A1, phone: str = "13812345678"):
    return proxy.register_resident(
        {
            "id_number": number,
            "name": name,
            "grid_code": grid,
            "phone": phone,
            "residence_type": "registered",
        }
    )


def test_match_roster_sorts_rows_and_can_flag_the_matched(county, population_db):
    same = register(county, IDS[0], "张三")
    renamed = register(county, IDS[1], "李四", GRID_A2)
    new_phone = register(county, IDS[2], "王五", GRID_B1)
    roster = [
        {"id_number": IDS[0], "name": "张三", "phone": "13812345678"},
        {"id_number": IDS[1], "name": "李斯", "phone": "13812345678"},
        {"id_number": IDS[2].lower(), "name": "王五", "phone": "13999999999"},
        {"id_number": IDS[3], "name": "不在册"},
        {"name": "缺证件号"},
    ]

    result = county.match_roster(roster)
    assert result["matched"] == [
        {"row": 1, "resident_id": same["id"], "grid_code": GRID_A1},
        {"row": 2, "resident_id": renamed["id"], "grid_code": GRID_A2},
        {"row": 3, "resident_id": new_phone["id"], "grid_code": GRID_B1},
    ]
    assert result["mismatches"] == [
        {
            "row": 2,
            "resident_id": renamed["id"],
            "grid_code": GRID_A2,
            "fields": [{"field": "name", "ours": "李四", "theirs": "李斯"}],
        },
        {
            "row": 3,
            "resident_id": new_phone["id"],
            "grid_code": GRID_B1,
            "fields": [{"field": "phone", "ours": "138****5678", "theirs": "(differs)"}],
        },
    ]
    assert result["not_found"] == [{"row": 4, "name": "不在册"}]
    assert result["invalid"] == [{"row": 5, "field": "id_number", "reason": "is required"}]
    assert population_db.group_memberships.count_documents({}) == 0  # matching alone tags no one

    apply_group = {"group": "low_income", "risk_level": "low", "responsible_worker_id": "worker-a1"}
    assert county.match_roster(roster, apply_group) == result
    for resident in (same, renamed, new_phone):
        [membership] = county.get_resident(resident["id"])["groups"]
        assert membership["group"] == "low_income"
        assert membership["kind"] == "vulnerable"
        assert membership["risk_level"] == "low"
        assert membership["responsible_worker_id"] == "worker-a1"
        assert membership["active"] is True
    assert population_db.group_memberships.count_documents({"active": True}) == 3

    county.match_roster(roster, apply_group)  # matching again tags no one twice
    assert population_db.group_memberships.count_documents({}) == 3


def test_match_roster_treats_differently_written_phones_as_the_same(county):
    register(county, IDS[0], "张三", phone="13812345678")
    result = county.match_roster(
        [{"id_number": IDS[0], "name": "张三", "phone": "+86 138 1234 5678"}]
    )
    assert len(result["matched"]) == 1
    assert result["mismatches"] == []


def _imported_rows(outcome: str) -> float:
    labels = {"kind": "residents", "outcome": outcome}
    return REGISTRY.get_sample_value("gridwork_import_rows_total", labels) or 0
