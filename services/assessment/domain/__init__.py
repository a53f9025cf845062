"""Pure domain logic of the assessment service: no I/O."""
