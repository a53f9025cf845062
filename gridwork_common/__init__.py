"""What several Gridwork services share: configuration, dependency providers, the event
envelope, caller context and logging. Nothing here knows any single service's domain."""
