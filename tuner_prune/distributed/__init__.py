"""Distributed search: chief, workers, leases."""
