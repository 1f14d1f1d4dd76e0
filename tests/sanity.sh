#!/usr/bin/env bash
# sanity.sh VENV PYTHON_VERSION COLLECTION_DIR [ANSIBLE_TEST_ARGS...]: `ansible-test sanity` for
# one Python (all tests, or those the arguments name: --test compile --test import ...).
# Runs --local in the venv's own ansible-core; ansible-test's per-test virtualenvs get pip from
# tests/get_pip_standin.py (the real get-pip download is out of reach here), and live in a HOME
# under .venv/ so later runs are warm.
set -euo pipefail
venv=$1 py=$2 coll=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
home="$(dirname "$venv")/ansible-test-home-$(basename "$venv")"
mkdir -p "$home/.ansible/test/cache"
pipver=$("$venv/bin/python" -c "import types, ansible_test._internal.python_requirements as r; print(r.get_venv_packages(types.SimpleNamespace(version='$py'))['pip'])")
cp "$here/get_pip_standin.py" "$home/.ansible/test/cache/get_pip_${pipver//./_}.py"
# ansible-test runs pip with a cleared environment (HOME is kept): older pips (23.x, for
# ansible-core 2.16) know only certifi's authorities, not the system's, so behind a TLS-inspecting
# proxy they fail where a newer pip (system trust store) works. Give them the system's bundle.
ca_bundle=${PIP_CERT:-${REQUESTS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}}
if [ -f "$ca_bundle" ]; then
    mkdir -p "$home/.config/pip"
    printf '[global]\ncert = %s\n' "$ca_bundle" > "$home/.config/pip/pip.conf"
fi
echo "== ansible-test sanity: Python $py, $("$venv/bin/ansible" --version | sed -n 1p)"
cd "$coll"
HOME="$home" PATH="$venv/bin:$PATH" "$venv/bin/ansible-test" sanity --local --python "$py" --color no "$@"
