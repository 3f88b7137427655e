"""A private Dovecot IMAP server on free loopback ports, with a throwaway config and Maildir.

Usage (a pytest fixture would wrap this)::

    server = DovecotServer(users={"agent@example.com": "secret"}).start()
    server.url("agent@example.com")   # imap://agent%40example.com:secret@127.0.0.1:PORT/INBOX
    server.append("agent@example.com", raw_bytes)  # deliver into INBOX over IMAP
    server.stop()

Needs Debian's ``dovecot-imapd`` (``apt-get install -y dovecot-imapd``) and, for TLS,
``openssl``. Runs in the foreground (``dovecot -F``) as our child; mail processes use the
``mail`` uid, so the work dir lives in a world-traversable temp dir (pytest's tmp dirs are
0700), removed by ``stop``.
"""

from __future__ import annotations

import imaplib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from ragrelay.bench.procs import free_port, stop_process

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
first_valid_gid = 1
mail_uid = mail
mail_gid = mail
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  mailbox Drafts {{
    special_use = \\Drafts
    auto = create
  }}
}}
"""


class DovecotServer:
    def __init__(self, users: dict[str, str] | None = None, *, tls: bool = True) -> None:
        self.users = users or {"agent@example.com": "secret"}
        self.tls = tls and shutil.which("openssl") is not None
        self.port = free_port()
        self.tls_port = free_port()
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> DovecotServer:
        exe = shutil.which("dovecot") or (
            "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
        )
        if exe is None:
            raise RuntimeError("dovecot is not installed (apt-get install -y dovecot-imapd)")
        d = Path(tempfile.mkdtemp(prefix="ragrelay-dovecot-"))
        d.chmod(0o755)
        self.dir = d
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir()
        (d / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items()))
        ssl_files = ""
        if self.tls:
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-keyout",
                    str(d / "key.pem"),
                    "-out",
                    str(d / "cert.pem"),
                ],
                check=True,
                capture_output=True,
            )
            ssl_files = f"ssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem"
        (d / "dovecot.conf").write_text(
            CONFIG.format(
                d=d,
                port=self.port,
                tls_port=self.tls_port,
                ssl="yes" if self.tls else "no",
                ssl_files=ssl_files,
            )
        )
        if not self.tls:
            # no imaps listener without TLS material
            conf = (d / "dovecot.conf").read_text()
            start = conf.index("  inet_listener imaps")
            end = conf.index("}", conf.index("ssl = yes", start)) + 2
            (d / "dovecot.conf").write_text(conf[:start] + conf[end:])
        subprocess.run(["chown", "-R", "mail:mail", str(d / "mail")], check=True)
        self.proc = subprocess.Popen(
            [exe, "-F", "-c", str(d / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start on port {self.port}")

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        if self.dir is None or not (self.dir / "dovecot.log").exists():
            return ""
        return (self.dir / "dovecot.log").read_text(errors="replace")

    # -- helpers for tests -------------------------------------------------------------------
    def url(
        self, user: str = "agent@example.com", *, tls: bool = False, mailbox: str = "INBOX"
    ) -> str:
        scheme, port = ("imaps", self.tls_port) if tls else ("imap", self.port)
        return f"{scheme}://{quote(user, safe='')}:{quote(self.users[user], safe='')}@127.0.0.1:{port}/{mailbox}"

    def connect(self, user: str = "agent@example.com") -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(user, self.users[user])
        return conn

    def append(self, user: str, raw: bytes, mailbox: str = "INBOX", flags: str = "") -> None:
        conn = self.connect(user)
        try:
            status, data = conn.append(mailbox, f"({flags})" if flags else None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
        finally:
            conn.logout()

    def messages(
        self, user: str = "agent@example.com", mailbox: str = "INBOX"
    ) -> list[tuple[bytes, bytes]]:
        """(flags, raw) of every message in ``mailbox``."""
        conn = self.connect(user)
        try:
            conn.select(f'"{mailbox}"', readonly=True)
            _, data = conn.uid("SEARCH", "ALL")
            out: list[tuple[bytes, bytes]] = []
            for uid in (data[0] or b"").split():
                _, fetched = conn.uid("FETCH", uid.decode(), "(FLAGS BODY.PEEK[])")
                for part in fetched:
                    if isinstance(part, tuple):
                        out.append((part[0], part[1]))
            return out
        finally:
            conn.logout()


__all__ = ["DovecotServer", "free_port"]
