"""Mailbox connectors on the file system: a directory of ``.eml`` files, a Maildir, an mbox.

Every connector has the same small surface (``Mailbox``): list messages not yet marked,
store a draft idempotently (one draft per message key, even if asked twice), mark the
original processed. IMAP lives in ``imap.py``. Nothing here sends mail.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Protocol

from bus.errors import UsageError
from ragrelay.inbox.mbox import iter_mbox_messages
from ragrelay.inbox.parse import content_hash

PROCESSED_KEYWORD = "$RagrelayProcessed"


@dataclass(frozen=True)
class RawMessage:
    ref: str  # connector-specific: IMAP UID, file name, mbox index
    raw: bytes


class Mailbox(Protocol):
    name: str

    def fetch(self) -> Iterator[RawMessage]:
        """Messages not yet marked processed (the ledger has the final word)."""
        ...

    def store_draft(self, digest: str, draft: EmailMessage) -> bool:
        """Save the draft; False (and nothing written) if a draft for ``digest`` exists."""
        ...

    def mark_processed(self, ref: str) -> None: ...

    def close(self) -> None: ...


def draft_bytes(draft: EmailMessage) -> bytes:
    return draft.as_bytes(policy=SMTP)


def _write_new(path: Path, data: bytes) -> bool:
    """Create ``path`` atomically with ``data``; False if it already exists."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)  # fails if path exists: no overwrite, no partial file
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


class _DraftsDirectory:
    """Drafts as ``<drafts_dir>/<digest>.eml``; nothing to mark or close (the ledger
    remembers what was processed)."""

    drafts_dir: Path

    def store_draft(self, digest: str, draft: EmailMessage) -> bool:
        self.drafts_dir.mkdir(parents=True, exist_ok=True)
        return _write_new(self.drafts_dir / f"{digest}.eml", draft_bytes(draft))

    def mark_processed(self, ref: str) -> None:
        return None

    def close(self) -> None:
        return None


class EmlDirMailbox(_DraftsDirectory):
    """``DIR/*.eml`` in; drafts to ``DIR/Drafts/<digest>.eml``. Marking is the ledger's job
    (files are left untouched)."""

    def __init__(self, directory: Path, drafts_dir: Path | None = None) -> None:
        if not directory.is_dir():
            raise UsageError(f"{directory}: not a directory of .eml files")
        self.directory = directory
        self.drafts_dir = drafts_dir or directory / "Drafts"
        self.name = f"eml-dir:{directory}"

    def fetch(self) -> Iterator[RawMessage]:
        for path in sorted(self.directory.glob("*.eml")):
            try:
                yield RawMessage(path.name, path.read_bytes())
            except OSError:
                continue  # vanished or unreadable: the next poll sees it again


class MboxMailbox(_DraftsDirectory):
    """Read-only mbox in; drafts to a directory of ``.eml`` files."""

    def __init__(self, path: Path, drafts_dir: Path | None = None) -> None:
        if not path.is_file():
            raise UsageError(f"{path}: no such mbox file")
        self.path = path
        self.drafts_dir = drafts_dir or path.parent / "Drafts"
        self.name = f"mbox:{path}"

    def fetch(self) -> Iterator[RawMessage]:
        for index, raw in enumerate(iter_mbox_messages(self.path)):
            yield RawMessage(f"{index}:{content_hash(raw)[:12]}", raw)


_INFO = re.compile(r":2,([A-Za-z]*)$")


class MaildirMailbox:
    """A Maildir (``new/``, ``cur/``). Drafts are delivered into the Drafts folder
    (``DIR/.Drafts`` when it exists — Maildir++ as Dovecot lays it out — else
    ``DIR/Drafts``) through ``tmp/`` into ``cur/`` with the ``D`` flag. The processed
    keyword is written the Dovecot way (``dovecot-keywords`` + a lower-case info letter)."""

    def __init__(self, directory: Path) -> None:
        if not (directory / "cur").is_dir() or not (directory / "new").is_dir():
            raise UsageError(f"{directory}: not a Maildir (needs cur/ and new/)")
        self.directory = directory
        self.drafts = self._drafts_folder(directory)
        self.name = f"maildir:{directory}"
        stat = directory.stat()
        self._owner = (stat.st_uid, stat.st_gid)
        self._letter: str | None = None

    def _own(self, path: Path) -> None:
        """Run as root on someone's Maildir: what we create belongs to the Maildir's owner
        (else the IMAP server, running as that user, cannot lock or index it)."""
        if os.geteuid() == 0 and self._owner != (0, 0):
            os.chown(path, *self._owner)

    @staticmethod
    def _drafts_folder(directory: Path) -> Path:
        """``.Drafts`` for Maildir++ (Dovecot, Courier: dot-folders, ``dovecot-*`` files),
        ``Drafts`` for a plain Maildir; an existing folder wins."""
        dotted, plain = directory / ".Drafts", directory / "Drafts"
        if dotted.is_dir() or plain.is_dir():
            return dotted if dotted.is_dir() else plain
        maildirplusplus = any(
            p.name.startswith("dovecot")
            or p.name == "courierimapkeywords"
            or (p.name.startswith(".") and (p / "cur").is_dir())
            for p in directory.iterdir()
        )
        return dotted if maildirplusplus else plain

    # -- keywords --------------------------------------------------------------------------
    def _keyword_letter(self) -> str:
        if self._letter is not None:
            return self._letter
        path = self.directory / "dovecot-keywords"
        entries: dict[int, str] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                digits, _, name = line.partition(" ")
                if digits.isdigit():
                    entries[int(digits)] = name.strip()
        for slot, keyword in entries.items():
            if keyword == PROCESSED_KEYWORD:
                self._letter = chr(ord("a") + slot)
                return self._letter
        free = next((n for n in range(26) if n not in entries), None)
        if free is None:
            raise UsageError(f"{path}: all 26 Maildir keyword slots are taken")
        entries[free] = PROCESSED_KEYWORD
        text = "".join(f"{n} {keyword}\n" for n, keyword in sorted(entries.items()))
        tmp = path.with_name(f".dovecot-keywords.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        self._own(tmp)
        tmp.replace(path)
        self._letter = chr(ord("a") + free)
        return self._letter

    def _flags(self, name: str) -> str:
        match = _INFO.search(name)
        return match.group(1) if match else ""

    def _processed_letter(self) -> str | None:
        path = self.directory / "dovecot-keywords"
        if not path.exists():
            return None
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            number, _, name = line.partition(" ")
            if number.isdigit() and name.strip() == PROCESSED_KEYWORD:
                return chr(ord("a") + int(number))
        return None

    # -- Mailbox ---------------------------------------------------------------------------
    def fetch(self) -> Iterator[RawMessage]:
        letter = self._processed_letter()
        # listed up front: marking moves files from new/ to cur/ while we iterate
        listed = [
            (sub, path)
            for sub in ("new", "cur")
            for path in sorted((self.directory / sub).iterdir())
        ]
        for sub, path in listed:
            if path.name.startswith(".") or not path.is_file():
                continue
            if letter and letter in self._flags(path.name):
                continue
            try:
                yield RawMessage(f"{sub}/{path.name}", path.read_bytes())
            except OSError:
                continue

    def store_draft(self, digest: str, draft: EmailMessage) -> bool:
        created = not self.drafts.exists()
        for sub in ("tmp", "new", "cur"):
            (self.drafts / sub).mkdir(parents=True, exist_ok=True)
        if self.drafts.name.startswith("."):
            (self.drafts / "maildirfolder").touch()  # Maildir++ marks its subfolders
        if created:
            for path in (self.drafts, *(self.drafts / s for s in ("tmp", "new", "cur"))):
                self._own(path)
            if (self.drafts / "maildirfolder").exists():
                self._own(self.drafts / "maildirfolder")
        marker = f".R{digest}."
        for sub in ("new", "cur"):
            if any(marker in p.name for p in (self.drafts / sub).iterdir()):
                return False
        host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        unique = f"{int(time.time())}.P{os.getpid()}{marker}{host}"
        tmp = self.drafts / "tmp" / unique
        tmp.write_bytes(draft_bytes(draft))
        self._own(tmp)
        target = self.drafts / "cur" / f"{unique}:2,DS"
        os.replace(tmp, target)
        return True

    def mark_processed(self, ref: str) -> None:
        letter = self._keyword_letter()
        sub, _, name = ref.partition("/")
        path = self.directory / sub / name
        base = _INFO.sub("", name)
        flags = "".join(sorted(set(self._flags(name) + letter)))
        target = self.directory / "cur" / f"{base}:2,{flags}"
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return None  # moved by another client meanwhile; the ledger still holds it

    def sent_box(self, name: str = "Sent") -> MaildirMailbox | None:
        """The Sent folder (``DIR/.NAME`` Maildir++, else ``DIR/NAME``) if it exists."""
        for path in (self.directory / f".{name}", self.directory / name):
            if (path / "cur").is_dir() and (path / "new").is_dir():
                return MaildirMailbox(path)
        return None

    def close(self) -> None:
        return None


__all__ = [
    "PROCESSED_KEYWORD",
    "EmlDirMailbox",
    "Mailbox",
    "MaildirMailbox",
    "MboxMailbox",
    "RawMessage",
    "draft_bytes",
]
