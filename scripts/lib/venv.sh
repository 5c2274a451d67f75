# Sourced by scripts/run and scripts/test: make .venv with Python >= 3.11 and install $1 into it.
# Re-running is cheap: pip runs again only when the requirement files change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
REQS="$ROOT/$1"

find_python() {
  for candidate in python3.14 python3.13 python3.12 python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "marketsvc needs Python 3.11 or newer on PATH" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  "$(find_python)" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat "$REQS" "$ROOT/requirements.txt" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)-$(basename "$REQS")"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$REQS" -c "$ROOT/constraints.txt"
  touch "$stamp"
fi
