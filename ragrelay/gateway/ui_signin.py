"""Signing in to ``/ui`` from a browser, and who a ``/ui`` request is.

A browser's address bar cannot send ``Authorization``, and an API key in the address
(the old ``?key=``) lands in access logs, browser history and the page's own
``document.location``. So a browser signs in once: ``GET /ui/login`` is a form that POSTs
the key in its body to ``POST /ui/session``, which checks it like any API key and answers
with a cookie holding a signed session (``ragrelay.gateway.session``), never the key:
``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page makes the
browser send it), ``Path=/ui``, ``Max-Age`` = ``RAGRELAY_GATEWAY_UI_SESSION_TTL_S``, and
``Secure`` on https (or with ``RAGRELAY_GATEWAY_UI_COOKIE_SECURE``). ``POST /ui/logout`` ends
it. Cross-site request forgery: the cookie is never sent with another site's requests, and
both POSTs also refuse an ``Origin`` (which browsers send with every POST) other than the
gateway's own. Every request with the cookie re-checks its key id in the key store (a
revoked key signs its sessions out at once) and its session id against the sign-outs.

``ui_authenticator`` is the ``/ui`` pages' dependency: ``Authorization: Bearer`` (scripts)
or the cookie (browsers); ``?key=`` is refused with a pointer to the sign-in; a browser
without a session is sent to the form. See docs/observability.md, "Signing in".
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials

from bus import logging as blog
from ragrelay.gateway.auth import UNAUTHORIZED, admit, bearer, tenant_for_key
from ragrelay.gateway.session import SessionClaims, sign_session, verify_session
from ragrelay.observe.safe_html import csp_hash, esc, link

if TYPE_CHECKING:
    from ragrelay.gateway.keys_store import ApiKeyRecord
    from ragrelay.gateway.services import Services

log = blog.get_logger("ragrelay.gateway")

COOKIE = "ragrelay_ui"
COOKIE_PATH = "/ui"
LOGIN_PATH = "/ui/login"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_KEY_CHARS = 200

KEY_IN_ADDRESS = (
    "an API key in the address (?key=) is no longer accepted: addresses end up in access "
    "logs and browser history. Sign in at /ui/login, or send `Authorization: Bearer <key>`"
)
MISSING = (
    "missing API key: send `Authorization: Bearer <key>`, or sign in at /ui/login in a browser"
)

session_cookie = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    description="a browser session from `POST /ui/session` (the sign-in form at /ui/login)",
)

SessionCookie = Annotated[str | None, Depends(session_cookie)]
NextParam = Annotated[str | None, Query(alias="next", max_length=200)]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

_NEXT = re.compile(r"^/ui/jobs/[A-Za-z0-9_.-]{1,128}$")  # where a sign-in may lead: a job page

LOGIN_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1d232b;background:#fafbfc}
main{max-width:440px;margin:72px auto;background:#fff;border:1px solid #dde2e8;
border-radius:8px;padding:22px 26px}
h1{font-size:20px;margin:0 0 10px} p{margin:8px 0} code{font-size:13px}
label{display:block;font-weight:600;margin:14px 0 4px}
input[type=password]{width:100%;box-sizing:border-box;padding:7px 9px;font:inherit;
border:1px solid #b9c1ca;border-radius:5px}
button{margin-top:14px;padding:7px 16px;font:inherit;border:0;border-radius:5px;
background:#2f76b5;color:#fff;cursor:pointer}
.msg{background:#fdecea;border-left:4px solid #c62828;padding:8px 12px;margin:10px 0}
.who{background:#eef7f0;border-left:4px solid #2e9c5a;padding:8px 12px;margin:10px 0}
.small{color:#5b6570;font-size:13px}
"""
LOGIN_CSP = (
    f"default-src 'none'; style-src {csp_hash(LOGIN_CSS)}; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` with the
# form's POST, and the Origin check below needs the real one. Nothing here links elsewhere.
LOGIN_HEADERS = {
    "Content-Security-Policy": LOGIN_CSP,
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@dataclass
class BrowserSessions:
    """Issues, checks and ends one gateway's ``/ui`` sessions."""

    svc: Services
    secret: bytes
    ttl_s: int
    force_secure: bool
    public_origin: str | None

    @classmethod
    def for_gateway(cls, svc: Services) -> BrowserSessions:
        config = svc.config
        if config.ui_session_secret is None:
            log.warning(
                "gateway.ui_session_secret_generated",
                hint="set RAGRELAY_GATEWAY_UI_SESSION_SECRET (32+ characters, the "
                "same on every replica): /ui sessions now end with this process "
                "and are not valid on other replicas",
            )
            secret = secrets.token_bytes(32)
        else:
            secret = config.ui_session_secret.get_secret_value().encode("utf-8")
        return cls(
            svc=svc,
            secret=secret,
            ttl_s=config.ui_session_ttl_s,
            force_secure=config.ui_cookie_secure,
            public_origin=config.ui_public_origin,
        )

    def _ended(self, session_id: str) -> str:
        return f"{self.svc.settings.key_prefix}:uisession:ended:{session_id}"

    def start(self, record: ApiKeyRecord) -> tuple[str, SessionClaims]:
        """A new session for the key of ``record``: (cookie value, its claims)."""
        claims = SessionClaims.new(record.tenant, record.key_id, now=time.time(), ttl_s=self.ttl_s)
        return sign_session(claims, self.secret), claims

    def check(self, token: str | None) -> SessionClaims | None:
        """The claims of a valid session whose key is still live and not signed out."""
        claims = verify_session(token, self.secret, now=time.time())
        if claims is None:
            return None
        record = self.svc.api_keys.get(claims.key_id)
        if record is None or record.tenant != claims.tenant:
            return None
        if self.svc.redis.exists(self._ended(claims.session_id)):
            return None
        return claims

    def end(self, claims: SessionClaims) -> None:
        """Sign the session out for good (even a copy of its cookie stops working)."""
        remaining = claims.expires_at - int(time.time())
        if remaining > 0:
            self.svc.redis.set(self._ended(claims.session_id), b"1", ex=remaining + 1)

    def secure(self, request: Request) -> bool:
        return self.force_secure or request.url.scheme == "https"

    def set_cookie(self, response: Response, request: Request, token: str) -> None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=self.ttl_s,
            path=COOKIE_PATH,
            secure=self.secure(request),
            httponly=True,
            samesite="strict",
        )

    def clear_cookie(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            COOKIE, path=COOKIE_PATH, secure=self.secure(request), httponly=True, samesite="strict"
        )

    def same_origin(self, request: Request) -> bool:
        """Whether a POST comes from our own pages. Browsers send ``Origin`` with every POST
        (``null`` when a privacy setting hides it: then their ``Sec-Fetch-Site``, which no
        page can forge, must say same-origin); a request with neither is not a browser's,
        and has no cookie jar to abuse."""
        origin = request.headers.get("origin")
        fetch_site = request.headers.get("sec-fetch-site")
        if origin is None or origin == "null":
            return fetch_site == "same-origin" or (origin is None and fetch_site is None)
        if self.public_origin is not None:
            return origin.rstrip("/").lower() == self.public_origin.rstrip("/").lower()
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        host = request.headers.get("host", "")
        return (
            parts.scheme in ("http", "https")
            and bool(host)
            and parts.netloc.lower() == (host.lower())
        )


def safe_next(value: str | None) -> str | None:
    """Where to go after signing in: a job page of this gateway, or nowhere (no open
    redirect: another host, a scheme or a path outside /ui/jobs is dropped)."""
    return value if value and _NEXT.fullmatch(value) else None


def login_location(next_path: str | None) -> str:
    target = safe_next(next_path)
    return f"{LOGIN_PATH}?{urlencode({'next': target})}" if target else LOGIN_PATH


def render_login(
    *,
    next_path: str | None = None,
    message: str | None = None,
    claims: SessionClaims | None = None,
    ttl_s: int = 3600,
) -> str:
    """The sign-in page: the form, or who is signed in and a sign-out button."""
    next_path = safe_next(next_path)
    # After a link from another site the SameSite=Strict cookie is not sent until the next
    # same-site navigation: this link is one.
    onward = (
        f"<p>{link(next_path, 'Open the job')} (if you are already signed in in this browser).</p>"
        if next_path
        else ""
    )
    parts = ["<h1>ragrelay</h1>"]
    if message:
        parts.append(f'<div class="msg" id="message">{esc(message)}</div>')
    if claims is not None:
        until = time.strftime("%H:%M:%S UTC", time.gmtime(claims.expires_at))
        parts.append(
            f'<div class="who" id="signed-in">Signed in as tenant <b>{esc(claims.tenant)}'
            f"</b> with key <code>{esc(claims.key_id)}</code> until {esc(until)}.</div>"
            + (
                f"<p>{link(next_path, 'Open the job')}.</p>"
                if next_path
                else "<p>Open a job's timeline at <code>/ui/jobs/&lt;job id&gt;</code>.</p>"
            )
            + '<form method="post" action="/ui/logout"><button type="submit" id="sign-out">'
            "Sign out</button></form>"
        )
    else:
        minutes = max(1, ttl_s // 60)
        hidden = f'<input type="hidden" name="next" value="{esc(next_path)}">' if next_path else ""
        parts.append(
            '<form method="post" action="/ui/session" id="sign-in">'
            '<label for="key">API key</label>'
            f'<input type="password" id="key" name="key" required maxlength="{MAX_KEY_CHARS}" '
            'autocomplete="off" autofocus>'
            f'{hidden}<button type="submit">Sign in</button></form>'
            '<p class="small">From <code>ragrelay keys create --tenant T</code>. The key goes '
            "once, in the body of this form; the browser keeps only a session for "
            f"{minutes} minute(s), in a cookie no script can read.</p>{onward}"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="referrer" content="same-origin"><title>ragrelay · sign in</title>'
        f"<style>{LOGIN_CSS}</style></head><body><main>{''.join(parts)}</main></body>"
        "</html>"
    )


async def read_form(request: Request) -> dict[str, str]:
    """The fields of an ``application/x-www-form-urlencoded`` body (first value wins).
    Parsed here because FastAPI's ``Form`` needs python-multipart, for two fields."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM_TYPE:
        raise HTTPException(415, f"send the sign-in form as {FORM_TYPE}")
    body = await request.body()  # the gateway's body limit applies (413)
    try:
        pairs = parse_qsl(body.decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(422, f"unreadable form: {exc.__class__.__name__}") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


Form = Annotated[dict[str, str], Depends(read_form)]


def signin_router(sessions: BrowserSessions) -> APIRouter:
    """``GET /ui/login``, ``POST /ui/session``, ``POST /ui/logout``: browser pages, not API
    (left out of the OpenAPI document; scripts send ``Authorization`` instead)."""
    router = APIRouter(tags=["ui"], include_in_schema=False)
    svc = sessions.svc

    def page(
        status: int = 200,
        *,
        next_path: str | None = None,
        message: str | None = None,
        claims: SessionClaims | None = None,
    ) -> HTMLResponse:
        html = render_login(
            next_path=next_path, message=message, claims=claims, ttl_s=sessions.ttl_s
        )
        return HTMLResponse(html, status_code=status, headers=LOGIN_HEADERS)

    def same_origin(request: Request) -> None:
        if not sessions.same_origin(request):
            raise HTTPException(
                403, f"cross-origin form post refused: sign in from {LOGIN_PATH} on this gateway"
            )

    @router.get(LOGIN_PATH)
    def login_form(cookie: SessionCookie, next_path: NextParam = None) -> HTMLResponse:
        return page(next_path=next_path, claims=sessions.check(cookie))

    @router.post("/ui/session", dependencies=[Depends(same_origin)])
    def sign_in(request: Request, form: Form) -> Response:
        next_path = safe_next(form.get("next"))
        key = form.get("key", "").strip()
        record = svc.api_keys.authenticate(key) if len(key) <= MAX_KEY_CHARS else None
        if record is None:
            return page(401, next_path=next_path, message="invalid or revoked API key")
        try:
            admit(svc, record.tenant)
        except HTTPException as exc:
            refused = page(exc.status_code, next_path=next_path, message=str(exc.detail))
            refused.headers.update(exc.headers or {})
            return refused
        token, claims = sessions.start(record)
        log.info("gateway.ui_signed_in", tenant=claims.tenant, key_id=claims.key_id)
        response = RedirectResponse(next_path or LOGIN_PATH, status_code=303, headers=LOGIN_HEADERS)
        sessions.set_cookie(response, request, token)
        return response

    @router.post("/ui/logout", dependencies=[Depends(same_origin)])
    def sign_out(request: Request, cookie: SessionCookie) -> Response:
        claims = sessions.check(cookie)
        if claims is not None:
            sessions.end(claims)
        response = RedirectResponse(LOGIN_PATH, status_code=303, headers=LOGIN_HEADERS)
        sessions.clear_cookie(response, request)
        return response

    return router


def ui_authenticator(sessions: BrowserSessions) -> Callable[..., str]:
    """The dependency that names the tenant of a ``/ui`` request (see the module doc)."""
    svc = sessions.svc

    def ui_tenant(request: Request, creds: BearerCredentials, cookie: SessionCookie) -> str:
        if "key" in request.query_params:
            raise HTTPException(401, KEY_IN_ADDRESS, headers=UNAUTHORIZED)
        if creds is not None and creds.scheme.lower() == "bearer":
            return tenant_for_key(svc, creds.credentials, missing=MISSING)
        claims = sessions.check(cookie)
        if claims is not None:
            return admit(svc, claims.tenant)
        if "text/html" in request.headers.get("accept", ""):  # a browser: to the form
            raise HTTPException(
                303, "sign in first", headers={"Location": login_location(request.url.path)}
            )
        raise HTTPException(401, MISSING, headers=UNAUTHORIZED)

    return ui_tenant


__all__ = [
    "COOKIE",
    "LOGIN_PATH",
    "BrowserSessions",
    "render_login",
    "safe_next",
    "signin_router",
    "ui_authenticator",
]
