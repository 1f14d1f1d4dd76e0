#!/usr/bin/env bash
# bootstrap-venv.sh PYTHON VENV_DIR ANSIBLE_CORE_SPEC: a virtualenv with the collection's and
# the tests' Python packages; re-used while the requirements stay the same.
set -euo pipefail
python=$1 venv=$2 core=$3
here=$(cd "$(dirname "$0")" && pwd)
stamp="$venv/.exo-stamp"
want="$core $(cat "$here/../requirements.txt" "$here/requirements.txt" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
    exit 0
fi
echo "Creating $venv ($python, ansible-core $core) ..."
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q "ansible-core$core" -r "$here/../requirements.txt" \
    -r "$here/requirements.txt"
echo "$want" > "$stamp"
