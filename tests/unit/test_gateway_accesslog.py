"""Credentials in a request's address are redacted from uvicorn's access line."""

from __future__ import annotations

import logging

import pytest

from orchestrator.gateway.accesslog import RedactQuerySecrets, redact_target

KEY = "rr_0123456789ab_" + "A1b2-_" * 7 + "x"


@pytest.mark.parametrize(("target", "expected"), [
    (f"/ui/jobs/j1?key={KEY}", "/ui/jobs/j1?key=[redacted]"),
    (f"/ui/jobs/j1?a=1&KEY={KEY}&b=2", "/ui/jobs/j1?a=1&KEY=[redacted]&b=2"),
    ("/x?api_key=abc&token=def&access_token=ghi&session=jkl",
     "/x?api_key=[redacted]&token=[redacted]&access_token=[redacted]&session=[redacted]"),
    (f"/x?q={KEY}", "/x?q=[redacted]"),  # a key under any name
    (f"/x/{KEY}", "/x/[redacted]"),
    ("/ui/jobs/j1?monkey=1&keys=2", "/ui/jobs/j1?monkey=1&keys=2"),  # not credential names
    ("/healthz", "/healthz"),
])
def test_credentials_in_the_address_are_redacted(target: str, expected: str) -> None:
    assert redact_target(target) == expected


def test_the_filter_rewrites_uvicorns_access_record() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/ui/jobs/j?key={KEY}", "1.1", 401), None)
    assert RedactQuerySecrets().filter(record) is True
    assert record.getMessage() == '127.0.0.1:5 - "GET /ui/jobs/j?key=[redacted] HTTP/1.1" 401'
