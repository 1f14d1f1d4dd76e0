#!/usr/bin/env bash
# bootstrap-venv.sh [--floor] PYTHON VENV_DIR ANSIBLE_CORE_SPEC: a virtualenv with the collection's
# and the tests' Python packages; re-used while the requirements stay the same.
# --floor installs the lowest version each requirement allows (name>=X becomes name==X), so that
# the tests prove the floors the requirement files claim.
set -euo pipefail
floor=0
if [ "${1:-}" = "--floor" ]; then floor=1; shift; fi
python=$1 venv=$2 core=$3
here=$(cd "$(dirname "$0")" && pwd)
stamp="$venv/.exo-stamp"
want="$floor $core $(cat "$here/../requirements.txt" "$here/requirements.txt" "$here/requirements-providers.txt" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
    exit 0
fi
echo "Creating $venv ($python, ansible-core $core$([ $floor -eq 1 ] && echo ', lowest allowed versions')) ..."
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
requirements=("$here/../requirements.txt" "$here/requirements.txt")
if [ $floor -eq 1 ]; then
    pinned="$venv/floor-requirements.txt"
    # Every line must name a lower bound: a requirement without one has no floor to test.
    if grep -vE '^\s*(#|$)' "${requirements[@]}" | cut -d: -f2- | grep -vqE '^[A-Za-z0-9_.-]+>=[0-9][0-9.]*\s*$'; then
        echo "bootstrap-venv.sh --floor: every requirement needs the form name>=version" >&2
        exit 1
    fi
    grep -hvE '^\s*(#|$)' "${requirements[@]}" | sed -E 's/>=/==/' > "$pinned"
    requirements=("$pinned")
else
    requirements+=("$here/requirements-providers.txt")
fi
"$venv/bin/python" -m pip install -q "ansible-core$core" "${requirements[@]/#/-r}"
echo "$want" > "$stamp"
