#!/usr/bin/env bash
# Create .venv (if needed) and install the ledger with its development tools into it, and
# valgrind where it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $(python3 --version)"
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

# bench.instructions counts instructions with valgrind, and its tests run it: Debian's
# package where it is missing.
if ! command -v valgrind >/dev/null; then
  echo "valgrind not found; installing Debian's valgrind package..."
  command -v apt-get >/dev/null || { echo "apt-get not found: install valgrind" >&2; exit 1; }
  if [ "$(id -u)" = 0 ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind
  elif command -v sudo >/dev/null; then
    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind
  else
    echo "valgrind is not installed and we are not root (and sudo is missing):" \
      "run 'apt-get install -y valgrind' as root" >&2
    exit 1
  fi
fi
