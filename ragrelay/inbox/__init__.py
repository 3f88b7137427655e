"""The email ingress: mailbox connectors (IMAP, Maildir, .eml dir, mbox), parsing, reply
drafts, the exactly-once ledger and the processing loop. Never sends mail."""

from ragrelay.inbox.mbox import iter_mbox_documents, iter_mbox_messages
from ragrelay.inbox.parse import ParsedEmail, parse_message

__all__ = ["ParsedEmail", "iter_mbox_documents", "iter_mbox_messages", "parse_message"]
