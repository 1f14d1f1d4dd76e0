#!/usr/bin/env bash
# lint.sh [COLLECTION_DIR]: ansible-lint with the production profile over the roles and playbooks
# of the collection copy, mypy over the typed files (tests/typed-files.txt), then ansible-builder create for meta/execution-environment.yml (default: the one tests/run.sh setup makes, honouring EXO_BUILD_DIR).
# Runs in its own virtualenv, .venv/lint (under EXO_VENV_DIR when set), built from the pinned tests/lint-requirements.txt and
# rebuilt when that file changes. Offline: installs no collections or roles.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${EXO_BUILD_DIR:-$root/build/collections}"
coll="${1:-$build/ansible_collections/exchangeonline/mail}"
venv="${EXO_VENV_DIR:-$root/.venv}/lint"
req="$root/tests/lint-requirements.txt"

if [ ! -f "$coll/galaxy.yml" ]; then
    echo "No collection copy at $coll: run tests/run.sh setup first (or give its path)." >&2
    exit 2
fi
coll=$(cd "$coll" && pwd)
collections_path=$(cd "$coll/../../.." && pwd)  # the directory that holds ansible_collections/

# The newest Python of the matrix (PATH, then pyenv's versions), as tests/run.sh finds them.
find_python() {
    local v candidate
    for v in 3.12 3.11; do
        for candidate in "python$v" "/usr/bin/python$v" "${PYENV_ROOT:-$HOME/.pyenv}/versions/$v"*"/bin/python$v"; do
            if "$candidate" -c 'import venv, ensurepip' >/dev/null 2>&1; then
                command -v "$candidate"
                return 0
            fi
        done
    done
    if python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        command -v python3
        return 0
    fi
    return 1
}

if [ ! -x "$venv/bin/ansible-lint" ] || ! cmp -s "$req" "$venv/lint-requirements.txt"; then
    py=$(find_python) || { echo "Need python3.12 or python3.11 (with venv) for ansible-lint." >&2; exit 1; }
    echo "== building $venv with $("$py" --version) and $req"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check -r "$req" >"$venv/pip.log" 2>&1; then
        tail -n 30 "$venv/pip.log" >&2
        echo "pip could not install $req (log: $venv/pip.log)" >&2
        exit 1
    fi
    cp "$req" "$venv/lint-requirements.txt"
fi

echo "== ansible-lint --profile production: $("$venv/bin/ansible-lint" --nocolor --version 2>/dev/null | head -n 1)"
cd "$coll"
# ansible-lint's caches stay inside the lint virtualenv; the collection under test is the copy.
env -u ANSIBLE_CONFIG \
    PATH="$venv/bin:$PATH" \
    XDG_CACHE_HOME="$venv/cache" \
    ANSIBLE_HOME="$venv/ansible-home" \
    ANSIBLE_COLLECTIONS_PATH="$collections_path" \
    "$venv/bin/ansible-lint" --profile production --offline --nocolor roles/ playbooks/

# The typed module_utils, as imported (ansible_collections.exchangeonline.mail...): the files of
# tests/typed-files.txt, with every function and method annotated.
mapfile -t typed < <(grep -vE '^\s*(#|$)' "$coll/tests/typed-files.txt")
echo "== mypy: $("$venv/bin/mypy" --version), ${#typed[@]} file(s) of tests/typed-files.txt"
(cd "$collections_path" && "$venv/bin/mypy" --python-version 3.10 --namespace-packages \
    --explicit-package-bases --ignore-missing-imports --follow-imports silent \
    --disallow-untyped-defs --disallow-incomplete-defs --check-untyped-defs --warn-unused-ignores \
    --no-incremental --cache-dir /dev/null "${typed[@]/#/ansible_collections/exchangeonline/mail/}")

echo "== ansible-builder create -f meta/execution-environment.yml: $("$venv/bin/ansible-builder" --version)"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
"$venv/bin/ansible-builder" create -f meta/execution-environment.yml -c "$context" >/dev/null
for dep in dnspython msal requests; do
    grep -q "^$dep" "$context/_build/requirements.txt" || {
        echo "ansible-builder's context does not install $dep" >&2; exit 1; }
done
echo "build context complete: $(ls "$context")"
