#!/usr/bin/env bash
# The one entry point behind `make test`, `make demo` and `make bench`.
#   tests/run.sh test    system packages, virtualenvs, sanity, ansible-lint, unit and integration
#                        tests
#   tests/run.sh demo    a migration on the local lab with the collection's playbooks (see
#                        tests/lab/demo.py; --pattern full|partial|legacy_forward)
#   tests/run.sh bench   benchmarks (prints ratios; not a pass/fail test)
#   tests/run.sh lab     the lab in the background (tests/lab/background.py): an inventory for it
#                        and the commands to run the playbooks against it; lab-stop stops it
# Matrix: ansible-core 2.19 on Python 3.11 and 2.21 on Python 3.12 (each where that Python exists).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venvs="${EXO_VENV_DIR:-$root/.venv}"
build="${EXO_BUILD_DIR:-$root/build/collections}"
coll="$build/ansible_collections/exchangeonline/mail"
labdir="${EXO_LAB_DIR:-$root/lab}"

# find_python 3.12: a working interpreter of that version (PATH, then pyenv's versions).
find_python() {
    local v=$1 candidate
    for candidate in "python$v" "/usr/bin/python$v" "${PYENV_ROOT:-$HOME/.pyenv}/versions/$v"*"/bin/python$v"; do
        if "$candidate" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}
matrix=()
if py=$(find_python 3.11); then matrix+=("3.11 $py <2.20"); fi
if py=$(find_python 3.12); then matrix+=("3.12 $py >=2.21,<2.22"); fi
if [ ${#matrix[@]} -eq 0 ] && python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    # Neither 3.11 nor 3.12 (Debian 13 has 3.13): the system python3 with a current ansible-core.
    ver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    matrix+=("$ver $(command -v python3) >=2.19,<2.22")
fi
if [ ${#matrix[@]} -eq 0 ]; then
    echo "Need python3.11, python3.12 or a python3 of 3.11 or later, with venv (apt-get install python3-venv)." >&2
    exit 1
fi

setup() {
    "$root/tests/bootstrap-system.sh"
    for entry in "${matrix[@]}"; do
        read -r ver py core <<< "$entry"
        "$root/tests/bootstrap-venv.sh" "$py" "$venvs/py$ver" "$core"
    done
    # ansible-test and Ansible itself want the tree at .../ansible_collections/<ns>/<name>.
    rm -rf "$coll"
    mkdir -p "$coll"
    (cd "$root" && tar --exclude=./build --exclude=./.venv --exclude=./.git --exclude=./demo-output \
        --exclude=./lab --exclude='*/__pycache__' --exclude=./tests/output -cf - .) | tar -xf - -C "$coll"
    # The copy sits inside this (git-ignored) checkout; ansible-test lists files through git, so
    # give the copy a repository of its own or it sees no files at all.
    git -C "$coll" init -q
}

newest_python() { read -r ver _ <<< "${matrix[-1]}"; echo "$venvs/py$ver/bin/python"; }

# lab_control status|stop|start ...: tests/lab/background.py from this checkout, with the system
# Python (it needs only the standard library, so make lab-stop works without the virtualenvs).
lab_control() {
    local action=$1 py
    shift
    read -r _ py _ <<< "${matrix[0]}"
    (cd "$root" && PYTHONDONTWRITEBYTECODE=1 "$py" -m tests.lab.background "$action" "$@" "$labdir")
}

pytest_run() {
    local python=$1; shift
    (cd "$coll" && PYTHONPATH="$build" HOME="$coll/tests/output/home" \
        "$python" -m pytest -p no:cacheprovider -q -rfEs "$@")
}

sanity() {
    for entry in "${matrix[@]}"; do
        read -r ver _ <<< "$entry"
        "$root/tests/sanity.sh" "$venvs/py$ver" "$ver" "$coll"
    done
}

lint() {
    "$root/tests/lint.sh" "$coll"
}

unit() {
    for entry in "${matrix[@]}"; do
        read -r ver _ <<< "$entry"
        echo "== unit tests: Python $ver"
        pytest_run "$venvs/py$ver/bin/python" tests/unit
    done
}

integration() {
    # Both execution paths get the whole suite: the module process (first Python of the
    # matrix) and the in-process path of the action plugins for connection: local (the last).
    local inprocess=0
    for entry in "${matrix[@]}"; do
        read -r ver _ <<< "$entry"
        [ "$entry" = "${matrix[-1]}" ] && inprocess=1
        echo "== integration tests (real BIND 9, ansible-playbook): Python $ver, EXO_MAIL_INPROCESS=$inprocess"
        EXO_MAIL_INPROCESS=$inprocess pytest_run "$venvs/py$ver/bin/python" tests/integration
    done
}

case "${1:-test}" in
    setup) setup ;;
    test) setup; sanity; lint; unit; integration ;;
    sanity) setup; sanity ;;
    lint) setup; lint ;;
    unit) setup; unit ;;
    integration) setup; integration ;;
    demo) setup; (cd "$coll" && PYTHONPATH="$build" "$(newest_python)" -m tests.lab.demo \
                  --output "$root/demo-output" --lab-dir "$labdir" "${@:2}") ;;
    # A lab that runs already keeps its build copy: start then says that it runs.
    lab) lab_control status >/dev/null || setup
         lab_control start --python "$(newest_python)" --collections "$build" ;;
    lab-stop) lab_control stop ;;
    bench) setup; (cd "$coll" && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_mail_dns "${@:2}" \
                   && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_token_cache \
                   && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_mailboxes \
                   && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_legacy_forwarding) ;;
    *) echo "usage: $0 test|demo|lab|lab-stop|bench|setup|sanity|lint|unit|integration" >&2; exit 2 ;;
esac
