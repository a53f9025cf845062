"""The population service's use cases, one module per part of the domain."""
