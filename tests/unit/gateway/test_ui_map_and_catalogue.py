"""Pure parts of the map and catalogue pages: the map's viewport parameter, and the
form fields the catalogue item form shows the API's and the events service's
complaints next to."""

import pytest

from services.gateway.ui.admin_catalogue import form_field, service_field
from services.gateway.ui.grid_map import viewport
from services.gateway.ui.pages import FormError


def test_the_viewport_is_four_finite_numbers_or_nothing():
    assert viewport(None) is None and viewport("") is None
    assert viewport("102.1,24.5,102.6,24.7") == [102.1, 24.5, 102.6, 24.7]
    for bad in ("1,2,3", "a,b,c,d", "1,2,3,nan", "1,2,3,inf", "1,2,3,4,5"):
        with pytest.raises(FormError) as refused:
            viewport(bad)
        assert refused.value.field == "bbox"


def test_complaints_land_on_the_item_forms_fields():
    # the API's model (pydantic locations)
    assert form_field(("time_limits", "urgent", "accept")) == "urgent_accept"
    assert form_field(("owners", "township")) == "owner_township"
    assert form_field(("code",)) == "code"
    # the events service's field names, with the item's place or code in front
    assert service_field("entries[12].time_limits.urgent.accept") == "urgent_accept"
    assert service_field("entries.04.01.owners.village") == "owner_village"
    assert service_field("entries[0].name") == "name"
    assert service_field("categories.04") == "category_name"
    assert service_field(None) == ""
