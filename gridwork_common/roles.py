"""The roles a caller can hold (carried in the RPC context; assigned by the gateway)."""

GRID_WORKER = "grid_worker"  # 网格员: collects data, visits, reports and verifies incidents
GRID_LEADER = "grid_leader"  # 网格长
CENTRE_OPERATOR = "centre_operator"  # a village, township or county centre's operator
DEPARTMENT_HANDLER = "department_handler"  # handles cases dispatched to a department
LEADER = "leader"  # leaders and assessors: read-only
ADMIN = "admin"
SYSTEM = "system"  # other services and timers acting on their own behalf

ALL = (GRID_WORKER, GRID_LEADER, CENTRE_OPERATOR, DEPARTMENT_HANDLER, LEADER, ADMIN, SYSTEM)
