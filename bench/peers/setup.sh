#!/usr/bin/env bash
# Recreate the peer virtualenvs used by `bench/instrumentation.py --peer openllmetry|openlit`.
#
# The peers cannot share inferops' environment: openlit 1.45 requires openai<3 and anthropic<1 (so the
# side-by-side runs use openai 2.54 / anthropic 0.125 on httpx), and openlit's own dependency pins do not
# resolve with pip's resolver against the current OpenTelemetry SDK. The files beside this script are the
# exact package sets (pip freeze) of the environments the figures in docs/instrumentation.md came from;
# they are installed with --no-deps so the resolver is not asked again. inferops goes in editable.
#
#   bash bench/peers/setup.sh [DIR]          (default DIR: /tmp/inferops-peers)
#   DIR/openllmetry/bin/python bench/instrumentation.py --peer openllmetry
#   DIR/openlit/bin/python bench/instrumentation.py --peer openlit --pricing-json FILE
#
# openlit downloads its price list at init() unless given pricing_json=<local file> (no internet here).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${1:-/tmp/inferops-peers}"
for peer in openllmetry openlit; do
  python3 -m venv "$dir/$peer"
  "$dir/$peer/bin/python" -m pip install -q --upgrade pip
  "$dir/$peer/bin/pip" install -q --no-deps -r "$here/$peer.txt"
  "$dir/$peer/bin/pip" install -q --no-deps -e "$repo"
  "$dir/$peer/bin/python" -c "import inferops.instrumentation, openai, anthropic; print('$peer ok: openai', openai.__version__, 'anthropic', anthropic.__version__)"
done
