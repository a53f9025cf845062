"""Pure domain logic of the population service: no I/O."""
