"""The four stage workers (analysis, retrieval, generation, evaluation) and ingestion."""

__all__: list[str] = []
