"""The command centre's pieces that need no server: how service errors become pages,
the Content-Security-Policy, the redirect after login, the catalogue compilation."""

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import Flask
from nameko.exceptions import RemoteError, RpcTimeout

from services.gateway.ui import i18n
from services.gateway.ui.pages import (
    Conflict,
    FormError,
    Page,
    PageForbidden,
    PageNotFound,
    Unavailable,
    ui_error,
)
from services.gateway.ui.security import content_security_policy


@pytest.mark.parametrize(
    ("exc_type", "message", "expected"),
    [
        ("NotFound", "no incident abc", PageNotFound),
        ("Forbidden", "needs centre_operator", PageForbidden),
        ("NotPermitted", "not in this state", PageForbidden),
        ("StaleVersion", "version: is 3, not 2", Conflict),
        ("IllegalTransition", "cannot close a reported case", Conflict),
        ("InvalidInput", "reason: required", FormError),
        ("OutsideTerritory", "location: outside the county", FormError),
        ("Unavailable", "mongod", Unavailable),
        ("RpcTimeout", "population", Unavailable),
    ],
)
def test_service_errors_become_the_pages_a_browser_sees(exc_type, message, expected):
    assert type(ui_error(RemoteError(exc_type, message))) is expected


def test_invalid_input_names_its_field_for_the_form():
    error = ui_error(RemoteError("InvalidField", "reason: must be 2 to 500 characters"))
    assert isinstance(error, FormError)
    assert error.errors == {"reason": "reason: must be 2 to 500 characters"}
    conflict = ui_error(RemoteError("StaleVersion", "version: is 3, not 2"))
    assert conflict.kind == "StaleVersion"


def test_a_bug_in_a_service_stays_a_bug():
    bug = RemoteError("KeyError", "'grid'")
    assert ui_error(bug) is bug  # the 500 page, logged; never taken for a form error


def test_rpc_timeouts_met_by_the_gateway_are_unavailable():
    class TimingOut:
        def call(self, *args, **kwargs):
            raise RpcTimeout()

    app = Flask("t")
    app.extensions["rpc"] = TimingOut()
    with app.app_context(), pytest.raises(Unavailable):
        Page(caller=None).rpc("population", "get_territory", "530402")


@dataclass
class _Settings:
    s3_public_endpoint: str
    s3_public_secure: bool


def test_the_policy_allows_only_this_site_and_the_photo_store():
    policy = content_security_policy(_Settings("photos.county.example:9000", True))
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["img-src"] == "'self' data: blob: https://photos.county.example:9000"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


def test_the_catalogue_compiles_once_and_again_when_its_source_changes(tmp_path):
    source = i18n.TRANSLATIONS / "zh_CN" / "LC_MESSAGES" / "messages.po"
    target_dir = tmp_path / "zh_CN" / "LC_MESSAGES"
    target_dir.mkdir(parents=True)
    shutil.copy(source, target_dir / "messages.po")
    assert i18n.compile_catalogues(tmp_path) == [target_dir / "messages.mo"]
    assert i18n.compile_catalogues(tmp_path) == []
    translations = Translations.load(str(tmp_path), [i18n.CHINESE])
    assert translations.gettext("Sign in") == "登录"
    assert str(i18n.CHINESE) == "zh_CN" and i18n.CHINESE.script == "Hans"
    assert not list(Path(target_dir).glob("*.tmp"))


def test_every_message_has_its_chinese():
    source = i18n.TRANSLATIONS / "zh_CN" / "LC_MESSAGES" / "messages.po"
    with source.open("rb") as po:
        catalogue = read_po(po)
    untranslated = [m.id for m in catalogue if m.id and not m.string]
    assert not untranslated


def test_times_are_shown_in_china_time():
    app = Flask("t")
    i18n.install_i18n(app)
    with app.test_request_context():
        assert i18n.china_time("2026-11-18T16:30:00+00:00") == "2026-11-19 00:30"
        assert i18n.china_time(None) == ""
        assert i18n.role_label("grid_worker") == "网格员"
