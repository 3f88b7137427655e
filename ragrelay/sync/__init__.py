"""Sources kept in sync with a tenant's documents: a directory tree and a PostgreSQL query
(``ragrelay sync dir|postgres``). Each run diffs the source against its manifest and sends
only what changed, and what was deleted, through the documents ingest. docs/documents.md.
"""

from ragrelay.sync.engine import Candidate, SyncReport, run_sync
from ragrelay.sync.manifest import Manifest

__all__ = ["Candidate", "Manifest", "SyncReport", "run_sync"]
