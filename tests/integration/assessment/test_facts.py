"""Facts from real topics: each event stored once however often it is delivered, and
indicators aggregated over the subtree of a territory node."""

from datetime import UTC, datetime

import pytest
from kombu import Connection, Exchange, Producer
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook
from pymongo import MongoClient

from devstack.processes import wait_until
from gridwork_common.clock import CHINA_TIME, china_today
from gridwork_common.context import CallerContext
from gridwork_common.events import new_event
from services.assessment.domain.indicators import LEVELS
from services.assessment.service import AssessmentService
from services.events.service import EventsService

pytestmark = pytest.mark.integration

GRID = "530402001001001"
OTHER_GRID = "530402002001001"
SYSTEM = CallerContext(user_id="tests", roles=("system",))
NOW = datetime(2026, 10, 12, 3, 0, tzinfo=UTC)  # Monday 11:00 in China: period 2026-10


def _incident_event(action, incident_id, grid=GRID, at=NOW, **data):
    event = new_event(
        source="/counties/530402/events",
        routing_key=f"incident.{action}",
        subject=grid,
        data={"incident_id": incident_id, "grid_code": grid, "urgency": "normal", **data},
        now=at,
        extensions={"department": "none"},
    )
    route = f"incident.{action}.none.{grid[:6]}.{grid[:9]}.{grid[:12]}.{grid}"
    return route, event.to_json_dict()


@pytest.fixture
def assessment(runner_factory, config):
    """The assessment service, and the events service it asks for the working calendar."""
    runner = runner_factory(config, AssessmentService, EventsService)
    runner.start()
    return runner


@pytest.fixture
def facts_collection(settings):
    client = MongoClient(settings.mongo_uri)
    yield client[settings.database_name("assessment")]["facts"]
    client.close()


def _queues_empty(config) -> bool:
    """nameko's queue for `on_incident` is empty: every delivery was taken (and a
    consumer acks only after the handler finished)."""
    with Connection(config["AMQP_URI"]) as connection:
        queue = "evt-events-incident.#--assessment.on_incident"
        return connection.default_channel.queue_declare(queue, passive=True).message_count == 0


def _publish(config, exchange_name, messages):
    exchange = Exchange(exchange_name, type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as connection:
        producer = Producer(connection.default_channel, serializer="json")
        for routing_key, body in messages:
            producer.publish(body, exchange=exchange, routing_key=routing_key, declare=[exchange])


def test_each_event_counts_once_and_indicators_aggregate_the_subtree(
    assessment, config, facts_collection
):
    messages = [
        _incident_event("reported", "c1"),
        _incident_event("closed", "c1"),
        _incident_event("reported", "c2"),
        _incident_event("overdue", "c2"),
        _incident_event("reworked", "c2"),
        _incident_event("closed", "c2"),
        _incident_event("reported", "c3", urgency="urgent"),
        _incident_event("evaluated", "c1", satisfaction=4),
        _incident_event("reported", "c9", grid=OTHER_GRID),
    ]
    _publish(config, "events.events", messages)
    _publish(config, "events.events", messages)  # the broker redelivers every one
    wait_until(lambda: facts_collection.count_documents({}) == len(messages), 15, "facts")
    with ClusterRpcProxy(config, context_data=SYSTEM.to_context_data(), timeout=10) as rpc:
        # the duplicates are consumed too (the queue drains), and still count once
        wait_until(lambda: _queues_empty(config), 15, "queues drained")
        township = rpc.assessment.indicators("530402001", "2026-10")
        county = rpc.assessment.indicators("530402", "2026-10")
    assert facts_collection.count_documents({}) == len(messages)
    assert township["cases_reported"] == 3 and county["cases_reported"] == 4
    assert township["cases_closed"] == 2
    assert township["cases_due"] == 2  # closed, or past a deadline
    assert township["closed_on_time"] == 1  # c2 went overdue before closing
    assert township["reworked"] == 1 and township["overdue"] == 1
    assert township["rates"]["satisfaction"] == 4
    assert township["rates"]["closure_rate"] == 1.0
    assert township["rates"]["on_time_rate"] == 0.5


def test_visits_and_account_activity_become_facts(assessment, config, facts_collection):
    visit = new_event(
        source="/counties/530402/population",
        routing_key="visit.recorded",
        subject=GRID,
        now=NOW,
        data={"visit_id": "v1", "grid_code": GRID, "risk_level": "high", "worker_id": "w1"},
    )
    login = new_event(
        source="/counties/530402/gateway",
        routing_key="account.login",
        subject=GRID,
        now=NOW,
        data={"user_id": "w1"},
    )
    _publish(config, "population.events", [("visit.recorded", visit.to_json_dict())])
    _publish(config, "gateway.events", [("account.login", login.to_json_dict())])
    wait_until(lambda: facts_collection.count_documents({}) == 2, 15, "facts")
    with ClusterRpcProxy(config, context_data=SYSTEM.to_context_data(), timeout=10) as rpc:
        grid = rpc.assessment.indicators(GRID, "2026-10")
        working_days = rpc.events.working_days("2026-10-01", "2026-10-31")
    assert grid["visits_recorded"] == 1
    assert grid["active_account_days"] == 1 and grid["logins"] == 1
    # measured against the county's calendar: the National Day holiday is not working time
    assert grid["expected_account_days"] == len(working_days) == 18
    assert grid["rates"]["account_activity_rate"] == 1 / 18


def test_indicators_check_their_arguments_and_scope(assessment, config):
    outsider = CallerContext(user_id="u", roles=("leader",), scope="530402002")
    with ClusterRpcProxy(config, context_data=outsider.to_context_data(), timeout=10) as rpc:
        with pytest.raises(RemoteError, match="period"):
            rpc.assessment.indicators(GRID, "2026-13")
        with pytest.raises(RemoteError, match="NotFound"):
            rpc.assessment.indicators(GRID, "2026-10")


def test_scorecards_rank_stars_and_published_cards_stay_as_scored(
    assessment, config, facts_collection
):

    messages = []
    for number in range(10):  # grid A closes everything on time
        messages += [
            _incident_event("reported", f"a{number}"),
            _incident_event("closed", f"a{number}"),
        ]
    for number in range(10):  # grid B lets half of its cases run late
        grid = OTHER_GRID
        messages += [_incident_event("reported", f"b{number}", grid=grid)]
        if number % 2:
            messages += [_incident_event("overdue", f"b{number}", grid=grid)]
        messages += [_incident_event("closed", f"b{number}", grid=grid)]
    _publish(config, "events.events", messages)
    wait_until(lambda: facts_collection.count_documents({}) == len(messages), 15, "facts")

    admin = CallerContext(user_id="admin", roles=("admin",), scope="530402")
    with ClusterRpcProxy(config, context_data=admin.to_context_data(), timeout=10) as rpc:
        board = rpc.assessment.scorecards("grid", "2026-10")
        assert [item["subject"] for item in board["items"]] == [GRID, OTHER_GRID]
        first, second = board["items"]
        assert first["total"] > second["total"]
        assert first["stars"] >= second["stars"]
        assert board["bottom"][0] == OTHER_GRID
        assert first["scorecard"]["parts"]["on_time"] == 50  # 100 % on time
        assert second["scorecard"]["parts"]["on_time"] < 50  # 50 % on time, minus per point

        published = rpc.assessment.publish_scorecards("grid", "2026-10")
        assert published["republished"] is False
        # A stricter rule set later is a new version; the published cards do not change.
        rules = rpc.assessment.rule_sets()[0]
        rpc.assessment.publish_rules({**rules, "valid_from": "2026-12", "on_time_target": 0.9})
        again = rpc.assessment.publish_scorecards("grid", "2026-10")
        assert again["republished"] is True
        assert again["items"] == published["items"]
        assert rpc.assessment.scorecards("grid", "2026-10")["items"] == published["items"]
        # A trace arriving late changes nothing published: the board of a settled period
        # is read as published; recomputing it is asked for by naming the rule version.
        late = [_incident_event("reported", "a-late"), _incident_event("closed", "a-late")]
        _publish(config, "events.events", late)
        wait_until(lambda: facts_collection.count_documents({}) == len(messages) + 2, 15, "facts")
        assert rpc.assessment.scorecards("grid", "2026-10")["items"] == published["items"]
        recomputed = rpc.assessment.scorecards("grid", "2026-10", 1)
        assert recomputed["items"][0]["indicators"]["cases_reported"] == 11

    outsider = CallerContext(user_id="u", roles=("leader",), scope="530402002")
    with ClusterRpcProxy(config, context_data=outsider.to_context_data(), timeout=10) as rpc:
        # their own grid only, with its county-wide rank, live and as published
        [live] = rpc.assessment.scorecards("grid", "2026-10")["items"]
        assert (live["subject"], live["rank"]) == (OTHER_GRID, 2)
        [board] = rpc.assessment.published_scorecards("grid", "2026-10")
        assert [(i["subject"], i["rank"]) for i in board["items"]] == [(OTHER_GRID, 2)]
        assert rpc.assessment.scorecards("worker", "2026-10")["items"] == []
        with pytest.raises(RemoteError, match="Forbidden"):
            rpc.assessment.publish_scorecards("grid", "2026-10")


def test_integrity_signals_are_flagged_not_deducted(assessment, config, facts_collection):
    def visit(number, lon, lat, at, membership):
        return new_event(
            source="/counties/530402/population",
            routing_key="visit.recorded",
            subject=GRID,
            now=NOW,
            data={
                "visit_id": f"v{number}",
                "membership_id": membership,
                "grid_code": GRID,
                "risk_level": "low",
                "worker_id": "w1",
                "at": at,
                "location": {"type": "Point", "coordinates": [lon, lat]},
            },
        ).to_json_dict()

    visits = [
        visit(n, 102.505, 24.305, f"2026-10-12T0{n}:00:00+00:00", f"m{n}") for n in range(1, 6)
    ]  # five people "visited" from one spot
    visits.append(visit(9, 103.505, 24.305, "2026-10-12T05:10:00+00:00", "m9"))  # 100 km
    photo = {"sha256": "ab" * 32, "uploader": "w1"}
    media = [
        new_event(
            source="/counties/530402/media",
            routing_key="media.stored",
            subject=owner,
            now=NOW,
            data={**photo, "media_id": owner, "owner": {"kind": "membership", "id": owner}},
        ).to_json_dict()
        for owner in ("m1", "m2")
    ]
    _publish(config, "population.events", [("visit.recorded", v) for v in visits])
    _publish(config, "media.events", [("media.stored", m) for m in media])
    wait_until(lambda: facts_collection.count_documents({}) == 8, 15, "facts")
    with ClusterRpcProxy(config, context_data=SYSTEM.to_context_data(), timeout=10) as rpc:
        flags = rpc.assessment.integrity_flags("2026-10")
    kinds = sorted(flag["signal"] for flag in flags)
    assert kinds == ["implausible_journey", "many_visits_one_spot", "reused_photo"]


def test_the_monthly_bulletin_is_made_once_as_html_and_csv(assessment, config, facts_collection):
    messages = [
        _incident_event("reported", "c1"),
        _incident_event("closed", "c1"),
        _incident_event("reported", "c2", grid=OTHER_GRID),
    ]
    _publish(config, "events.events", messages)
    wait_until(lambda: facts_collection.count_documents({}) == len(messages), 15, "facts")
    county_leader = CallerContext(user_id="l", roles=("leader",), scope="530402")
    with ClusterRpcProxy(config, context_data=county_leader.to_context_data(), timeout=10) as rpc:
        page = rpc.assessment.bulletin("2026-10")
        table = rpc.assessment.bulletin("2026-10", "csv")
        assert rpc.assessment.bulletin("2026-10") == page  # kept once made
    assert page.startswith("<!doctype html>") and "<svg" in page and GRID in page
    rows = table.lstrip("\ufeff").splitlines()
    assert rows[0].startswith("level,rank,subject,total,stars")
    assert any(row.startswith(f"grid,1,{GRID},") for row in rows)
    township = CallerContext(user_id="t", roles=("leader",), scope="530402001")
    with (
        ClusterRpcProxy(config, context_data=township.to_context_data(), timeout=10) as rpc,
        pytest.raises(RemoteError, match="Forbidden"),
    ):
        rpc.assessment.bulletin("2026-10")


@pytest.mark.parametrize(
    ("happened", "month", "last_grace_moment", "first_settled_moment"),
    [
        # October's late traces may arrive until 3 November (China time) is over.
        (
            datetime(2026, 10, 31, 23, 30, tzinfo=CHINA_TIME),
            "2026-10",
            datetime(2026, 11, 3, 23, 58, tzinfo=CHINA_TIME),
            datetime(2026, 11, 4, 0, 0, 30, tzinfo=CHINA_TIME),
        ),
        # The year's last month: 4 January 2027, 00:00 in China is still 3 January in UTC.
        (
            datetime(2026, 12, 31, 23, 30, tzinfo=CHINA_TIME),
            "2026-12",
            datetime(2027, 1, 3, 23, 58, tzinfo=CHINA_TIME),
            datetime(2027, 1, 4, 0, 0, 30, tzinfo=CHINA_TIME),
        ),
    ],
    ids=["month-end", "year-end"],
)
def test_after_a_month_ends_the_timer_publishes_every_level_and_the_bulletin_once(
    assessment,
    config,
    facts_collection,
    clock,
    happened,
    month,
    last_grace_moment,
    first_settled_moment,
):
    messages = [
        _incident_event("reported", "t1", at=happened, actor_id="w1"),
        _incident_event("closed", "t1", at=happened, actor_id="h1", department="530402-police"),
    ]
    _publish(config, "events.events", messages)
    wait_until(lambda: facts_collection.count_documents({}) == len(messages), 15, "facts")
    container = next(c for c in assessment.containers if c.service_name == "assessment")
    county_leader = CallerContext(user_id="l", roles=("leader",), scope="530402")
    # Within the grace days after a month ends, the timer waits for late traces.
    clock.set(last_grace_moment)
    with entrypoint_hook(container, "monthly_bulletin") as run:
        run()
    with ClusterRpcProxy(config, context_data=county_leader.to_context_data(), timeout=10) as rpc:
        assert rpc.assessment.published_scorecards("grid", month) == []
        with pytest.raises(RemoteError, match="Conflict"):  # nor on demand
            rpc.assessment.bulletin(month)
    clock.set(first_settled_moment)
    for _ in range(2):  # a second run (or replica) publishes nothing new
        with entrypoint_hook(container, "monthly_bulletin") as run:
            run()
    with ClusterRpcProxy(config, context_data=county_leader.to_context_data(), timeout=10) as rpc:
        for level in LEVELS:
            [board] = rpc.assessment.published_scorecards(level, month)
            assert board["rules_version"] == 1 and board["items"], level
        assert GRID in rpc.assessment.bulletin(month)


def test_activity_counts_the_calendar_as_first_read_and_only_days_gone_by(
    assessment, config, settings, clock
):
    def grid_work(at):
        return new_event(
            source="/counties/530402/population",
            routing_key="visit.recorded",
            subject=GRID,
            now=at,
            data={
                "visit_id": f"v{at:%m}",
                "grid_code": GRID,
                "risk_level": "low",
                "worker_id": "w1",
            },
        ).to_json_dict()

    now = clock()  # Wednesday 18 November 2026
    _publish(config, "population.events", [("visit.recorded", grid_work(NOW))])
    _publish(config, "population.events", [("visit.recorded", grid_work(now))])
    client = MongoClient(settings.mongo_uri)
    facts = client[settings.database_name("assessment")]["facts"]
    wait_until(lambda: facts.count_documents({}) == 2, 15, "facts")
    admin = CallerContext(user_id="admin", roles=("admin",), scope="530402")
    with ClusterRpcProxy(config, context_data=admin.to_context_data(), timeout=10) as rpc:
        assert rpc.assessment.indicators(GRID, "2026-10")["expected_account_days"] == 18
        # The county declares 12 October a holiday after the month was assessed: October
        # keeps the calendar it was first assessed with.
        calendar = rpc.events.calendar()
        rpc.events.set_calendar({**calendar, "holidays": [*calendar["holidays"], "2026-10-12"]})
        assert len(rpc.events.working_days("2026-10-01", "2026-10-31")) == 17
        assert rpc.assessment.indicators(GRID, "2026-10")["expected_account_days"] == 18
        # This month counts its working days so far, today included.
        local_today = china_today(clock)
        so_far = rpc.events.working_days(
            local_today.replace(day=1).isoformat(), local_today.isoformat()
        )
        this_month = rpc.assessment.indicators(GRID, local_today.strftime("%Y-%m"))
        assert this_month["expected_account_days"] == len(so_far) == 13  # 2-6, 9-13, 16-18
    kept = client[settings.database_name("assessment")]["working_days"].find_one({"_id": "2026-10"})
    client.close()
    assert len(kept["days"]) == 18
