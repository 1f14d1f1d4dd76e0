#!/usr/bin/env bash
# sanity.sh VENV PYTHON_VERSION COLLECTION_DIR: `ansible-test sanity` for one Python.
# Runs --local in the venv's own ansible-core; ansible-test's per-test virtualenvs get pip from
# tests/get_pip_standin.py (the real get-pip download is out of reach here), and live in a HOME
# under .venv/ so later runs are warm.
set -euo pipefail
venv=$1 py=$2 coll=$3
here=$(cd "$(dirname "$0")" && pwd)
home="$(dirname "$venv")/ansible-test-home-$(basename "$venv")"
mkdir -p "$home/.ansible/test/cache"
pipver=$("$venv/bin/python" -c "import types, ansible_test._internal.python_requirements as r; print(r.get_venv_packages(types.SimpleNamespace(version='$py'))['pip'])")
cp "$here/get_pip_standin.py" "$home/.ansible/test/cache/get_pip_${pipver//./_}.py"
echo "== ansible-test sanity: Python $py, $("$venv/bin/ansible" --version | sed -n 1p)"
cd "$coll"
HOME="$home" PATH="$venv/bin:$PATH" "$venv/bin/ansible-test" sanity --local --python "$py" --color no
