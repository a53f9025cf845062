"""Repositories: the population service's only code touching pymongo for new use cases."""
