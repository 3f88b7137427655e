"""Test fakes that are honest about what they are; each module says what it fakes.

Among them:

* :mod:`tests.fakes.embedder` — a deterministic hashing embedder (no model; texts that
  share words get close vectors). Good for tests, useless for judging quality.
* :mod:`tests.fakes.weaviate_server` — a loopback Weaviate (REST in
  :mod:`tests.fakes.weaviate_rest`, gRPC on the stubs inside weaviate-client, search logic
  in :mod:`tests.fakes.weaviate_logic`) keeping objects in memory and recording requests.
"""
