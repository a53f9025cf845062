"""The command centre's foundations in a real browser: sign-in and sign-out, the session
cookie, CSRF, the Content-Security-Policy, the home page in Chinese, accessibility and
the error pages (out of scope / unknown → 404, a service not answering → 503)."""

from __future__ import annotations

import re
import signal

import pytest
import requests

from services.gateway.auth import Identity
from services.gateway.store import gateway_db
from services.gateway.ui.sessions import COOKIE_NAME
from tests.ui.conftest import assert_accessible, screenshot, sign_in

pytestmark = pytest.mark.ui

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_session(stack: dict, username: str, password: str | None = None) -> requests.Session:
    """A signed-in session as a browser would make it (CSRF token from the form)."""
    client = requests.Session()
    form = client.get(f"{stack['gateway']}/login", timeout=10)
    token = CSRF_FIELD.search(form.text).group(1)
    answer = client.post(
        f"{stack['gateway']}/login",
        data={"csrf_token": token, "username": username, "password": password or stack["password"]},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return client


def test_sign_in_shows_the_home_page_in_chinese_with_a_strict_session_cookie(page, ui_stack):
    sign_in(page, ui_stack, "village-centre")
    assert page.url == f"{ui_stack['gateway']}/"
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.inner_text("h1") == "欢迎，village-centre"
    assert page.inner_text("#roles") == "综治中心操作员"
    village = ui_stack["users"]["village-centre"][1]
    assert page.inner_text("#area").endswith(f"（{village}）")
    assert "退出登录" in page.inner_text("header")

    (cookie,) = [c for c in page.context.cookies() if c["name"] == COOKIE_NAME]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http here; Secure behind TLS (see below)
    # No token a script could read: the page's JS sees no session cookie.
    assert COOKIE_NAME not in page.evaluate("document.cookie")
    assert_accessible(page)
    screenshot(page, "home-village-centre")


def test_sign_out_ends_the_session_on_the_server(page, ui_stack, browser):
    sign_in(page, ui_stack, "leader")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == COOKIE_NAME]
    page.click("text=退出登录")
    page.wait_for_url(re.compile(r"/login$"))
    assert page.inner_text("h1") == "登录"

    # The old cookie, replayed by another client, now gets the login page.
    replay = requests.get(
        f"{ui_stack['gateway']}/",
        cookies={COOKIE_NAME: cookie["value"]},
        allow_redirects=False,
        timeout=10,
    )
    assert replay.status_code == 302
    assert replay.headers["Location"].startswith("/login")


def test_the_navigation_shows_each_role_its_pages(page, ui_stack):
    sign_in(page, ui_stack, "grid-worker")
    links = page.locator("nav.main-nav a").all_inner_texts()
    assert links == ["一张图", "事件办理", "人口管理", "手机端"]  # scorecards: leaders, centres
    assert page.inner_text("#roles") == "网格员"
    assert page.locator("[data-section=administration]").count() == 0
    assert_accessible(page)
    screenshot(page, "home-grid-worker")


@pytest.mark.parametrize("viewport", ["desktop"])
def test_an_administrator_sees_administration_only(page, ui_stack):
    sign_in(page, ui_stack, "admin")
    assert page.locator("nav.main-nav a").all_inner_texts() == ["一张图", "系统管理"]
    assert page.inner_text("#roles") == "系统管理员"


def test_the_login_page_is_accessible_and_refuses_a_wrong_password(page, ui_stack, console):
    console.allow(r"status of 401")  # the refused login's answer, on purpose
    page.goto(f"{ui_stack['gateway']}/login")
    assert_accessible(page)
    screenshot(page, "login")
    page.fill("#username", "leader")
    page.fill("#password", "not the password")
    with page.expect_response(re.compile(r"/login$")) as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    assert page.inner_text("[role=alert]") == "用户名或密码错误。"
    assert page.input_value("#username") == "leader"


def test_content_security_policy_on_ui_pages_and_the_api_unchanged(ui_stack):
    gateway = ui_stack["gateway"]
    login = requests.get(f"{gateway}/login", timeout=10)
    policy = login.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["img-src"].startswith("'self' data: blob: http://")
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "<script>" not in login.text and " style=" not in login.text
    # The JSON API keeps its own headers.
    health = requests.get(f"{gateway}/healthz", timeout=10)
    assert (
        health.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert COOKIE_NAME not in health.cookies
    # The browser libraries are served from node_modules (npm ci), only their dist files.
    htmx = requests.get(f"{gateway}/ui/vendor/htmx/htmx.min.js", timeout=10)
    assert htmx.status_code == 200 and "htmx" in htmx.text
    leaflet = requests.get(f"{gateway}/ui/vendor/leaflet/leaflet.css", timeout=10)
    assert leaflet.status_code == 200 and ".leaflet-container" in leaflet.text
    outside = requests.get(f"{gateway}/ui/vendor/leaflet/../package.json", timeout=10)
    assert outside.status_code == 404


def test_a_post_without_the_csrf_token_is_refused(ui_stack):
    gateway = ui_stack["gateway"]
    anonymous = requests.Session()
    anonymous.get(f"{gateway}/login", timeout=10)
    refused = anonymous.post(
        f"{gateway}/login",
        data={"username": "leader", "password": ui_stack["password"]},
        allow_redirects=False,
        timeout=10,
    )
    assert refused.status_code == 403
    assert "无权操作" in refused.text

    signed_in = form_session(ui_stack, "leader")
    home = signed_in.get(f"{gateway}/", timeout=10)
    token = CSRF_META.search(home.text).group(1)
    no_token = signed_in.post(f"{gateway}/logout", allow_redirects=False, timeout=10)
    assert no_token.status_code == 403
    wrong = signed_in.post(
        f"{gateway}/logout",
        headers={"X-CSRFToken": "not-the-token"},
        allow_redirects=False,
        timeout=10,
    )
    assert wrong.status_code == 403
    assert signed_in.get(f"{gateway}/", allow_redirects=False, timeout=10).status_code == 200
    # htmx sends the page's token in a header (static/gridwork.js): accepted.
    out = signed_in.post(
        f"{gateway}/logout", headers={"X-CSRFToken": token}, allow_redirects=False, timeout=10
    )
    assert out.status_code == 302
    assert signed_in.get(f"{gateway}/", allow_redirects=False, timeout=10).status_code == 302


def test_the_api_ignores_browser_sessions_and_needs_no_csrf(ui_stack):
    gateway = ui_stack["gateway"]
    signed_in = form_session(ui_stack, "leader")
    # A session cookie is not an API credential.
    assert signed_in.get(f"{gateway}/api/v1/auth/me", timeout=10).status_code == 401
    tokens = requests.post(
        f"{gateway}/api/v1/auth/token",
        json={"grant_type": "password", "username": "leader", "password": ui_stack["password"]},
        timeout=10,
    )
    assert tokens.status_code == 200  # a POST with no CSRF token: the API is unchanged


def test_the_login_form_has_the_api_rate_limits(ui_stack):
    settings = ui_stack["settings"]
    Identity(gateway_db(settings), settings).create_user(
        "form-guesser", "the right password", ["leader"], settings.county_code, None
    )
    client = requests.Session()
    token = CSRF_FIELD.search(client.get(f"{ui_stack['gateway']}/login", timeout=10).text).group(1)

    def attempt(password):
        return client.post(
            f"{ui_stack['gateway']}/login",
            data={"csrf_token": token, "username": "form-guesser", "password": password},
            allow_redirects=False,
            timeout=10,
        )

    statuses = [attempt("wrong password").status_code for _ in range(settings.login_limit_per_user)]
    assert statuses == [401] * settings.login_limit_per_user
    limited = attempt("the right password")  # over the limit: refused before checking
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "登录失败次数过多" in limited.text


def test_a_reset_password_or_disabled_account_ends_its_browser_sessions(ui_stack):
    settings = ui_stack["settings"]
    identity = Identity(gateway_db(settings), settings)
    identity.create_user("to-disable", "the right password", ["leader"], settings.county_code, None)
    client = form_session(ui_stack, "to-disable", "the right password")
    assert (
        client.get(f"{ui_stack['gateway']}/", allow_redirects=False, timeout=10).status_code == 200
    )
    identity.update_user("to-disable", {"disabled": True})
    ended = client.get(f"{ui_stack['gateway']}/", allow_redirects=False, timeout=10)
    assert ended.status_code == 302 and ended.headers["Location"].startswith("/login")


@pytest.mark.parametrize("viewport", ["desktop"])
def test_an_unknown_address_is_the_ui_404_page_and_the_api_keeps_problem_json(
    page, ui_stack, console
):
    console.allow(r"status of 404")
    sign_in(page, ui_stack, "leader")
    answer = page.goto(f"{ui_stack['gateway']}/no-such-page")
    assert answer.status == 404
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert page.inner_text("h1") == "未找到"
    assert_accessible(page)
    api = requests.get(f"{ui_stack['gateway']}/api/v1/no-such-thing", timeout=10)
    assert api.status_code == 404
    assert api.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("viewport", ["desktop"])
def test_a_service_that_does_not_answer_gives_the_503_page(page, ui_stack, console):
    console.allow(r"status of 503")
    sign_in(page, ui_stack, "leader")
    population = ui_stack["processes"]["population"]
    population.signal(signal.SIGSTOP)  # alive but silent: the RPC times out
    try:
        answer = page.goto(f"{ui_stack['gateway']}/")
    finally:
        population.signal(signal.SIGCONT)
    assert answer.status == 503
    assert answer.headers["retry-after"] == "5"
    assert page.inner_text("h1") == "服务暂时不可用"
    screenshot(page, "error-503")


@pytest.mark.parametrize("viewport", ["desktop"])
def test_htmx_requests_carry_the_csrf_token_from_the_page(page, ui_stack):
    """static/gridwork.js puts the meta tag's token on every htmx request: an htmx POST
    to sign out is accepted (without the token it would be the 403 page)."""
    sign_in(page, ui_stack, "leader")
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    with page.expect_response(re.compile(r"/logout$")) as answered:
        page.evaluate("htmx.ajax('POST', '/logout', {target: 'main', swap: 'none'})")
    assert answered.value.request.headers["x-csrftoken"] == token
    assert answered.value.status == 302  # accepted: to the login page
    page.goto(f"{ui_stack['gateway']}/")
    assert page.url.startswith(f"{ui_stack['gateway']}/login")
