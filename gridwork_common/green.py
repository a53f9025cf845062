"""Import this first in every nameko process entry point (services, tests, benchmarks).

It monkey-patches the standard library for eventlet before anything imports socket or
threading, and drops eventlet's deprecation notice, which would otherwise break the
one-JSON-object-per-line log stream of every service at start.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()
