"""Pure domain logic of the events service: no I/O."""
