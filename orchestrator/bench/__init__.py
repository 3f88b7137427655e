"""``ragrelay bench``: orchestration overhead and I/O-bound efficiency, measured."""

from orchestrator.bench.cli import bench

__all__ = ["bench"]
