"""The gateway's route families, one module each: `register(api)` declares its operations
on a new blueprint and returns it; app.py lists the modules in FAMILIES.

A family past about 500 lines is a package instead (population/, incidents/): a module a
subject, each laid out as a family module (its models, then `register(api, blueprint)`),
what they share in shared.py, and the package's `register(api)` calling them in order on
one blueprint (the order the OpenAPI document lists the operations in)."""
