"""What the stack holds after a scenario, in the shape the checker takes: the records each
operation stored, the state each is in, and each downstream effect counted."""

from __future__ import annotations

import contextlib
from collections import Counter

from devstack.processes import wait_until
from gridwork_common.clock import utc_now
from services.gateway.idempotency import PENDING
from services.gateway.store import IDEMPOTENCY
from tests.faults.checker import Effect
from tests.faults.cluster import Cluster
from tests.faults.load import Load, imported_name
from tests.faults.receiver import WebhookReceiver

REPORTED = "incident.reported"


def stored_and_states(cluster: Cluster, load: Load) -> tuple[dict, dict]:
    stored: dict[str, list[str]] = {}
    states: dict[str, str] = {}
    with (
        cluster.database("events") as events,
        cluster.database("media") as media,
        cluster.database("population") as population,
    ):
        for operation in load.history:
            key, target = operation.key, operation.target
            if operation.kind == "report":
                found = events["incidents"].find({"description": f"fault {key}"}, {"_id": 1})
                stored[key] = [d["_id"] for d in found]
            elif operation.kind == "accept":
                case = events["incidents"].find_one({"_id": target}) or {}
                accepts = [e for e in case.get("timeline", []) if e["action"] == "accept"]
                stored[key] = [target] * len(accepts)
                states[key] = state_after_accept(case)
            elif operation.kind == "upload":
                found = media["media"].find({"owner.id": target}, {"_id": 1})
                stored[key] = [d["_id"] for d in found]
            elif operation.kind == "visit":
                found = population["visits"].find({"notes": f"fault {key}"}, {"_id": 1})
                stored[key] = [d["_id"] for d in found]
            elif operation.kind == "import":
                found = list(population["import_jobs"].find({"filename": f"{key}.csv"}))
                stored[key] = [d["_id"] for d in found]
                states[key] = found[0]["status"] if found else None
    return stored, states


def state_after_accept(case: dict) -> str | None:
    """The state the client's accept left the case in: its state now, unless only the
    system's timer acted on it since (an escalation of the overdue case), in which case
    the state the accept led to."""
    timeline = case.get("timeline", [])
    accepts = [i for i, e in enumerate(timeline) if e["action"] == "accept"]
    if not accepts:
        return case.get("state")
    later = timeline[accepts[-1] + 1 :]
    if all("system" in e.get("actor_roles", ()) for e in later):
        return timeline[accepts[-1]]["to_state"]
    return case.get("state")


def pending_keys(cluster: Cluster) -> set[str]:
    """The Idempotency-Keys whose gateway record is still held by an attempt (pending,
    its lease running: a retry would get 409). A pending record whose lease lapsed is not
    held: its attempt answered while the gateway's store was down (the answer could not be
    kept), and a retry runs again and gets the service's first result (the gateway keeps
    its records on the machine's clock). Ids are `<caller>:<key>`."""
    with cluster.database("gateway") as gateway:
        found = gateway[IDEMPOTENCY].find(
            {"state": PENDING, "lease_until": {"$gt": utc_now()}}, {"_id": 1}
        )
        return {d["_id"].rsplit(":", 1)[-1] for d in found}


def wait_for_quiet(cluster: Cluster, load: Load, receiver: WebhookReceiver, timeout_s=120):
    """Until background work is done: import jobs finished, every acknowledged report's
    fact recorded and webhook delivered (or the timeout: the checker then counts them)."""
    reported = set(load.reported.values())

    def quiet() -> bool:
        with cluster.database("population") as population:
            if population["import_jobs"].count_documents(
                {"status": {"$in": ["queued", "running"]}}
            ):
                return False
        facts = assessment_facts(cluster)
        delivered = receiver.by_subject(REPORTED)
        return all(facts[i] and delivered[i] for i in reported)

    # Past the timeout, what is missing is lost, and the checker says so.
    with contextlib.suppress(TimeoutError):
        wait_until(quiet, timeout_s, "the stack's background work", interval_s=1)


def assessment_facts(cluster: Cluster) -> Counter:
    with cluster.database("assessment") as assessment:
        found = assessment["facts"].find({"type": REPORTED}, {"incident_id": 1})
        return Counter(d.get("incident_id") for d in found)


def effects(cluster: Cluster, load: Load, receiver: WebhookReceiver) -> list[Effect]:
    acknowledged = {op.key for op in load.history if op.acknowledged}
    reported = frozenset(case for key, case in load.reported.items() if key in acknowledged)
    numbers = frozenset(
        number for key, ids in load.imported.items() if key in acknowledged for number in ids
    )
    residents, history = Counter(), Counter()
    with cluster.database("population") as population:
        by_id = {}
        for doc in population["residents"].find(
            {"name": {"$in": [imported_name(n) for n in numbers]}}, {"name": 1}
        ):
            number = doc["name"].removeprefix(imported_name(""))
            residents[number] += 1
            by_id[doc["_id"]] = number
        for entry in population["resident_history"].find(
            {"resident_id": {"$in": list(by_id)}, "action": "imported"}, {"resident_id": 1}
        ):
            history[by_id[entry["resident_id"]]] += 1
    return [
        Effect("assessment facts of reports", reported, assessment_facts(cluster)),
        Effect("webhook deliveries of reports", reported, receiver.by_subject(REPORTED)),
        Effect("imported residents", numbers, residents),
        Effect("residents' import history entries", numbers, history),
    ]
