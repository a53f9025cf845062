"""The phone app's shell in-process (Flask test client, real mongod): the manifest and the
service worker are public (the browser fetches them by itself), the worker lists the
shell's files under a version that follows their content, the page is for grid staff
and may send photos to the object store, nothing more."""

import re

import pytest

from gridwork_common.clock import utc_now
from services.gateway.app import create_app
from services.gateway.auth import Identity
from services.gateway.store import gateway_db
from services.gateway.ui import phone

pytestmark = pytest.mark.integration
PASSWORD = "the right password"


def signed_in(settings, username: str, user_roles: list[str]):
    Identity(gateway_db(settings), settings).create_user(
        username, PASSWORD, user_roles, settings.county_code, None
    )
    client = create_app(settings, utc_now).test_client()
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    client.post("/login", data={"csrf_token": token, "username": username, "password": PASSWORD})
    return client


def test_the_manifest_and_the_service_worker_need_no_session(settings):
    client = create_app(settings, utc_now).test_client()
    manifest = client.get("/app/manifest.webmanifest")
    assert manifest.status_code == 200 and manifest.mimetype == "application/manifest+json"
    assert manifest.get_json()["start_url"] == "/app/"
    worker = client.get("/app/sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    script = worker.get_data(as_text=True)
    assert f'"{phone.shell_version()}"' in script
    for path in ("/app/", "/ui/static/phone/app.js", "/ui/vendor/leaflet/leaflet.js"):
        assert f'"{path}"' in script


def test_the_page_is_for_grid_staff_and_may_upload_to_the_store(settings):
    worker = signed_in(settings, "shell-worker", ["grid_worker"])
    page = worker.get("/app/")
    assert page.status_code == 200
    # The routes the app's script calls, named on the page, are the gateway's (the map's
    # grids route once moved under it: the page failed to render).
    urls = dict(re.findall(r'data-([a-z-]+)="(/[^"?]*)"', page.get_data(as_text=True)))
    assert "grids" in urls
    routes = worker.application.url_map.bind("localhost")
    for name, url in urls.items():
        assert routes.test(url, method="GET"), f"data-{name}: {url} is no route"
    assert page.headers["Cache-Control"] == "no-store"
    policy = page.headers["Content-Security-Policy"]
    assert f"connect-src 'self' http://{settings.s3_public_endpoint};" in policy
    assert "script-src 'self';" in policy
    # Elsewhere the command centre keeps connect-src to itself.
    assert "connect-src 'self';" in worker.get("/").headers["Content-Security-Policy"]

    leader = signed_in(settings, "shell-leader", ["leader"])
    assert leader.get("/app/").status_code == 403
