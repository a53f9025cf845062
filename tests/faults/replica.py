"""`python -m tests.faults.replica <service>`: one replica of a Gridwork service as a real
process, exactly as `python -m services.<service>` runs it, except that it reads the
test's clock: FAULTS_PINNED_AT (ISO 8601) at the wall-clock instant FAULTS_CLOCK_ORIGIN
(Unix seconds), running on from there. Every replica, and one restarted later, reads the
same time, so a scenario needing a time (a month's end, a deadline, a lease that runs
out) never depends on the day it runs, and a restart does not turn the clock back.

With FAULTS_FAST_TIMERS=1 the deadline timer and the month-end publication fire every
FAST_INTERVAL_S instead of every 30 s and hourly: two replicas started together then run
them at the same moments again and again during a scenario."""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import os
import sys
from datetime import UTC, datetime

from nameko.cli.run import run
from nameko.timer import timer

from gridwork_common.clock import CLOCK_CONFIG_KEY, PinnedClock, utc_now
from gridwork_common.config import settings_or_exit
from gridwork_common.logs import configure_logging
from services.assessment.service import AssessmentService
from services.events.service import EventsService
from services.media.configuration import media_rules
from services.media.service import MediaService
from services.population.service import PopulationService

FAST_INTERVAL_S = 0.5


class FastTimersEvents(EventsService):
    @timer(interval=FAST_INTERVAL_S)
    def check_deadlines(self):
        return super().check_deadlines()


class FastTimersAssessment(AssessmentService):
    @timer(interval=FAST_INTERVAL_S)
    def monthly_bulletin(self):
        return super().monthly_bulletin()


SERVICES = {
    "population": (PopulationService, PopulationService),
    "events": (EventsService, FastTimersEvents),
    "media": (MediaService, MediaService),
    "assessment": (AssessmentService, FastTimersAssessment),
}


def main(name: str) -> None:
    settings = settings_or_exit()
    configure_logging(name, settings.log_level)
    if name == "media":
        media_rules(settings)
    ordinary, fast = SERVICES[name]
    service_cls = fast if os.environ.get("FAULTS_FAST_TIMERS") == "1" else ordinary
    pinned_at = datetime.fromisoformat(os.environ["FAULTS_PINNED_AT"])
    origin = datetime.fromtimestamp(float(os.environ["FAULTS_CLOCK_ORIGIN"]), UTC)
    clock = PinnedClock(pinned_at + (utc_now() - origin))
    run([service_cls], {**settings.nameko_config(), CLOCK_CONFIG_KEY: clock})


if __name__ == "__main__":
    main(sys.argv[1])
