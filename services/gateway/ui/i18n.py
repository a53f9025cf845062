"""Chinese by default, every string from a gettext catalogue (flask-babel), times in
China time.

The catalogues' sources are the `.po` files under translations/; their compiled `.mo`
files are build products (git-ignored), made from the sources when the gateway starts
if missing or older (`compile_catalogues`, also run by the Dockerfile so a read-only
image has them). An English catalogue is `translations/en/LC_MESSAGES/messages.po`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask_babel import Babel, format_datetime
from flask_babel import lazy_gettext as _l

from gridwork_common import roles
from gridwork_common.clock import CHINA_TIME

TRANSLATIONS = Path(__file__).parent / "translations"
DEFAULT_LOCALE = "zh_CN"


class _CatalogueLocale(Locale):
    """CLDR's zh_Hans_CN (its dates and numbers) named zh_CN, like its catalogue's
    directory: gettext finds the catalogue by the locale's name, and Locale.parse("zh_CN")
    would be named zh_Hans_CN."""

    def __str__(self) -> str:
        return DEFAULT_LOCALE


def _chinese() -> Locale:
    locale = Locale("zh", territory="CN", script="Hans")  # Locale() checks CLDR by name
    locale.__class__ = _CatalogueLocale
    return locale


CHINESE = _chinese()
# flask-babel wants a zone name; CHINA_TIME is the same fixed UTC+8 (no daylight saving).
TIMEZONE = "Asia/Shanghai"

ROLE_LABELS = {
    roles.GRID_WORKER: _l("Grid worker"),
    roles.GRID_LEADER: _l("Grid leader"),
    roles.CENTRE_OPERATOR: _l("Centre operator"),
    roles.DEPARTMENT_HANDLER: _l("Department handler"),
    roles.LEADER: _l("Leader"),
    roles.ADMIN: _l("Administrator"),
    roles.SYSTEM: _l("System"),
}

log = logging.getLogger("gridwork.gateway")


def compile_catalogues(directory: Path = TRANSLATIONS) -> list[Path]:
    """Compile every messages.po whose .mo is missing or older; returns those compiled.
    Written to a temporary file and renamed, so gunicorn workers starting together never
    read half a file."""
    compiled = []
    for source in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        target = source.with_suffix(".mo")
        if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
            continue
        with source.open("rb") as po:
            catalogue = read_po(po)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".mo.tmp")
        with os.fdopen(handle, "wb") as mo:
            write_mo(mo, catalogue)
        os.replace(temporary, target)
        compiled.append(target)
    return compiled


def install_i18n(app: Flask) -> None:
    try:
        compile_catalogues()
    except OSError:  # a read-only install: the build compiled them (see the Dockerfile)
        log.warning("message catalogues not compiled at start", exc_info=True)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(
        app,
        default_locale=DEFAULT_LOCALE,
        default_timezone=TIMEZONE,
        locale_selector=lambda: CHINESE,
        timezone_selector=lambda: TIMEZONE,
    )
    app.jinja_env.filters["china_time"] = china_time
    app.jinja_env.filters["role_label"] = role_label


def china_time(moment: datetime | str | None, format: str = "yyyy-MM-dd HH:mm") -> str:
    """An instant (aware datetime or ISO 8601 text, as the services send) in China time."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return format_datetime(moment.astimezone(CHINA_TIME), format)


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))
