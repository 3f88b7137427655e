"""Test fakes that are honest about what they are.

* :mod:`tests.fakes.embedder` — a deterministic hashing embedder (no model; similar texts
  share tokens, so their vectors are close). Good for tests, useless for quality.
* :mod:`tests.fakes.weaviate_server` — a loopback server speaking the parts of Weaviate's
  REST and gRPC APIs that ragrelay's Weaviate store uses, keeping objects in memory.
"""
