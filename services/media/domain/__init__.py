"""Pure domain logic of the media service: no I/O."""
