"""Patrols (巡查): started, tracked in pieces and finished from a phone that may be offline
for hours, so every step is idempotent: the phone makes the patrol's id, a piece is keyed
by its sequence number, and a finish repeated with the same end answers the same patrol.

A patrol belongs to the grid worker who walks it and to their grid's territory (scope as
everywhere: outside it, a patrol does not exist). Its figures (distance, grids crossed,
flags, the track drawn) are read again from all the raw points whenever a piece arrives;
`patrol.finished` is announced once, a later change of the figures as `patrol.updated`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from gridwork_common.clock import Clock
from gridwork_common.context import CallerContext
from gridwork_common.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridwork_common.paging import page_limit
from gridwork_common.territory import CODE_LENGTHS
from services.population import topics
from services.population.domain import access, patrols
from services.population.domain.codes import level_of, path_codes
from services.population.domain.groups import period_bounds, period_of
from services.population.domain.tracks import decode, encode
from services.population.repositories.patrols import (
    AlreadyStored,
    PatrolRepository,
    PatrolWrites,
    piece_key,
)
from services.population.usecases.base import iso_time

GRID_LENGTH = CODE_LENGTHS["grid"]
MAX_TRACKS = 500  # tracks drawn on one map at once


class PatrolDesk:
    def __init__(
        self,
        repository: PatrolRepository,
        caller: CallerContext,
        county_code: str,
        clock: Clock,
    ):
        self.patrols = repository
        self.caller = caller
        self.county_code = county_code
        self.clock = clock

    # ------------------------------------------------------------------ starting
    def start(self, patrol_id, started_at, grid_code=None) -> dict:
        """{"patrol": ..., "created": bool}: created now, or the same patrol again."""
        self._require(patrols.PATROLLERS, "walking patrols")
        patrol_id = patrols.patrol_id(patrol_id)
        started = patrols.moment(started_at, "started_at")
        existing = self.patrols.patrol(patrol_id)
        if existing is not None:
            return {"patrol": self._replayed_start(existing, started, grid_code), "created": False}
        grid = self._own_grid(grid_code)
        now = self.clock()
        document = {
            "_id": patrol_id,
            "worker_id": self.caller.user_id,
            "grid_code": grid,
            "path": path_codes(grid),
            "state": patrols.RUNNING,
            "started_at": started,
            "ended_at": None,
            "period": period_of(started),
            "pieces": [],
            "point_count": 0,
            "distance_m": 0.0,
            "flags": [],
            "track": None,
            "grid_codes": [],
            "finished_announced": False,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self.patrols.in_transaction(lambda writes: writes.insert_patrol(document))
        except AlreadyStored:  # the same start, retried concurrently
            stored = self.patrols.patrol(patrol_id)
            return {"patrol": self._replayed_start(stored, started, grid_code), "created": False}
        return {"patrol": self._render(document), "created": True}

    def _own_grid(self, grid_code) -> str:
        if grid_code is None:
            scope = self.caller.scope or ""
            if len(scope) != GRID_LENGTH:
                raise InvalidInput("grid_code", "is required: the grid the patrol is in")
            grid_code = scope
        if not isinstance(grid_code, str) or level_of(grid_code, "grid_code") != "grid":
            raise InvalidInput("grid_code", "must be a 15-digit grid code")
        if self.patrols.grid(grid_code) is None or not access.sees(self.caller, grid_code):
            raise NotFound(f"no grid {grid_code}")
        return grid_code

    def _replayed_start(self, existing: Mapping, started: datetime, grid_code) -> dict:
        self._own(existing)
        if _utc(existing["started_at"]) != started:
            raise Conflict(
                f"started_at: patrol {existing['_id']} started at "
                f"{iso_time(_utc(existing['started_at']))}"
            )
        if grid_code is not None and grid_code != existing["grid_code"]:
            raise Conflict(f"grid_code: patrol {existing['_id']} is in {existing['grid_code']}")
        return self._render(existing)

    # ------------------------------------------------------------------ the track
    def put_track(self, patrol_id, piece, points) -> dict:
        """Store piece number `piece` of the raw track; the same piece again answers the
        same, a different one under the same number is a conflict."""
        self._require(patrols.PATROLLERS, "walking patrols")
        patrol_id = patrols.patrol_id(patrol_id)
        piece = patrols.piece_number(piece)
        parsed = patrols.track_points(points)
        encoded = encode(parsed)
        self._own(self.patrols.patrol(patrol_id))
        stored = self.patrols.piece(patrol_id, piece)
        if stored is None:
            document = {
                "_id": piece_key(patrol_id, piece),
                "patrol_id": patrol_id,
                "piece": piece,
                "points": encoded,
                "received_at": self.clock(),
            }
            try:
                self.patrols.in_transaction(lambda writes: self._add_piece(writes, document))
            except AlreadyStored:  # the same piece, retried concurrently
                stored = self.patrols.piece(patrol_id, piece)
        if stored is not None and stored["points"] != encoded:
            raise Conflict(f"points: piece {piece} of patrol {patrol_id} was sent with others")
        return {"patrol_id": patrol_id, "piece": piece, "point_count": len(parsed)}

    def _add_piece(self, writes: PatrolWrites, document: dict) -> None:
        writes.insert_piece(document)
        self._refigure(writes, document["patrol_id"], {})

    # ------------------------------------------------------------------ finishing
    def finish(self, patrol_id, ended_at) -> dict:
        self._require(patrols.PATROLLERS, "walking patrols")
        patrol_id = patrols.patrol_id(patrol_id)
        ended = patrols.moment(ended_at, "ended_at")
        patrol = self._own(self.patrols.patrol(patrol_id))
        if patrol["state"] == patrols.FINISHED:
            if _utc(patrol["ended_at"]) != ended:
                raise Conflict(
                    f"ended_at: patrol {patrol_id} ended at {iso_time(_utc(patrol['ended_at']))}"
                )
            return self._render(patrol)
        if ended < _utc(patrol["started_at"]):
            raise InvalidInput("ended_at", "is before the patrol started")

        def finish(writes: PatrolWrites) -> dict:
            current = writes.patrol(patrol_id)
            if current["state"] == patrols.FINISHED:  # finished meanwhile by a retry
                return current
            return self._refigure(writes, patrol_id, {"state": patrols.FINISHED, "ended_at": ended})

        finished = self.patrols.in_transaction(finish)
        if _utc(finished["ended_at"]) != ended:
            raise Conflict(
                f"ended_at: patrol {patrol_id} ended at {iso_time(finished['ended_at'])}"
            )
        return self._render(finished)

    def _refigure(self, writes: PatrolWrites, patrol_id: str, changes: dict) -> dict:
        """Read the figures again from every piece, save them with `changes`, and announce
        the finish once (or, after it, a change of the figures)."""
        patrol = {**writes.patrol(patrol_id), **changes}
        pieces = writes.pieces(patrol_id)
        points = [point for piece in pieces for point in decode(piece["points"])]
        finished = patrol["state"] == patrols.FINISHED
        figures = patrols.figures(points, finished)
        geometry = patrols.coverage_geometry(figures.track, points)
        grid_codes = (
            self.patrols.grids_crossed(self.county_code, geometry) if geometry is not None else []
        )
        updated = {
            **changes,
            **figures.as_fields(),
            "pieces": [piece["piece"] for piece in pieces],
            "grid_codes": grid_codes,
            "updated_at": self.clock(),
        }
        before = _announced_figures(patrol)
        patrol.update(updated)
        if finished and not patrol["finished_announced"]:
            updated["finished_announced"] = patrol["finished_announced"] = True
            self._announce(writes, topics.PATROL_FINISHED, patrol)
        elif finished and _announced_figures(patrol) != before:
            self._announce(writes, topics.PATROL_UPDATED, patrol)
        writes.save_patrol(patrol_id, updated)
        return patrol

    def _announce(self, writes: PatrolWrites, topic: str, patrol: Mapping) -> None:
        links = self.patrols.links(patrol["_id"], patrol["worker_id"])
        writes.announce(
            topic,
            patrol["grid_code"],
            {
                "patrol_id": patrol["_id"],
                "worker_id": patrol["worker_id"],
                "grid_code": patrol["grid_code"],
                "grid_codes": patrol["grid_codes"],
                "distance_m": patrol["distance_m"],
                "duration_s": patrols.duration_s(
                    _utc(patrol["started_at"]), _utc(patrol["ended_at"])
                ),
                "started_at": iso_time(_utc(patrol["started_at"])),
                "ended_at": iso_time(_utc(patrol["ended_at"])),
                "point_count": patrol["point_count"],
                "flags": patrol["flags"],
                "incident_ids": links["incident"],
                "visit_ids": links["visit"],
            },
        )

    # ------------------------------------------------------------------ links
    def link_incident(self, data: Mapping) -> bool:
        """An `incident.reported` event naming a patrol: note the incident on it. The
        link stands whether or not the patrol has reached the server yet (a phone syncs
        in any order); only the patrol's own worker's records are listed on it."""
        try:
            patrol_id = patrols.patrol_id(data.get("patrol_id"))
        except InvalidInput:
            return False
        incident_id, reporter = data.get("incident_id"), data.get("reporter_id")
        if not isinstance(incident_id, str) or not isinstance(reporter, str):
            return False
        try:
            at = patrols.moment(data.get("reported_at"), "reported_at")
        except InvalidInput:
            at = self.clock()
        self.patrols.in_transaction(
            lambda writes: writes.link(patrol_id, "incident", incident_id, reporter, at)
        )
        return True

    # ------------------------------------------------------------------ reading
    def get(self, patrol_id) -> dict:
        self._require(patrols.READERS, "reading patrols")
        patrol_id = patrols.patrol_id(patrol_id)
        return self._render(self._visible(self.patrols.patrol(patrol_id), patrol_id))

    def list(self, worker_id=None, grid_code=None, period=None, cursor=None, limit=50) -> dict:
        self._require(patrols.READERS, "reading patrols")
        limit = page_limit(limit)
        query: dict = {}
        if worker_id is not None:
            query["worker_id"] = self.caller.user_id if worker_id == "me" else str(worker_id)
        if grid_code is not None:
            if not isinstance(grid_code, str) or level_of(grid_code, "grid_code") != "grid":
                raise InvalidInput("grid_code", "must be a 15-digit grid code")
            query["grid_code"] = grid_code
        if period is not None:
            period_bounds(period)  # a month like 2026-11, else InvalidInput naming it
            query["period"] = period
        rows = self.patrols.page(access.within_scope(self.caller, query), cursor, limit)
        return {
            "items": [self._render(row) for row in rows],
            "next_cursor": rows[-1]["_id"] if len(rows) == limit else None,
        }

    def tracks(self, code, period) -> dict:
        """The patrols of a month under a territory node, as a GeoJSON FeatureCollection
        of their simplified tracks (the command centre's map layer)."""
        self._require(patrols.READERS, "reading patrols")
        level_of(code)
        if not access.sees(self.caller, code):
            raise NotFound(f"no territory {code}")
        period_bounds(period)
        rows = self.patrols.with_tracks(
            access.within_scope(self.caller, {"path": code, "period": period}), MAX_TRACKS
        )
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": row["_id"],
                    "geometry": row["track"],
                    "properties": {
                        "patrol_id": row["_id"],
                        "worker_id": row["worker_id"],
                        "grid_code": row["grid_code"],
                        "state": row["state"],
                        "started_at": iso_time(_utc(row["started_at"])),
                        "ended_at": iso_time(_utc(row.get("ended_at"))),
                        "distance_m": row["distance_m"],
                        "flags": row["flags"],
                    },
                }
                for row in rows
            ],
        }

    # ------------------------------------------------------------------ helpers
    def _require(self, allowed: tuple[str, ...], action: str) -> None:
        if not self.caller.has_role(*allowed):
            raise Forbidden(f"{action} needs one of the roles: {', '.join(allowed)}")

    def _visible(self, patrol: Mapping | None, patrol_id: str) -> Mapping:
        if patrol is None or not access.sees(self.caller, patrol["grid_code"]):
            raise NotFound(f"no patrol {patrol_id}")
        return patrol

    def _own(self, patrol: Mapping | None) -> Mapping:
        """A patrol the caller walks: another worker's, or one out of scope, is not there
        for them (a worker records only their own patrols)."""
        if patrol is None or patrol["worker_id"] != self.caller.user_id:
            raise NotFound("no such patrol of yours")
        return self._visible(patrol, patrol["_id"])

    def _render(self, doc: Mapping) -> dict:
        links = self.patrols.links(doc["_id"], doc["worker_id"])
        started, ended = _utc(doc["started_at"]), _utc(doc.get("ended_at"))
        return {
            "id": doc["_id"],
            "worker_id": doc["worker_id"],
            "grid_code": doc["grid_code"],
            "state": doc["state"],
            "started_at": iso_time(started),
            "ended_at": iso_time(ended),
            "distance_m": doc["distance_m"],
            "duration_s": patrols.duration_s(started, ended),
            "grid_codes": doc["grid_codes"],
            "flags": doc["flags"],
            "incident_ids": links["incident"],
            "visit_ids": links["visit"],
            "track": doc["track"],
            "point_count": doc["point_count"],
        }


def _announced_figures(patrol: Mapping) -> tuple:
    return (
        patrol.get("distance_m"),
        tuple(patrol.get("grid_codes") or ()),
        tuple(patrol.get("flags") or ()),
        patrol.get("point_count"),
    )


def _utc(moment: datetime | None) -> datetime | None:
    """mongod hands datetimes back naive (in UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
