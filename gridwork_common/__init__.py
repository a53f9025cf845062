"""What several Gridwork services share: configuration, dependency providers, the event
envelope, caller context and logging. Nothing here knows any single service's domain."""

import warnings

# nameko imports eventlet, whose deprecation notice would break the one-JSON-object-per-
# line log stream of every process; every entry point imports this package first.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
