"""The command centre's main pages, who sees each, and where each lives.

Page engineers mount their page at its `path` (a blueprint of their own, registered in
services/gateway/ui/__init__.py); the navigation and the home page link there for the
roles listed. Hiding a link is a convenience, not the control: the view checks roles
(`requires_roles`) and the services check roles and scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from gridwork_common import roles


@dataclass(frozen=True)
class Section:
    key: str
    label: object  # a lazy translation
    path: str
    roles: tuple[str, ...]
    description: object = ""

    def visible_to(self, caller_roles) -> bool:
        return any(role in self.roles for role in caller_roles)


SECTIONS = (
    Section(
        "map",
        _l("Map"),
        "/map",
        (roles.CENTRE_OPERATOR, roles.LEADER, roles.GRID_LEADER, roles.GRID_WORKER, roles.ADMIN),
        _l("Grids, cases and people on one map"),
    ),
    Section(
        "cases",
        _l("Cases"),
        "/cases",
        (
            roles.CENTRE_OPERATOR,
            roles.DEPARTMENT_HANDLER,
            roles.LEADER,
            roles.GRID_LEADER,
            roles.GRID_WORKER,
        ),
        _l("Case queues and case pages"),
    ),
    Section(
        "population",
        _l("Population"),
        "/population",
        (roles.CENTRE_OPERATOR, roles.LEADER, roles.GRID_LEADER, roles.GRID_WORKER),
        _l("Territory, residents and special groups"),
    ),
    Section(
        "assessment",
        _l("Assessment"),
        "/assessment",
        # the readers of /api/v1/assessment (administrators too, without the link)
        (roles.LEADER, roles.CENTRE_OPERATOR),
        _l("Scorecards, rankings and bulletins"),
    ),
    Section(
        "administration",
        _l("Administration"),
        "/admin",
        (roles.ADMIN,),
        _l("Users, catalogue, deadlines and webhooks"),
    ),
    Section(
        "app",
        _l("Phone app"),
        "/app/",
        (roles.GRID_WORKER, roles.GRID_LEADER),
        _l("Reports, visits, verifications and patrols in the field, also offline"),
    ),
)


def sections_for(caller_roles) -> list[Section]:
    return [section for section in SECTIONS if section.visible_to(caller_roles)]
