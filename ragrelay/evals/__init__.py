"""Evaluation harnesses (composition roots: they may use both orchestrator and workers)."""
