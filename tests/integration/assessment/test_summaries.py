"""The live summaries against the plain definition of each indicator, on a real mongod
with facts recorded from generated events (one by one, in batches, and by two replicas
of the service racing on the same deliveries through RabbitMQ); and reproducibility: a
closed period replayed from its events, in another order and with every event delivered
twice, scores exactly as it was published."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from kombu import Connection, Exchange, Producer

from devstack.processes import wait_until
from gridwork_common.events import new_event
from services.assessment import facts, scorecards, store, summaries
from services.assessment.domain import indicators as reference
from services.assessment.domain.periods import Period
from services.assessment.service import AssessmentService

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


@pytest.fixture(autouse=True, params=["in turn", "overlapped"])
def facts_stored(request, monkeypatch):
    """Every test both ways: a batch's facts stored, then folded (the handlers' small
    batches), and folded while mongod stores them (a load's large ones)."""
    if request.param == "overlapped":
        monkeypatch.setattr(summaries, "OVERLAP_FROM_FACTS", 1)


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


def summarized(db, level, period, working, subject=None):
    return summaries.indicators_by_level(db, [level], period, working, subject)[level]


def assert_as_defined(db, stored, every_kind=True):
    """Every level and period kind, and each node read alone, as the plain loop counts."""
    for text in PERIODS:
        period = Period.parse(text)
        first, last = period.day_texts()
        working = {day for day in WORKING_DAYS if first <= day <= last}
        for level in reference.LEVELS:
            expected = reference.indicators_by_subject(stored, level, period, working)
            assert summarized(db, level, period, working) == expected, (text, level)
            # the comparison is not between two empty sets (a day may lack a level)
            assert expected or period.kind == "day", (text, level)
        if text == "2026-10" and every_kind:  # the patrols take part in the comparison
            for level in ("township", "grid", "worker"):
                counted = summarized(db, level, period, working).values()
                assert sum(i.patrols for i in counted) > 0, level
                assert any(i.grids_patrolled for i in counted), level
                if level == "worker":  # some person's grid left unpatrolled
                    assert any(i.grids_patrolled < i.grids_total for i in counted), level
        # a node's indicators, read alone (every case here stays in its grid, so its row
        # of the board is what the facts under it give)
        for node, level in (("530402001", "township"), ("530402001001001", "grid")):
            expected = reference.indicators_by_subject(stored, level, period, working, node)
            assert summarized(db, level, period, working, node) == expected, (text, node)


def test_the_summaries_count_what_the_plain_definition_counts(db):
    for payload in generated_events(seed=1):
        assert facts.record(db, payload)
    assert_as_defined(db, list(db[store.FACTS].find()))


def test_summaries_folded_in_batches_out_of_order_count_the_same(db):
    events = generated_events(seed=6, cases=150)
    arrivals = events + events[::3]
    random.Random(6).shuffle(arrivals)
    made = [facts.fact_from_event(payload) for payload in arrivals]
    recorded = sum(summaries.record(db, made[at : at + 97]) for at in range(0, len(made), 97))
    assert recorded == len({fact["_id"] for fact in made})
    assert_as_defined(db, list(db[store.FACTS].find()))


def test_every_event_delivered_twice_counts_once(db):
    events = generated_events(seed=3, cases=100)
    recorded = [facts.record(db, payload) for payload in events + events]
    assert recorded == [True] * len(events) + [False] * len(events)
    assert db[store.FACTS].count_documents({}) == len(events)
    once = list(db[store.FACTS].find())
    october = Period.parse("2026-10")
    assert summarized(db, "township", october, WORKING_DAYS) == reference.indicators_by_subject(
        once, "township", october, WORKING_DAYS
    )


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

    # Replay: the facts and their summaries rebuilt from the events, shuffled, each
    # delivered twice.
    for collection in (store.FACTS, store.SUMMARIES, store.CASES, store.ACTIVITY, store.CHANGES):
        db[collection].drop()
        if collection in store.INDEXES:
            db[collection].create_indexes(store.INDEXES[collection])
    replay = [facts.fact_from_event(payload) for payload in events + events]
    random.Random(5).shuffle(replay)
    for start in range(0, len(replay), 50):  # a rebuild folds many facts per transaction
        summaries.record(db, replay[start : start + 50])

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


EXCHANGES = {"events": "events.events", "population": "population.events"}
EXCHANGES["gateway"] = "gateway.events"


def test_two_replicas_racing_on_the_same_deliveries_count_each_fact_once(
    db, runner_factory, config
):
    """Two replicas of the service (ten handlers each) take the same events, each
    published twice, from the real broker: every fact is stored and folded once."""
    replicas = [runner_factory(config, AssessmentService) for _ in range(2)]
    for replica in replicas:
        replica.start()
    events = generated_events(seed=8, cases=40)
    exchanges = {name: Exchange(name, type="topic", durable=True) for name in EXCHANGES.values()}
    with Connection(config["AMQP_URI"]) as connection:
        producer = Producer(connection.default_channel, serializer="json")
        for exchange in exchanges.values():
            exchange(connection.default_channel).declare()
        for payload in events + events:
            service = payload["source"].rsplit("/", 1)[1]
            exchange = exchanges[EXCHANGES[service]]
            routing_key = facts.fact_from_event(payload)["type"]
            producer.publish(payload, exchange=exchange, routing_key=routing_key, declare=[])
    expected = len({facts.fact_from_event(payload)["_id"] for payload in events})
    wait_until(lambda: db[store.FACTS].count_documents({}) == expected, 180, "facts")
    stored = list(db[store.FACTS].find())
    # the duplicates may still be on their way: once the queues are drained, stopping
    # the replicas waits for the handlers under way
    wait_until(lambda: _drained(config), 120, "queues drained")
    for replica in replicas:
        replica.stop()
    assert db[store.FACTS].count_documents({}) == expected
    assert_as_defined(db, stored, every_kind=False)  # few events: not every kind of count


def _drained(config) -> bool:
    queues = [
        "evt-events-incident.#--assessment.on_incident",
        "evt-population-visit.*--assessment.on_visit",
        "evt-population-resident.*--assessment.on_resident",
        "evt-gateway-account.*--assessment.on_account",
    ]
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        return all(channel.queue_declare(q, passive=True).message_count == 0 for q in queues)
