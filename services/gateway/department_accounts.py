"""Departments' own RabbitMQ users: an administrator creates one per integrating
department (the password is shown once) and revokes it (the user is deleted and its
connections closed). Who created and who revoked each account, and when, is kept in the
gateway's `amqp_accounts` collection (the audit an administrator lists).

`DepartmentAccounts` is the use case; `AccountRecords` the only code touching the
collection; `BrokerAdmin` the broker; `department_access` the permission rules.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common.clock import Clock, utc_now
from gridwork_common.errors import Conflict, InvalidInput, NotFound
from gridwork_common.idempotency import check_replay, fingerprint, keyed_id, keyed_secret
from services.gateway import department_access
from services.gateway.broker_admin import BrokerAdmin

AMQP_ACCOUNTS = "amqp_accounts"
INDEXES = {
    AMQP_ACCOUNTS: [
        # At most one account in force per department.
        IndexModel(
            [("department", ASCENDING)],
            name="department_in_force",
            unique=True,
            partialFilterExpression={"revoked_at": None},
        ),
        IndexModel([("created_at", DESCENDING)], name="created_at"),
        # The account a request made under its Idempotency-Key (found by the retry).
        IndexModel(
            [("request_id", ASCENDING)],
            name="request_id",
            unique=True,
            partialFilterExpression={"request_id": {"$type": "string"}},
        ),
    ]
}

log = logging.getLogger("gridwork.gateway")


class AccountRecords:
    def __init__(self, db: Database):
        self.collection = db[AMQP_ACCOUNTS]

    def add(self, account: dict) -> None:
        try:
            self.collection.insert_one({**account, "revoked_at": None})
        except DuplicateKeyError:
            raise Conflict(
                f"department: {account['department']} already has an AMQP account; revoke it first"
            ) from None

    def made_under(self, request_id: str) -> dict | None:
        """The account a request with this Idempotency-Key made, if any."""
        return self.collection.find_one({"request_id": request_id})

    def forget(self, username: str) -> None:
        """An account whose broker user could not be made."""
        self.collection.delete_one({"_id": username})

    def in_force(self, department: str) -> dict | None:
        return self.collection.find_one({"department": department, "revoked_at": None})

    def mark_revoked(self, username: str, revoked_by: str, revoked_at) -> dict | None:
        self.collection.update_one(
            {"_id": username, "revoked_at": None},
            {"$set": {"revoked_by": revoked_by, "revoked_at": revoked_at}},
        )
        return self.collection.find_one({"_id": username})

    def latest(self, limit: int = 500) -> list[dict]:
        return list(self.collection.find().sort("created_at", DESCENDING).limit(limit))


class DepartmentAccounts:
    def __init__(
        self,
        records: AccountRecords,
        broker: BrokerAdmin,
        vhost: str,
        secret_key: bytes,
        clock: Clock = utc_now,
    ):
        self.records = records
        self.broker = broker
        self.vhost = vhost
        self.secret_key = secret_key  # derives a keyed request's password
        self.clock = clock

    def create(
        self,
        department: Mapping,
        territory: str | None,
        created_by: str,
        idempotency_key: str | None = None,
    ) -> dict:
        """`department` as the events service lists it (code, territory_code, ...).
        Returns the account with its password, which is not kept anywhere: under an
        Idempotency-Key the password is derived from the key (`keyed_secret`), so a retry
        after a lost answer finds the first account and shows the same password."""
        code = department["code"]
        if territory is not None and not (
            department_access.TERRITORY.fullmatch(territory)
            and territory.startswith(department["territory_code"])
        ):
            raise InvalidInput(
                "territory", f"must be {department['territory_code']} or a territory within it"
            )
        password = department_access.new_password()
        request_id = request_print = None
        if idempotency_key is not None:
            password = keyed_secret(
                self.secret_key,
                "amqp_account",
                created_by,
                idempotency_key,
                department_access.PASSWORD_BYTES,
            )
            request_id = keyed_id("amqp_account", created_by, idempotency_key)
            request_print = fingerprint({"department": code, "territory": territory})
            first = self.records.made_under(request_id)
            if first is not None:
                check_replay(first, request_print)
                if first.get("revoked_at") is None:
                    # The first attempt may have died before the broker knew the user:
                    # setting it up again is harmless (each call is a PUT).
                    self._set_up_broker_user(first["_id"], password, code, territory)
                return {**present(first), "password": password}
        name = department_access.username(code)
        account = {
            "_id": name,
            "department": code,
            "territory": territory,
            "vhost": self.vhost,
            "created_by": created_by,
            "created_at": self.clock(),
        }
        if request_id is not None:
            account |= {"request_id": request_id, "request_fingerprint": request_print}
        self.records.add(account)  # first: a second create for the department is refused
        try:
            self._set_up_broker_user(name, password, code, territory)
        except Exception:
            # Not made: free the department for a retry, and undo what the broker has
            # if it can be reached (a stray user has no password anyone knows).
            self.records.forget(name)
            with contextlib.suppress(Exception):
                self.broker.delete_user(name)
            raise
        log.info("amqp account created", extra={"account": name, "department": code})
        return {**present(account), "password": password}

    def _set_up_broker_user(
        self, name: str, password: str, code: str, territory: str | None
    ) -> None:
        self.broker.create_user(name, password)
        self.broker.set_permissions(self.vhost, name, department_access.resource_permissions(code))
        self.broker.set_topic_permissions(
            self.vhost, name, department_access.topic_permissions(code, territory)
        )

    def revoke(self, department: str, revoked_by: str) -> dict:
        account = self.records.in_force(department)
        if account is None:
            raise NotFound(f"department {department} has no AMQP account in force")
        # The user first, so nothing reconnects; then what is still connected.
        self.broker.delete_user(account["_id"])
        self.broker.close_connections(account["_id"])
        revoked = self.records.mark_revoked(account["_id"], revoked_by, self.clock())
        log.info(
            "amqp account revoked", extra={"account": account["_id"], "department": department}
        )
        return present(revoked)

    def accounts(self) -> list[dict]:
        return [present(account) for account in self.records.latest()]


def present(account: Mapping) -> dict:
    """An account as the API shows it (never a password: none is kept)."""
    code, territory = account["department"], account.get("territory")
    return {
        "username": account["_id"],
        "department": code,
        "territory": territory,
        "vhost": account["vhost"],
        "exchange": department_access.EXCHANGE,
        "queue_prefix": department_access.queue_prefix(code),
        "binding_prefix": department_access.binding_prefix(code, territory),
        "created_by": account["created_by"],
        "created_at": _iso(account["created_at"]),
        "revoked_by": account.get("revoked_by"),
        "revoked_at": _iso(account.get("revoked_at")),
    }


def _iso(instant) -> str | None:
    if instant is None:
        return None
    return (
        instant.isoformat().replace("+00:00", "Z") if instant.tzinfo else instant.isoformat() + "Z"
    )
