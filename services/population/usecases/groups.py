"""Special and vulnerable groups, visit rules, visits, worklists and overdue notices."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from gridwork_common.errors import Conflict, InvalidInput
from gridwork_common.idempotency import check_replay, fingerprint, keyed_id
from services.population import store, topics
from services.population.domain import access, groups, patrols
from services.population.domain.codes import CODE_LENGTHS, level_of
from services.population.domain.residents import (
    ACTIVE,
)
from services.population.metrics import publish_visit_backlog
from services.population.repositories.patrols import link_to_patrol
from services.population.usecases.base import UseCases, iso_time


class GroupUseCases(UseCases):
    def flag_group(
        self,
        resident_id: str,
        group: str,
        risk_level: str,
        responsible_worker_id: str,
        note: str | None = None,
    ) -> dict:
        self.require(access.GROUP_WRITERS, "flagging group membership")
        kind = groups.group_kind(group)
        groups.check_risk_level(risk_level)
        if not responsible_worker_id:
            raise InvalidInput("responsible_worker_id", "is required")
        resident = self._resident(resident_id)
        if resident["status"] != ACTIVE:
            raise Conflict(f"status: the resident is {resident['status']}")
        now = self.clock()
        membership = {
            "_id": uuid.uuid4().hex,
            "resident_id": resident_id,
            "group": group,
            "kind": kind,
            "risk_level": risk_level,
            "responsible_worker_id": str(responsible_worker_id),
            "grid_code": resident["grid_code"],
            "path": resident["path"],
            "active": True,
            "flagged_at": now,
            "flagged_by": self.caller.user_id,
            "note": (note or "").strip()[:500] or None,
        }

        def announce(flagged: Mapping) -> None:
            self.publish(
                topics.GROUP_FLAGGED,
                flagged["grid_code"],
                {
                    "membership_id": flagged["_id"],
                    "resident_id": resident_id,
                    "group": group,
                    "kind": kind,
                    "risk_level": risk_level,
                    "responsible_worker_id": flagged["responsible_worker_id"],
                },
            )

        try:

            def flag(session):
                self.db[store.MEMBERSHIPS].insert_one(membership, session=session)
                announce(membership)

            self.changes(flag)
        except DuplicateKeyError:
            existing = self.db[store.MEMBERSHIPS].find_one(
                {"resident_id": resident_id, "group": group, "active": True}
            )
            if existing is None:  # the clashing membership was cleared in between
                raise Conflict("group: the membership changed meanwhile; try again") from None
            changes = {
                "risk_level": risk_level,
                "responsible_worker_id": str(responsible_worker_id),
            }
            if all(existing[key] == value for key, value in changes.items()):
                return render_membership(existing)  # a retried request
            membership = {**existing, **changes}

            def update_flag(session):
                self.db[store.MEMBERSHIPS].update_one(
                    {"_id": existing["_id"]}, {"$set": changes}, session=session
                )
                announce(membership)

            self.changes(update_flag)
        return render_membership(membership)

    def clear_group(self, membership_id: str, reason: str) -> dict:
        self.require(access.GROUP_WRITERS, "clearing group membership")
        membership = self._membership(membership_id)
        if not reason or not str(reason).strip():
            raise InvalidInput("reason", "is required")
        if not membership["active"]:
            return render_membership(membership)
        return render_membership(self._clear_membership(membership_id, str(reason).strip()))

    def _clear_membership(self, membership_id: str, reason: str) -> Mapping:
        def clear(session):
            updated = self.db[store.MEMBERSHIPS].find_one_and_update(
                {"_id": membership_id, "active": True},
                {
                    "$set": {
                        "active": False,
                        "cleared_at": self.clock(),
                        "cleared_by": self.caller.user_id,
                        "cleared_reason": reason[:500],
                    }
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if updated is not None:
                self.publish(
                    topics.GROUP_CLEARED,
                    updated["grid_code"],
                    {
                        "membership_id": membership_id,
                        "resident_id": updated["resident_id"],
                        "group": updated["group"],
                    },
                )
            return updated

        updated = self.changes(clear)
        if updated is None:  # cleared meanwhile by another request: nothing to announce
            return self.db[store.MEMBERSHIPS].find_one({"_id": membership_id})
        return updated

    def _membership(self, membership_id: str) -> Mapping:
        self.require(access.GROUP_READERS, "reading group membership")
        doc = self.db[store.MEMBERSHIPS].find_one({"_id": membership_id})
        return self._visible(doc, "membership", membership_id)

    def list_group_members(
        self,
        code: str,
        group: str | None = None,
        risk_level: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict:
        self.require(access.GROUP_READERS, "reading group membership")
        level_of(code)
        query: dict = {"path": code, "active": True}
        if group:
            groups.group_kind(group)
            query["group"] = group
        if risk_level:
            query["risk_level"] = groups.check_risk_level(risk_level)
        return self._page(store.MEMBERSHIPS, query, cursor, limit, render_membership)

    def set_visit_rule(self, group: str, risk_level: str, visits_per_month: int) -> dict:
        self.require(access.ADMINISTRATORS, "setting visit rules")
        groups.group_kind(group)
        groups.check_risk_level(risk_level)
        if not isinstance(visits_per_month, int) or not 0 <= visits_per_month <= 31:
            raise InvalidInput("visits_per_month", "must be an integer from 0 to 31")
        key = groups.rule_key(group, risk_level)
        self.db[store.VISIT_RULES].update_one(
            {"_id": key}, {"$set": {"visits_per_month": visits_per_month}}, upsert=True
        )
        return self.visit_rules()

    def visit_rules(self) -> dict[str, int]:
        rules = groups.default_visit_rules()
        rules.update(
            {doc["_id"]: doc["visits_per_month"] for doc in self.db[store.VISIT_RULES].find()}
        )
        return rules

    def record_visit(self, raw: Mapping, idempotency_key: str | None = None) -> dict:
        """A retry finds the first attempt's visit by the client's `visit_id` or, without
        one, by the request's Idempotency-Key."""
        self.require(access.VISITORS, "recording visits")
        membership = self._membership(str(raw.get("membership_id") or ""))
        if not membership["active"]:
            raise Conflict("membership_id: the membership was cleared")
        at = raw.get("at")
        try:
            visited_at = datetime.fromisoformat(at) if isinstance(at, str) else None
        except ValueError:
            visited_at = None
        if visited_at is None or visited_at.tzinfo is None or visited_at.year < 2000:
            raise InvalidInput("at", "must be an ISO 8601 time with a UTC offset, from 2000")
        visited_at = visited_at.astimezone(UTC)
        if visited_at > self.clock():
            raise InvalidInput("at", "is in the future")
        location = raw.get("location")
        lon, lat = _point(location)
        media_ids = raw.get("media_ids") or []
        if not isinstance(media_ids, list) or not all(isinstance(m, str) for m in media_ids):
            raise InvalidInput("media_ids", "must be a list of media ids")
        visit_id = str(raw.get("visit_id") or "")
        if not visit_id:
            visit_id = (
                uuid.uuid4().hex
                if idempotency_key is None
                else keyed_id("visit", self.caller.user_id or "", idempotency_key)
            )
        request_print = fingerprint(raw)
        patrol_id = raw.get("patrol_id")
        if patrol_id is not None:
            patrol_id = patrols.patrol_id(patrol_id)
        document = {
            "_id": visit_id,
            "membership_id": membership["_id"],
            "resident_id": membership["resident_id"],
            "group": membership["group"],
            "risk_level": membership["risk_level"],
            "worker_id": self.caller.user_id,
            "at": visited_at,
            "period": groups.period_of(visited_at),
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "notes": str(raw.get("notes") or "").strip()[:2000] or None,
            "media_ids": media_ids,
            "grid_code": membership["grid_code"],
            "path": membership["path"],
            "recorded_at": self.clock(),
            "patrol_id": patrol_id,
            "request_fingerprint": request_print,
        }
        try:

            def record(session):
                self.db[store.VISITS].insert_one(document, session=session)
                if patrol_id is not None:  # made on a patrol: listed on it
                    link_to_patrol(
                        self.db,
                        session,
                        patrol_id,
                        "visit",
                        visit_id,
                        self.caller.user_id,
                        visited_at,
                    )
                self.publish(
                    topics.VISIT_RECORDED,
                    membership["grid_code"],
                    {
                        "visit_id": visit_id,
                        "membership_id": membership["_id"],
                        "resident_id": membership["resident_id"],
                        "group": membership["group"],
                        "risk_level": membership["risk_level"],
                        "worker_id": self.caller.user_id,
                        "at": visited_at.isoformat(),
                        "period": document["period"],
                        "location": document["location"],
                        "media_ids": media_ids,
                        "patrol_id": patrol_id,
                    },
                )

            self.changes(record)
        except DuplicateKeyError:  # the client's visit_id or the key: a retried upload
            first = self.db[store.VISITS].find_one({"_id": visit_id})
            if not raw.get("visit_id"):  # a phone's own id answers its visit as it was
                check_replay(first, request_print)
            return _render_visit(first)
        return _render_visit(document)

    def visits_of(self, membership_id: str) -> list[dict]:
        self._membership(membership_id)
        rows = self.db[store.VISITS].find({"membership_id": membership_id}).sort("at", -1)
        return [_render_visit(row) for row in rows]

    def visit_worklist(self, worker_id: str | None = None, period: str | None = None) -> dict:
        """A grid worker's visits due this period and the obligations already missed."""
        self.require(access.GROUP_READERS, "reading visit worklists")
        worker_id = worker_id or self.caller.user_id
        now = self.clock()
        period = period or groups.period_of(now)
        rules = self.visit_rules()
        memberships = list(
            self.db[store.MEMBERSHIPS].find(
                {
                    "responsible_worker_id": worker_id,
                    "active": True,
                    **access.scope_filter(self.caller),
                }
            )
        )
        previous = groups.previous_periods(groups.period_bounds(period)[0], 1)[0]
        done = self._visit_counts([m["_id"] for m in memberships], [period, previous])
        due, overdue = [], []
        for membership in memberships:
            required = groups.required_visits(rules, membership["group"], membership["risk_level"])
            current = groups.VisitObligation(
                membership["_id"], period, required, done.get((membership["_id"], period), 0)
            )
            if not current.met:
                due.append(
                    {
                        **render_membership(membership),
                        "required": required,
                        "done": current.done,
                        "remaining": current.remaining,
                    }
                )
            last = groups.VisitObligation(
                membership["_id"], previous, required, done.get((membership["_id"], previous), 0)
            )
            if groups.obligation_applies(membership["flagged_at"], previous) and not last.met:
                overdue.append(
                    {
                        **render_membership(membership),
                        "period": previous,
                        "required": required,
                        "done": last.done,
                        "missing": last.remaining,
                    }
                )
        return {"worker_id": worker_id, "period": period, "due": due, "overdue": overdue}

    def _visit_counts(self, membership_ids: list[str], periods: list[str]) -> dict:
        rows = self.db[store.VISITS].aggregate(
            [
                {"$match": {"membership_id": {"$in": membership_ids}, "period": {"$in": periods}}},
                {"$group": {"_id": {"m": "$membership_id", "p": "$period"}, "n": {"$sum": 1}}},
            ]
        )
        return {(row["_id"]["m"], row["_id"]["p"]): row["n"] for row in rows}

    def publish_overdue_visits(self, periods_back: int = 3) -> int:
        """Publish `visit.overdue` once per membership and missed month (the notice
        document's key makes a second run, or a second replica, publish nothing)."""
        now = self.clock()
        rules = self.visit_rules()
        published = 0
        missing: dict[str, int] = {}  # visits owed per township, for /metrics
        for period in groups.previous_periods(now, periods_back):
            start, _ = groups.period_bounds(period)
            memberships = list(
                self.db[store.MEMBERSHIPS].find(
                    {
                        "flagged_at": {"$lte": start},
                        "$or": [{"active": True}, {"cleared_at": {"$gt": start}}],
                    }
                )
            )
            done = self._visit_counts([m["_id"] for m in memberships], [period])
            self._publish_obligations(period, memberships, rules, done, now)
            for membership in memberships:
                required = groups.required_visits(
                    rules, membership["group"], membership["risk_level"]
                )
                count = done.get((membership["_id"], period), 0)
                if count >= required:
                    continue
                township = membership["grid_code"][: CODE_LENGTHS["township"]]
                missing[township] = missing.get(township, 0) + required - count
                notice = {"_id": f"{membership['_id']}:{period}", "at": now}
                data = {
                    "membership_id": membership["_id"],
                    "resident_id": membership["resident_id"],
                    "group": membership["group"],
                    "risk_level": membership["risk_level"],
                    "responsible_worker_id": membership["responsible_worker_id"],
                    "period": period,
                    "required": required,
                    "done": count,
                }
                try:
                    self._mark_and_announce(
                        notice, topics.VISIT_OVERDUE, membership["grid_code"], data
                    )
                except DuplicateKeyError:  # announced before (another run or replica)
                    continue
                published += 1
        publish_visit_backlog(missing)
        return published

    def _publish_obligations(self, period, memberships, rules, done, now) -> int:
        """Publish `visit.obligations` for each grid and ended month: visits required and
        done (each person's capped at their need) per responsible worker and risk level,
        the denominator of the assessment's visit coverage."""
        by_grid: dict[str, dict[tuple[str, str], list[int]]] = {}
        for membership in memberships:
            required = groups.required_visits(rules, membership["group"], membership["risk_level"])
            if required == 0:
                continue
            count = min(done.get((membership["_id"], period), 0), required)
            key = (membership["responsible_worker_id"], membership["risk_level"])
            totals = by_grid.setdefault(membership["grid_code"], {}).setdefault(key, [0, 0])
            totals[0] += required
            totals[1] += count
        published = 0
        for grid_code, totals in sorted(by_grid.items()):
            notice = {"_id": f"obligations:{grid_code}:{period}", "at": now}
            if self.db[store.OVERDUE_NOTICES].find_one({"_id": notice["_id"]}) is not None:
                continue
            rows = [
                {"worker_id": worker, "risk_level": risk, "required": required, "done": count}
                for (worker, risk), (required, count) in sorted(totals.items())
            ]
            data = {"grid_code": grid_code, "period": period, "rows": rows}
            try:
                self._mark_and_announce(notice, topics.VISIT_OBLIGATIONS, grid_code, data)
            except DuplicateKeyError:  # another replica announced it meanwhile
                continue
            published += 1
        return published

    def _mark_and_announce(self, notice: dict, topic: str, subject: str, data: dict) -> None:
        """A notice's mark (its key makes it once) and its event, or neither."""

        def mark(session) -> None:
            self.db[store.OVERDUE_NOTICES].insert_one(notice, session=session)
            self.publish(topic, subject, data)

        self.changes(mark)


def _point(location) -> tuple[float, float]:
    if (
        not isinstance(location, Mapping)
        or location.get("type") != "Point"
        or not isinstance(location.get("coordinates"), list | tuple)
        or len(location["coordinates"]) != 2
    ):
        raise InvalidInput("location", "must be a GeoJSON Point [longitude, latitude]")
    lon, lat = location["coordinates"]
    for name, value, bound in (("longitude", lon, 180), ("latitude", lat, 90)):
        if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > bound:
            raise InvalidInput("location", f"{name} must be a number from -{bound} to {bound}")
    return float(lon), float(lat)


def render_membership(doc: Mapping) -> dict:
    return {
        "id": doc["_id"],
        "resident_id": doc["resident_id"],
        "group": doc["group"],
        "kind": doc["kind"],
        "risk_level": doc["risk_level"],
        "responsible_worker_id": doc["responsible_worker_id"],
        "grid_code": doc["grid_code"],
        "active": doc["active"],
        "flagged_at": iso_time(doc.get("flagged_at")),
        "cleared_at": iso_time(doc.get("cleared_at")),
    }


def _render_visit(doc: Mapping) -> dict:
    return {
        "id": doc["_id"],
        "membership_id": doc["membership_id"],
        "resident_id": doc["resident_id"],
        "worker_id": doc["worker_id"],
        "at": iso_time(doc["at"]),
        "period": doc["period"],
        "location": doc["location"],
        "notes": doc.get("notes"),
        "media_ids": doc.get("media_ids", []),
        "patrol_id": doc.get("patrol_id"),
    }
