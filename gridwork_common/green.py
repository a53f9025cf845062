"""Import this first in every nameko process entry point (services, tests, benchmarks).

It monkey-patches the standard library for eventlet before anything imports socket or
threading (the package's __init__ has already silenced eventlet's deprecation notice).
"""

import eventlet

eventlet.monkey_patch()
