"""``ragrelay inbox``: poll a mailbox, triage every new message, save reply drafts
(registered in ``ragrelay/cli/app.py``, ``LAZY_COMMANDS``)."""

from __future__ import annotations

import contextlib
import json
import signal
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, runtime_checkable

import click

from bus.errors import RagrelayError, TransientError, UsageError
from ragrelay.cli.settings import settings_of as _settings
from ragrelay.inbox.idle import MAX_IDLE_S, IdleUnsupported
from ragrelay.inbox.ledger import DEFAULT_LEASE_S, open_ledger
from ragrelay.inbox.mailbox import EmlDirMailbox, Mailbox, MaildirMailbox, MboxMailbox
from ragrelay.inbox.process import InboxProcessor, Outcome, check_keyword
from ragrelay.inbox.sent import SentFolder, SentOutcome, SentScanner
from ragrelay.inbox.spamfilter import SpamdClient, SpamFilter
from schemas import Budget


def open_mailbox(
    *,
    imap: str | None,
    maildir: Path | None,
    eml_dir: Path | None,
    mbox: Path | None,
    imap_user: str | None = None,
    imap_password: str | None = None,
    unseen_only: bool = False,
    tls_insecure: bool = False,
    drafts_dir: Path | None = None,
    sent_folder: str = "Sent",
) -> Mailbox:
    chosen = [x for x in (imap, maildir, eml_dir, mbox) if x is not None]
    if len(chosen) != 1:
        raise UsageError(
            "give exactly one of --imap URL, --maildir DIR, --eml-dir DIR, --mbox FILE"
        )
    if imap is not None:
        from ragrelay.inbox.imap import ImapMailbox, parse_imap_url

        target = parse_imap_url(imap, imap_user, imap_password)
        context = None
        if target.tls and tls_insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return ImapMailbox(
            target, unseen_only=unseen_only, tls_context=context, sent_folder=sent_folder
        )
    if maildir is not None:
        return MaildirMailbox(maildir)
    if eml_dir is not None:
        return EmlDirMailbox(eml_dir, drafts_dir)
    if mbox is None:
        raise UsageError("no mailbox given")
    return MboxMailbox(mbox, drafts_dir)


def sent_folder_of(mailbox: Mailbox, name: str) -> SentFolder | None:
    """The mailbox's Sent folder (IMAP, Maildir), or None (.eml dir, mbox, no such folder)."""
    from ragrelay.inbox.imap import ImapMailbox

    if isinstance(mailbox, ImapMailbox):
        return mailbox.sent_box()
    if isinstance(mailbox, MaildirMailbox):
        return mailbox.sent_box(name)
    return None


@runtime_checkable
class IdleCapable(Protocol):
    def idle(self, max_s: float, should_stop: Callable[[], bool]) -> bool: ...


def _close(mailbox: Mailbox | None) -> None:
    if mailbox is not None:
        with contextlib.suppress(RagrelayError, OSError):
            mailbox.close()


def _printer(as_json: bool) -> Any:
    def emit(outcome: Outcome | SentOutcome) -> None:
        if as_json:
            click.echo(json.dumps(outcome.to_dict()))
            return
        if isinstance(outcome, SentOutcome):
            if outcome.status not in ("unrelated", "skipped"):
                extra = (
                    f" similarity={outcome.similarity}" if outcome.similarity is not None else ""
                )
                click.echo(
                    f"sent/{outcome.status:<6} {outcome.ref} job={outcome.job_id}{extra}"
                    + (f" ({outcome.reason})" if outcome.reason else "")
                )
            return
        extra = f" triage={outcome.triage}" if outcome.triage else ""
        reason = f" ({outcome.reason})" if outcome.reason and outcome.status != "no_draft" else ""
        click.echo(f"{outcome.status:<11} {outcome.ref}{extra} {outcome.elapsed_ms:.0f} ms{reason}")

    return emit


def _wait(seconds: float, stop: dict[str, bool]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop["now"]:
        time.sleep(min(0.5, seconds))


@click.command("inbox")
@click.option("--imap", metavar="URL", help="imap[s]://user:pass@host:port/INBOX")
@click.option("--maildir", type=click.Path(path_type=Path, file_okay=False), help="A Maildir.")
@click.option(
    "--eml-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="A directory of .eml files (drafts go to DIR/Drafts).",
)
@click.option(
    "--mbox",
    type=click.Path(path_type=Path, dir_okay=False),
    help="An mbox file, read-only (drafts go to its directory's Drafts/).",
)
@click.option(
    "--once", is_flag=True, help="One pass, then exit (default: wait for new mail forever)."
)
@click.option("--tenant", default="default", show_default=True)
@click.option(
    "--poll",
    "poll_s",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds between polls (without IDLE), and before a retry after an error.",
)
@click.option(
    "--idle/--no-idle",
    "use_idle",
    default=True,
    show_default=True,
    help="IMAP: wait for new mail in IDLE when the server has it (else poll).",
)
@click.option(
    "--idle-max",
    "idle_max_s",
    type=float,
    default=MAX_IDLE_S,
    show_default=True,
    help="IMAP: re-issue IDLE (and re-scan) at least this often, in seconds "
    "(at most 29 min, RFC 2177).",
)
@click.option(
    "--sent-folder",
    default="Sent",
    show_default=True,
    help="IMAP/Maildir: where sent mail is (IMAP: the \\Sent special-use wins).",
)
@click.option(
    "--sent-feedback/--no-sent-feedback",
    default=True,
    show_default=True,
    help="Drafts edited before sending become feedback (needs Redis).",
)
@click.option("--imap-user", default=None, help="IMAP login (if not in the URL).")
@click.option(
    "--imap-password",
    default=None,
    envvar="RAGRELAY_IMAP_PASSWORD",
    help="IMAP password (if not in the URL); env RAGRELAY_IMAP_PASSWORD.",
)
@click.option("--unseen-only", is_flag=True, help="IMAP: only messages without \\Seen.")
@click.option("--tls-insecure", is_flag=True, help="imaps: do not verify the certificate (tests).")
@click.option("--from-addr", default=None, help="From of the drafts (default: the original's To).")
@click.option(
    "--drafts-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="--eml-dir/--mbox: where drafts go.",
)
@click.option(
    "--lease",
    "lease_s",
    type=float,
    default=DEFAULT_LEASE_S,
    show_default=True,
    help="Seconds a claimed message stays ours before another poller may take it.",
)
@click.option("--job-timeout", "job_timeout_s", type=float, default=120.0, show_default=True)
@click.option("--window", type=int, default=8, show_default=True, help="Jobs in flight at once.")
@click.option(
    "--max-iterations",
    type=int,
    default=None,
    help="Evaluate→rewrite loops per email job (default: the Budget default).",
)
@click.option(
    "--spamd",
    default=None,
    envvar="RAGRELAY_SPAMD",
    metavar="HOST:PORT",
    help="Ask this SpamAssassin spamd about every message (SPAMC over TCP) and combine its "
    "verdict with the triage model [env RAGRELAY_SPAMD]. If it cannot be reached, the message "
    "is retried on the next pass.",
)
@click.option(
    "--trust-spam-headers",
    is_flag=True,
    envvar="RAGRELAY_TRUST_SPAM_HEADERS",
    help="Read X-Spam-Status / X-Spam-Flag as your upstream filter's verdict. Only if your "
    "mail server strips incoming copies: a sender can forge them. Off by default.",
)
@click.option(
    "--authserv-id",
    default="",
    envvar="RAGRELAY_AUTHSERV_ID",
    help="Trust Authentication-Results from this authserv-id only (your MTA's).",
)
@click.option(
    "--review-keyword",
    default="$RagrelayReview",
    show_default=True,
    envvar="RAGRELAY_REVIEW_KEYWORD",
    help="IMAP keyword set on uncertain mail (drafted, never spam); other mailboxes: the "
    "draft's X-Ragrelay-Triage header says review.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON line per message.")
@click.pass_context
def inbox_command(
    ctx: click.Context,
    imap: str | None,
    maildir: Path | None,
    eml_dir: Path | None,
    mbox: Path | None,
    once: bool,
    tenant: str,
    poll_s: float,
    use_idle: bool,
    idle_max_s: float,
    sent_folder: str,
    sent_feedback: bool,
    imap_user: str | None,
    imap_password: str | None,
    unseen_only: bool,
    tls_insecure: bool,
    from_addr: str | None,
    drafts_dir: Path | None,
    lease_s: float,
    job_timeout_s: float,
    window: int,
    max_iterations: int | None,
    spamd: str | None,
    trust_spam_headers: bool,
    authserv_id: str,
    review_keyword: str,
    as_json: bool,
) -> None:
    """Triage new mail and save grounded reply drafts. Never sends mail.

    Each message is processed once per tenant (by Message-ID, or a content hash), across
    restarts and concurrent pollers; the original gets the $RagrelayProcessed keyword only
    after its draft is stored. Over IMAP, new mail is awaited in IDLE when the server has
    it (else polled). With Redis, replies found in the Sent folder that a person edited
    from one of our drafts become feedback (`ragrelay feedback export`).
    """
    from ragrelay.client import RagrelayClient

    settings = _settings(ctx)
    check_keyword(review_keyword)
    spam_filter = SpamFilter(
        spamd=SpamdClient.from_address(spamd) if spamd else None,
        trust_headers=trust_spam_headers,
        authserv_id=authserv_id,
    )
    settings.ensure_data_dir()
    model = settings.data_dir / "models" / "triage.json"  # workers.email.triage's default
    if settings.embedded and not model.exists():
        click.echo(
            f"warning: no triage model at {model}; triage falls back to keyword rules. "
            "Train one: ragrelay train-triage --labels LABELS.jsonl",
            err=True,
        )
    stop = {"now": False}

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop["now"] = True

    if not once:
        signal.signal(signal.SIGTERM, _stop)
    feedback = None
    if sent_feedback and (imap is not None or maildir is not None):
        if settings.embedded:
            click.echo(
                "note: edited drafts become feedback only with Redis "
                "(RAGRELAY_REDIS_URL); the Sent folder is not read",
                err=True,
            )
        else:
            from bus.redis import connect
            from ragrelay.feedback import FeedbackStore

            feedback = FeedbackStore(connect(settings), prefix=settings.key_prefix)
    idle = use_idle and imap is not None and not once
    emit = _printer(as_json)
    ledger = open_ledger(
        redis_url=settings.redis_url, data_dir=settings.data_dir, prefix=settings.key_prefix
    )
    client = RagrelayClient.from_settings(settings)
    mailbox: Mailbox | None = None
    told: set[str] = set()

    def tell(what: str, text: str) -> None:
        if what not in told:
            told.add(what)
            click.echo(text, err=True)

    try:
        while True:
            try:
                if mailbox is None:
                    mailbox = open_mailbox(
                        imap=imap,
                        maildir=maildir,
                        eml_dir=eml_dir,
                        mbox=mbox,
                        imap_user=imap_user,
                        imap_password=imap_password,
                        unseen_only=unseen_only,
                        tls_insecure=tls_insecure,
                        drafts_dir=drafts_dir,
                        sent_folder=sent_folder,
                    )
                processor = InboxProcessor(
                    mailbox,
                    ledger,
                    client,
                    tenant=tenant,
                    mailbox_address=from_addr,
                    lease_s=lease_s,
                    job_timeout_s=job_timeout_s,
                    window=window,
                    on_outcome=emit,
                    budget=Budget(max_iterations=max_iterations) if max_iterations else None,
                    spam_filter=spam_filter.metadata if spam_filter.enabled else None,
                    review_keyword=review_keyword,
                )
                outcomes = processor.run_once()
                sent = sent_folder_of(mailbox, sent_folder) if feedback is not None else None
                if sent is not None and feedback is not None:
                    try:
                        SentScanner(
                            sent, ledger, feedback, tenant=tenant, lease_s=lease_s, on_outcome=emit
                        ).run_once()
                    except TransientError:
                        raise
                    except RagrelayError as exc:  # the Sent folder must not stop the inbox
                        tell("sent", f"warning: Sent folder not read: {exc}")
            except TransientError as exc:
                _close(mailbox)
                mailbox = None
                if once:
                    raise
                click.echo(f"warning: {exc}; retrying in {poll_s:g} s", err=True)
                outcomes = []
            if once or stop["now"]:
                if not as_json:
                    counts: dict[str, int] = {}
                    for o in outcomes:
                        counts[o.status] = counts.get(o.status, 0) + 1
                    summary = (
                        ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing new"
                    )
                    click.echo(f"inbox: {summary}")
                return
            retry_soon = mailbox is None or any(o.status == "failed" for o in outcomes)
            if idle and not retry_soon and isinstance(mailbox, IdleCapable):
                try:
                    tell("idle", "inbox: waiting for new mail in IMAP IDLE")
                    mailbox.idle(idle_max_s, lambda: stop["now"])
                    if stop["now"]:
                        return
                    continue
                except IdleUnsupported as exc:
                    idle = False
                    tell("no-idle", f"inbox: no IMAP IDLE ({exc}); polling every {poll_s:g} s")
                except TransientError as exc:
                    click.echo(f"warning: {exc}; retrying in {poll_s:g} s", err=True)
            # between polls the session is closed (servers log idle sessions out)
            _close(mailbox)
            mailbox = None
            if not idle:
                tell("poll", f"inbox: polling every {poll_s:g} s")
            _wait(poll_s, stop)
            if stop["now"]:
                return
    finally:
        _close(mailbox)
        client.close()
        ledger.close()
        if feedback is not None:
            feedback.client.close()


__all__ = ["inbox_command", "open_mailbox"]


if __name__ == "__main__":  # `python -m ragrelay.cli.inbox ...`: the command on its own
    inbox_command()
