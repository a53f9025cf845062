"""schemathesis over the whole OpenAPI document with every check it has, against the whole
stack as real processes (the gateway under gunicorn, as an integrator meets it): what the
document calls valid is accepted or answered with a documented status, what it calls
invalid is refused, undeclared methods answer 405 with `Allow`, and every response
matches the document. Each operation is called with a token of a demo user holding a
role the operation requires.

The processes run on the stack's pinned clock (tests/stack.py); every status a date could
lead to is documented all the same.

Each kind of coverage case is sent once (OneCaseOfEachKind): 4,065 cases instead of
6,649, with every check on every operation (docs/http-api.md)."""

import uuid

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.config._phases import DEFAULT_UNEXPECTED_METHODS
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from devstack.demo import DEMO_PASSWORD, demo_users, seed
from services.gateway.api import IDEMPOTENCY_HEADER, MAX_KEY_LENGTH
from services.gateway.app import build_api
from services.gateway.auth import Identity
from services.gateway.routes.population.access_audit import REVEAL_PURPOSE_HEADER
from services.gateway.store import gateway_db
from services.population.demo import demo_territory
from tests.conftest import settings_env
from tests.stack import running_stack

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = 3
SEEDED_RESIDENTS = 40
# A schema-valid request may still break a rule that depends on what is stored, on the
# county's map or on the calendar, which no JSON Schema can state; the document answers
# it with 422 naming the field. Only these operations may answer a schema-valid request
# with 422 (positive_data_acceptance); everywhere else such a rule is in the document.
RULES_BEYOND_THE_SCHEMA = {
    ("GET", "/api/v1/locate"): "the point must lie in one of the county's grids",
    ("POST", "/api/v1/calendar"): "working periods start before they end, in order",
    ("PUT", "/api/v1/calendar/notices/{year}"): "the days fall in the year of the path",
    ("POST", "/api/v1/assessment/publications"): "the period ended three days ago",
}
CONFIG = {
    "seed": 14,
    # One at a time: hypothesis keeps its state per thread, and under eventlet's
    # monkey-patching (the suite's) schemathesis's worker threads share one.
    "workers": 1,
    "generation": {"max-examples": EXAMPLES_PER_OPERATION, "deterministic": True},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        # Follows the links schemathesis infers between operations (the document
        # declares none).
        "stateful": {"enabled": True},
    },
    # Every check, but `max_response_time` (off unless given a limit): asserting
    # wall-clock response times would make the test depend on the load of the machine.
    "checks": {
        "enabled": True,
        # A request line or header too long for the HTTP server is refused before the
        # application reads it (414, 431; every operation documents both).
        "negative_data_rejection": {
            "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "414", "431"]
        },
    },
    "operations": [
        {
            "include-method": method,
            "include-path": path,
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
                }
            },
        }
        for method, path in RULES_BEYOND_THE_SCHEMA
    ],
}
# Tokens come from the gateway's own Identity, as a login would issue them, under an
# address of their own: the generated logins that fail must not lock the test out.
TOKEN_ADDRESS = "openapi-conformance-test"
# Logging out revokes the token it is called with: that operation gets a fresh one for
# every request, of a user no other operation uses.
LOGOUT_USER = "logout-only"


@pytest.fixture
def stack(infra, rabbit_config, tmp_path):
    env = settings_env(infra, rabbit_config["AMQP_URI"], LOG_LEVEL="WARNING")
    with running_stack(env, tmp_path) as running:
        seed(
            running["settings"].nameko_config(),
            residents=SEEDED_RESIDENTS,
            say=lambda _: None,
        )
        yield running


def _user_for(users: dict, roles: tuple[str, ...] | None) -> str:
    """The first demo user (the broadest scope first) holding one of the roles."""
    if not roles:
        return "admin"
    for username, (user_roles, _scope, _department) in users.items():
        if set(user_roles) & set(roles):
            return username
    raise AssertionError(f"no demo user has one of the roles {roles}")


def as_a_client_would(context, case, kwargs):
    """What the document states in words because OpenAPI 3.1 cannot state it, a client
    does: a fresh Idempotency-Key for each new request (a key reused for a different
    request is refused, 422), X-Reveal-Purpose whenever `reveal` is asked (a requirement
    across a query parameter and a header), and `id_number` or `phone` in a resident
    search (one of two optional query parameters). Requests that break the document
    otherwise are sent as generated."""
    headers = case.headers if case.headers is not None else {}
    key = headers.get(IDEMPOTENCY_HEADER)
    if isinstance(key, str) and 1 <= len(key) <= MAX_KEY_LENGTH:
        headers[IDEMPOTENCY_HEADER] = uuid.uuid4().hex
    query = case.query if case.query is not None else {}
    if query.get("reveal") and REVEAL_PURPOSE_HEADER not in headers:
        headers[REVEAL_PURPOSE_HEADER] = "conformance test"
    if case.path.endswith("/residents/search") and not (
        query.get("id_number") or query.get("phone")
    ):
        query["phone"] = "13800000000"
    case.headers, case.query = headers, query


class OneCaseOfEachKind:
    """The coverage phase's cases, each kind once: it sends one request for every
    wrong type of every field (an integer, a float, a boolean, an array, an object, a
    null, each answered by the same validation), and every undeclared method of every
    path (answered by one dispatcher). Equal descriptions of one parameter and schema
    location are one case; each path gets one undeclared method, the methods taken in
    turn across paths so that every one of them is sent. Every positive boundary, every
    missing field and every other kind of wrong value stays."""

    def __init__(self, declared: set[tuple[str, str]], unexpected: set[str]):
        self._declared = declared
        self._unexpected = sorted(unexpected)
        self._seen: set[tuple] = set()
        self._method_for_path: dict[str, str] = {}

    def __call__(self, context, case) -> bool:
        data = case.meta.phase.data if case.meta is not None else None
        if not isinstance(data, CoveragePhaseData):
            return True
        operation = context.operation
        if data.scenario == CoverageScenario.UNSPECIFIED_HTTP_METHOD:
            return case.method.lower() == self._undeclared_method_for(operation.path)
        kind = (
            operation.label,
            data.parameter_location,
            data.parameter,
            data.location,
            data.scenario,
            data.description,
        )
        if kind in self._seen:
            return False
        self._seen.add(kind)
        return True

    def _undeclared_method_for(self, path: str) -> str:
        if path not in self._method_for_path:
            declared = {method.lower() for method, declared in self._declared if declared == path}
            undeclared = [method for method in self._unexpected if method not in declared]
            turn = len(self._method_for_path)
            self._method_for_path[path] = undeclared[turn % len(undeclared)]
        return self._method_for_path[path]


# Cases (one request each; the authentication and use-after-free checks send a few
# more), measured on the document of 30 November 2026: 6,649 before OneCaseOfEachKind
# (coverage 6,246, fuzzing 385, stateful 18; about 8 minutes with the machine's two
# cores busy), 4,065 with it (coverage 3,658, fuzzing 389, stateful 18; about 4).
# max-examples does not bound the coverage phase: it sends every boundary and every kind
# of wrong value of every parameter.
@pytest.mark.timeout(1200)
def test_every_operation_does_what_the_document_says(stack):
    settings = stack["settings"]
    users = demo_users(demo_territory(settings.county_code))
    identity = Identity(gateway_db(settings), settings)
    identity.create_user(LOGOUT_USER, DEMO_PASSWORD, ["leader"], settings.county_code, None)

    def fresh_token(username: str) -> str:
        return identity.login(username, DEMO_PASSWORD, TOKEN_ADDRESS)["access_token"]

    tokens = {username: fresh_token(username) for username in users}
    api, _ = build_api()
    schema = schemathesis.openapi.from_url(
        f"{stack['gateway']}/api/v1/openapi.json", config=SchemathesisConfig.from_dict(CONFIG)
    )

    @schema.auth()
    class DemoUserOfTheRightRole:
        def get(self, case, context):
            return tokens

        def set(self, case, data, context):
            operation = context.operation
            if operation.path.endswith("/auth/logout"):
                bearer = fresh_token(LOGOUT_USER)
            else:
                spec = api.operations[(operation.method.upper(), operation.path)]
                bearer = data[_user_for(users, spec.roles)]
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {bearer}"}

    # schemathesis runs `before_call` hooks from its global registry only.
    GLOBAL_HOOK_DISPATCHER.register_hook_with_name(as_a_client_would, "before_call")
    one_of_each_kind = OneCaseOfEachKind(set(api.operations), DEFAULT_UNEXPECTED_METHODS)
    GLOBAL_HOOK_DISPATCHER.register_hook_with_name(one_of_each_kind, "filter_case")
    try:
        statistic, errors = _run(schema)
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(as_a_client_would)
        GLOBAL_HOOK_DISPATCHER.unregister(one_of_each_kind)
    assert not errors, "\n\n".join(errors)
    declared = {f"{method.upper()} {path}" for method, path in api.operations}
    assert statistic.tested_operations == declared, (
        f"not tested: {sorted(declared - statistic.tested_operations)}"
    )
    report = [
        f"{label}: {failure.title} ({_answer(group.response)}); sent {group.code_sample}"
        for label, grouped in statistic.failures.items()
        for group in grouped.values()
        for failure in group.failures
    ]
    assert statistic.total_failures == 0, (
        f"{statistic.total_failures} failures in {statistic.total_cases} cases "
        f"{CASES_BY_PHASE}:\n" + "\n".join(report)
    )


CASES_BY_PHASE: dict[str, int] = {}


def _run(schema) -> tuple[Statistic, list[str]]:
    statistic, errors = Statistic(), []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            before = statistic.total_cases
            statistic.on_scenario_finished(event.recorder)
            CASES_BY_PHASE[event.phase.value] = (
                CASES_BY_PHASE.get(event.phase.value, 0) + statistic.total_cases - before
            )
        elif isinstance(event, events.EngineFinished) and event.failures:
            # checks judged over the whole run, not one case
            statistic.record_run_check_failures(event.failures, label="whole run")
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    return statistic, errors


def _answer(response) -> str:
    if response is None:
        return "no response"
    return f"{response.status_code} {response.content[:300].decode(errors='replace')}"
