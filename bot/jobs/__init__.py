"""Periodic and scheduled work: what runs (registry.py, builtin.py), when (scheduler.py, APScheduler) and where
(leader.py: cluster-wide jobs in exactly one process)."""
