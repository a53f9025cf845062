"""The population service's use cases in one object. The nameko service builds one per
call with the caller's context and hands the call to the method of the same name."""

from services.population.usecases.audit import AuditUseCases
from services.population.usecases.base import utc_now
from services.population.usecases.groups import GroupUseCases
from services.population.usecases.map_outlines import MapOutlineUseCases
from services.population.usecases.places import PlaceUseCases
from services.population.usecases.residents import ResidentUseCases
from services.population.usecases.territory import STAFF_ROLES, TerritoryUseCases


class Population(
    TerritoryUseCases,
    MapOutlineUseCases,
    ResidentUseCases,
    PlaceUseCases,
    GroupUseCases,
    AuditUseCases,
):
    """Territory and the map's outlines, residents, places, groups and visits, and the
    access audit."""


__all__ = ["STAFF_ROLES", "Population", "utc_now"]
