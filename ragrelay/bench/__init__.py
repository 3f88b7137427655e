"""``ragrelay bench``: orchestration overhead and I/O-bound efficiency, measured."""

from ragrelay.cli.bench import bench

__all__ = ["bench"]
