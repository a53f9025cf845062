"""Export and import of a county's data (databases and media): `python -m gridwork_backup`."""
