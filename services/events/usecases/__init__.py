"""The events service's use cases: the county's setup (catalogue, departments, calendar)
and the incident loop with its deadlines and queries."""
