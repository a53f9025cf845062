import pytest

from tests.integration.gateway.conftest import PASSWORD

pytestmark = pytest.mark.integration


def test_tokens_identify_the_user_and_refresh_rotates(client):
    issued = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "username": "worker-a1", "password": PASSWORD},
    ).get_json()
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {issued['access_token']}"}
    ).get_json()
    assert me["username"] == "worker-a1" and me["roles"] == ["grid_worker"]
    refreshed = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
    )
    assert refreshed.status_code == 200
    again = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
    )
    assert again.status_code == 401
    assert again.mimetype == "application/problem+json"


def test_wrong_passwords_are_rate_limited_per_user(client):
    for _ in range(5):
        wrong = client.post(
            "/api/v1/auth/token",
            json={"grant_type": "password", "username": "leader", "password": "wrong password"},
        )
        assert wrong.status_code == 401
    limited = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "username": "leader", "password": PASSWORD},
    )
    assert limited.status_code == 429


def test_tampered_revoked_and_missing_tokens_are_refused(client, token):
    good = token("admin")
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for bad in ("", "Bearer nonsense", f"Bearer {tampered}"):
        response = client.get("/api/v1/auth/me", headers={"Authorization": bad})
        assert response.status_code == 401
    headers = {"Authorization": f"Bearer {good}"}
    assert client.post("/api/v1/auth/logout", json={}, headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_administrators_manage_users_and_others_cannot(as_user):
    admin = as_user("admin")
    created = admin.post(
        "/api/v1/users",
        key="u1",
        json={
            "username": "new-worker",
            "password": "a long password",
            "roles": ["grid_worker"],
            "scope": "530402001001002",
        },
    )
    assert created.status_code == 201
    replay = admin.post(
        "/api/v1/users",
        key="u1",
        json={
            "username": "new-worker",
            "password": "a long password",
            "roles": ["grid_worker"],
            "scope": "530402001001002",
        },
    )
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    bad = admin.post(
        "/api/v1/users",
        key="u2",
        json={"username": "x1x", "password": "a long password", "roles": ["king"]},
    )
    assert bad.status_code == 400 and bad.get_json()["field"].startswith("roles")
    assert as_user("leader").get("/api/v1/users").status_code == 403
    disabled = admin.patch("/api/v1/users/new-worker", json={"disabled": True})
    assert disabled.get_json()["disabled"] is True


def test_openapi_document_lists_the_routes(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert "/api/v1/auth/token" in document["paths"]
    assert client.get("/api/v1/docs").status_code == 200


def test_logins_and_actions_are_published_for_the_assessment_service(as_user, account_events):
    admin = as_user("admin")  # logs in
    admin.post(
        "/api/v1/users",
        key="act-1",
        json={"username": "someone", "password": "a long password", "roles": ["leader"]},
    )
    seen = account_events()
    assert [event.type for event in seen] == ["gridwork.account.login", "gridwork.account.action"]
    assert seen[0].data["user_id"] == "admin"
    assert seen[1].data["route"] == "/api/v1/users" and seen[1].data["status"] == 201


def test_an_expired_access_token_is_refused(client, settings):
    from datetime import timedelta

    import time_machine

    from services.gateway.auth import Identity
    from services.gateway.store import gateway_db
    from tests.conftest import PINNED_AT

    def token_issued_at(moment):
        past = Identity(gateway_db(settings), settings, clock=lambda: moment)
        return past._issue(past.user("worker-a1"))["access_token"]  # valid 15 minutes

    def me(token):
        return client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})

    # pyjwt checks expiry against the system time: time-machine pins it.
    with time_machine.travel(PINNED_AT, tick=True):
        expired = me(token_issued_at(PINNED_AT - timedelta(minutes=16)))
        assert me(token_issued_at(PINNED_AT - timedelta(minutes=14))).status_code == 200
    assert expired.status_code == 401
    assert expired.get_json()["detail"] == "the access token has expired"
