"""Keep credentials that arrive in an address out of uvicorn's access log.

No route takes a key in the address any more (``/ui`` signs browsers in with a form), but an
old bookmark or a script may still send ``/ui/jobs/ID?key=rr_...``; uvicorn writes the
request line, query string and all, before any route refuses it. ``RedactQuerySecrets``
rewrites that line: the value of a credential-named parameter, and anything shaped like a
ragrelay key wherever it is, become ``[redacted]``. ``ragrelay serve`` installs it.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"
SECRET_PARAMS = ("key", "api_key", "apikey", "token", "access_token", "session")

_PARAM = re.compile(r"([?&](?:" + "|".join(SECRET_PARAMS) + r")=)[^&#\s]*", re.IGNORECASE)
_API_KEY = re.compile(r"rr_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")


def redact_target(target: str) -> str:
    """``target`` (a request's path and query) with credentials replaced."""
    return _API_KEY.sub(REDACTED, _PARAM.sub(r"\1" + REDACTED, target))


class RedactQuerySecrets(logging.Filter):
    """For ``uvicorn.access``, whose arguments are (client, method, path?query, version,
    status): redact the path's query."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_target(args[2]), *args[3:])
        return True


def install(logger_name: str = ACCESS_LOGGER) -> None:
    """Add the filter to uvicorn's access logger (once)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactQuerySecrets) for f in logger.filters):
        logger.addFilter(RedactQuerySecrets())


__all__ = ["RedactQuerySecrets", "install", "redact_target"]
