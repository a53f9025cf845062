"""The aggregation pipelines against the plain definition of each indicator, on a real
mongod with facts recorded from generated events; and reproducibility: a closed period
replayed from its events, in another order and with every event delivered twice, scores
exactly as it was published."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from gridwork_common.events import new_event
from gridwork_common.mongo import new_client
from services.assessment import facts, scorecards, store
from services.assessment.domain import indicators as reference
from services.assessment.domain.periods import Period

pytestmark = pytest.mark.integration

GRIDS = ["530402001001001", "530402001001002", "530402001002001", "530402002001001"]
DEPARTMENTS = ["530402-police", "530402001-sanitation", "none"]
PEOPLE = ["w1", "w2", "w3", "h1", "h2", None]
ACTIONS = [
    "reported",
    "verified",
    "reworked",
    "closed",
    "evaluated",
    "overdue",
    "escalated",
    "supervised",
    "extended",
    "accepted",  # not an indicator: must change nothing
]
START = datetime(2026, 9, 20, tzinfo=UTC)
WORKING_DAYS = {
    (START + timedelta(days=n)).date().isoformat()
    for n in range(100)
    if (START + timedelta(days=n)).weekday() < 5
}
PERIODS = ["2026-10", "2026-11", "2026-12", "2026-Q4", "2026", "2026-W44", "2026-10-15"]


@pytest.fixture
def db(settings):
    client = new_client(settings, app_name="gridwork-tests")
    database = client[settings.database_name("assessment")]
    for collection, models in store.INDEXES.items():
        database[collection].create_indexes(models)
    yield database
    client.close()


def generated_events(seed: int, cases: int = 300) -> list[dict]:
    """Events as the other services publish them, at random moments of autumn 2026."""
    rng = random.Random(seed)
    events = []

    def moment():
        return START + timedelta(minutes=rng.randrange(0, 100 * 24 * 60))

    def event(routing_key, grid, data, source="population"):
        return new_event(
            source=f"/counties/530402/{source}",
            routing_key=routing_key,
            subject=grid,
            data=data,
            now=moment(),
            extensions={"department": data.get("department") or "none"},
        ).to_json_dict()

    for number in range(cases):
        grid = rng.choice(GRIDS)
        urgency = rng.choice(["normal", "normal", "urgent"])
        for action in rng.sample(ACTIONS, rng.randrange(1, 6)):
            data = {
                "incident_id": f"case-{number}",
                "grid_code": grid,
                "urgency": urgency,
                "department": rng.choice(DEPARTMENTS),
                "actor_id": rng.choice(PEOPLE),
            }
            if rng.random() < 0.2:  # a deadline notice or an odd producer: no person
                data.pop("actor_id")
                data["reporter_id"] = "w1"  # must not be taken for the actor
            if action == "closed":
                data["handling_working_minutes"] = rng.choice(
                    [rng.randrange(0, 5000)] * 8 + [None, True, -5, "12"]
                )
                data["ever_overdue"] = rng.random() < 0.2  # late in an earlier period
                data["approved_extensions"] = rng.choice([0, 0, 0, 1, 2, True])
            if action == "evaluated":
                data["satisfaction"] = rng.choice([1, 2, 3, 4, 5] * 2 + [0, 6, True, 4.5])
            if rng.random() < 0.01:
                data["incident_id"] = rng.choice(["", None])
            events.append(event(f"incident.{action}", grid, data, "events"))
            if action == "reworked" and rng.random() < 0.5:  # sent back twice
                events.append(event("incident.reworked", grid, data, "events"))
    for _ in range(cases):
        grid, person = rng.choice(GRIDS), rng.choice(PEOPLE[:5])
        kind = rng.choice(["visit.recorded", "resident.registered", "resident.moved", "x"])
        if kind == "x":
            kind = rng.choice(["account.login", "account.action"])
            data = {"user_id": person, "department": rng.choice(DEPARTMENTS)}
            scope = rng.choice([grid, grid, grid[:9], grid[:6]])  # leaders log in higher up
            events.append(event(kind, scope, data, "gateway"))
        else:
            data = {
                "grid_code": grid,
                "worker_id": person,
                "risk_level": rng.choice(["high", "low"]),
            }
            events.append(event(kind, grid, data))
    for grid in GRIDS:
        for month in ("2026-10", "2026-11"):
            rows = [
                {
                    "worker_id": person,
                    "risk_level": risk,
                    "required": (required := rng.randrange(0, 8)),
                    "done": rng.randrange(0, required + 3),  # more than needed: capped
                }
                for person in rng.sample(PEOPLE[:5], 2)
                for risk in ("high", "medium", "low")
            ]
            rows.append({"worker_id": None, "risk_level": "high", "required": 2, "done": 1})
            rows.append({"worker_id": "w1", "risk_level": "low", "required": "3", "done": -1})
            rows.append("not a row")
            data = {"grid_code": grid, "period": month, "rows": rows}
            events.append(event("visit.obligations", grid, data))
        events.append(
            event("visit.obligations", grid, {"grid_code": grid, "period": "2026-12", "rows": None})
        )
    events.extend(generated_patrols(rng, event, cases // 10))
    return events


def generated_patrols(rng, event, count: int) -> list[dict]:
    """Patrols finished and revised (late pieces), some flagged, some malformed; and the
    county's grids but one, announced by grid.updated (a patrolled grid counts anyway)."""
    events = [event("grid.updated", grid, {"code": grid, "name": grid}) for grid in GRIDS[:-1]]
    for number in range(count):
        grid, person = rng.choice(GRIDS), rng.choice(PEOPLE[:4])
        started = START + timedelta(minutes=rng.randrange(0, 100 * 24 * 60))
        data = {
            "patrol_id": f"patrol-{number}",
            "worker_id": person,
            "grid_code": grid,
            "grid_codes": rng.sample(GRIDS, rng.choice([0, 0, 0, 1, 2]))
            + rng.choice([[], ["5304"]]),
            "distance_m": rng.choice([rng.uniform(0, 9000)] * 6 + [None, -3, True, "12"]),
            "duration_s": rng.choice([rng.randrange(0, 20000)] * 6 + [None, 2.5, "x"]),
            "started_at": started.isoformat(),
            "flags": rng.choice([[], [], ["too_fast"], ["stationary"], None]),
        }
        if rng.random() < 0.03:
            data.pop("patrol_id")
        events.append(event("patrol.finished", grid, data))
        for _ in range(rng.choice([0, 0, 0, 1, 2])):  # late track pieces changed it
            revised = {**data, "distance_m": rng.uniform(0, 9000), "grid_codes": [grid]}
            events.append(event("patrol.updated", grid, revised))
    return events


@pytest.mark.parametrize("seed", [1, 2])
def test_the_pipelines_count_what_the_plain_definition_counts(db, seed):
    for payload in generated_events(seed):
        assert facts.record(db, payload)
    stored = list(db[store.FACTS].find())
    for text in PERIODS:
        period = Period.parse(text)
        first, last = period.day_texts()
        working = {day for day in WORKING_DAYS if first <= day <= last}
        for level in reference.LEVELS:
            expected = reference.indicators_by_subject(stored, level, period, working)
            counted = facts.indicators_by_subject(db, level, period, working)
            assert counted == expected, (text, level)
            assert counted, (text, level)  # the comparison is not between two empty sets
        if text == "2026-10":  # the patrols take part in the comparison
            for level in ("township", "grid", "worker"):
                counted = facts.indicators_by_subject(db, level, period, working).values()
                assert sum(i.patrols for i in counted) > 0, level
                assert any(i.grids_patrolled for i in counted), level
                if level == "worker":  # some person's grid left unpatrolled
                    assert any(i.grids_patrolled < i.grids_total for i in counted), level
        for within in ("530402001", "530402001001001"):
            for level in reference.LEVELS:
                assert facts.indicators_by_subject(
                    db, level, period, working, within
                ) == reference.indicators_by_subject(stored, level, period, working, within)


def test_every_event_delivered_twice_counts_once(db):
    events = generated_events(seed=3, cases=100)
    recorded = [facts.record(db, payload) for payload in events + events]
    assert recorded == [True] * len(events) + [False] * len(events)
    assert db[store.FACTS].count_documents({}) == len(events)
    once = list(db[store.FACTS].find())
    october = Period.parse("2026-10")
    assert facts.indicators_by_subject(
        db, "township", october, WORKING_DAYS
    ) == reference.indicators_by_subject(once, "township", october, WORKING_DAYS)


def test_a_closed_period_replayed_from_its_events_scores_as_published(db):
    events = generated_events(seed=4)
    for payload in events:
        facts.record(db, payload)
    october = Period.parse("2026-10")
    published = scorecards.publish(
        db, ["grid", "township", "worker", "department"], october, WORKING_DAYS
    )
    assert all(board["items"] for board in published.values())

    # The rules change: a new version, in force from October; published cards stay.
    rules = scorecards.rule_sets(db)[0].to_config()
    scorecards.publish_rules(db, {**rules, "valid_from": "2026-10", "on_time_target": 0.95})
    assert scorecards.scorecards(db, "grid", october, WORKING_DAYS)["rules_version"] == 2

    # Replay: the facts rebuilt from the events, shuffled, each delivered twice.
    db[store.FACTS].drop()
    db[store.FACTS].create_indexes(store.INDEXES[store.FACTS])
    replay = events + events
    random.Random(5).shuffle(replay)
    for payload in replay:
        facts.record(db, payload)

    for level, board in published.items():
        [kept] = scorecards.published(db, level, october)
        assert kept["items"] == board["items"] and kept["rules_version"] == 1
        recomputed = scorecards.scorecards(db, level, october, WORKING_DAYS, rules_version=1)
        assert recomputed["items"] == board["items"]
        assert recomputed["bottom"] == board["bottom"]
        # publishing again under the rules now in force adds version 2 beside version 1
        again = scorecards.publish(db, [level], october, WORKING_DAYS)[level]
        assert (again["rules_version"], again["republished"]) == (2, False)
        assert scorecards.publish(db, [level], october, WORKING_DAYS)[level]["republished"]
        first, second = scorecards.published(db, level, october)
        assert first["items"] == board["items"] and second["rules_version"] == 2
