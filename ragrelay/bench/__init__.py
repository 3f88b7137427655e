"""Benchmarks: orchestration overhead against raw Celery, and I/O-bound efficiency, measured.

The ``ragrelay bench`` commands are in ``ragrelay/cli/bench.py``.
"""
