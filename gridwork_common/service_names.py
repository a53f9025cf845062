"""The nameko service names: the RPC targets and the event sources every caller names.

One place, so a gateway route, a page and a service's `name` cannot drift apart."""

POPULATION = "population"
EVENTS = "events"
MEDIA = "media"
ASSESSMENT = "assessment"

ALL = (POPULATION, EVENTS, MEDIA, ASSESSMENT)
