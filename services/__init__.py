"""Gridwork's services. Each subpackage is one service; none imports another."""
