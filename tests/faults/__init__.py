"""The fault suite's parts: a bounded load generator that keeps a history of what clients
asked and were answered (`load`), the stack it runs against with two replicas of the
service under attack (`cluster`), what the databases and a webhook receiver saw
(`observe`), and a reconciliation of the two in the manner of Jepsen's queue checker
(`checker`, pure, unit-tested in tests/unit/test_fault_checker.py)."""
