"""The gateway's route families, one module each: `register(api)` declares its operations
on a new blueprint and returns it; app.py lists the modules in FAMILIES."""
