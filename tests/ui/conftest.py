"""Browser tests of the command centre (marker `ui`): the whole stack as real processes
(tests/stack.py, as in tests/e2e) seeded with a small demo county and one demo user per
role, driven by Playwright through Debian's chromium (never `playwright install`).

Every page a test opens fails the test on a console error, an uncaught exception or a
Content-Security-Policy violation, unless the test allows that message
(`console.allow(pattern)`, e.g. the 404 of an error page it opens on purpose).

Every process of the stack, and the browser, runs on a clock pinned at the stack's instant
(tests/stack.py STACK_PINNED_AT: the first morning of a month in China, still the previous
month in UTC); a test dates what it sends by `ui_stack["clock"]`, never by the machine's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from eventlet import patcher
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from devstack.demo import DEMO_PASSWORD, demo_users, seed
from services.population.demo import demo_territory
from tests.conftest import settings_env
from tests.stack import running_stack

CHROMIUM = "/usr/bin/chromium"
VIEWPORTS = {"desktop": (1440, 900), "big-screen": (1920, 1080)}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
UI_RESIDENTS = 300  # a few per grid: enough to show, fast to import
SERIOUS = ("serious", "critical")
# Reports a violation in the console even where Chromium's own message is not logged.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "ui: drives the command centre in a real browser against the whole stack"
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(config, items):
    """Every test here is marked `ui`. Under eventlet's monkey-patching (the rest of the
    suite needs it) Playwright's sync API hangs: there the browser tests are skipped,
    saying how they run (`make test` runs them in a second pytest process)."""
    here = Path(__file__).parent
    patched = patcher.is_monkey_patched("thread")
    skip = pytest.mark.skip(
        reason="browser tests run without eventlet: GRIDWORK_TEST_EVENTLET=0 pytest -m ui tests/ui"
    )
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.ui)
            if patched:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def ui_stack(infra, request, vhost_pipeline, tmp_path_factory):
    """The stack, started once for every browser test, with the demo county seeded
    through the services' own entrypoints (devstack/demo.py) and its demo users."""
    amqp = request.config.getoption("RABBIT_AMQP_URI").rstrip("/")
    with vhost_pipeline.get() as vhost:
        # Webhooks may target the tests' own receiver on 127.0.0.1, and a delivery is
        # dead after its first failure (the dead-letter page's test needs one, quickly).
        env = settings_env(
            infra,
            f"{amqp}/{vhost}",
            LOG_LEVEL="INFO",
            WEBHOOK_ALLOW_PRIVATE_URLS="true",
            WEBHOOK_MAX_ATTEMPTS="1",
        )
        with running_stack(env, tmp_path_factory.mktemp("ui-stack")) as stack:
            territory = demo_territory(stack["settings"].county_code)
            stack["seeded"] = seed(
                stack["settings"].nameko_config(), residents=UI_RESIDENTS, say=lambda _: None
            )
            stack["territory"] = territory
            stack["users"] = demo_users(territory)  # username -> (roles, scope, department)
            stack["password"] = DEMO_PASSWORD
            yield stack


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@dataclass
class Console:
    """What the page said in its console that counts as an error."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern] = field(default_factory=list)
    reported: int = 0  # errors already judged when the test body ended

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self, since: int = 0) -> list[str]:
        return [e for e in self.errors[since:] if not any(p.search(e) for p in self.allowed)]


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request) -> str:
    return request.param


@pytest.fixture
def console(request) -> Console:
    request.node.ui_console = console = Console()
    return console


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A console error fails the test itself (reported as its failure, not an error in
    teardown); what arrives later still fails it in the `page` fixture's teardown."""
    outcome = yield
    console = getattr(item, "ui_console", None)
    if console is not None and outcome.excinfo is None:
        unexpected = console.unexpected()
        console.reported = len(console.errors)
        if unexpected:
            outcome.force_exception(
                AssertionError("browser console errors:\n" + "\n".join(unexpected))
            )


def pinned_context(browser: Browser, stack: dict, **options) -> BrowserContext:
    """A new browser context whose clock (`Date`, timers) is the stack's: it starts at the
    stack's pinned clock (the services' time) and runs on in real time, so what the
    browser dates "now" is the services' now."""
    context = browser.new_context(**options)
    context.clock.install(time=stack["clock"]())
    return context


@pytest.fixture
def page(browser, viewport, console, ui_stack) -> Page:
    """A fresh browser context (no cookies) at each size, its clock (`Date`, timers) the
    stack's pinned clock; fails the test on console errors, page errors and CSP
    violations."""
    width, height = VIEWPORTS[viewport]
    context = pinned_context(
        browser,
        ui_stack,
        viewport={"width": width, "height": height},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    context.add_init_script(CSP_LISTENER)
    opened = context.new_page()
    opened.on(
        "console",
        lambda message: console.errors.append(message.text) if message.type == "error" else None,
    )
    opened.on("pageerror", lambda error: console.errors.append(f"page error: {error}"))
    yield opened
    context.close()
    unexpected = console.unexpected(since=console.reported)
    if unexpected:
        pytest.fail("browser console errors:\n" + "\n".join(unexpected), pytrace=False)


def sign_in(page: Page, stack: dict, username: str, password: str | None = None) -> None:
    page.goto(f"{stack['gateway']}/login")
    page.fill("#username", username)
    page.fill("#password", password or stack["password"])
    with page.expect_navigation():
        page.click("button[type=submit]")


def assert_accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    results = Axe().run(page)
    serious = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} "
        f"{[node['target'] for node in violation['nodes']][:3]}"
        for violation in results.response["violations"]
        if violation.get("impact") in SERIOUS
    ]
    assert not serious, "axe-core:\n" + "\n".join(serious)


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot kept under var/screenshots/ (git-ignored) as an artefact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    path = SCREENSHOTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
