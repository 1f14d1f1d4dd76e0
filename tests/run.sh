#!/usr/bin/env bash
# The one entry point behind `make test`, `make demo` and `make bench`.
#   tests/run.sh test    system packages, virtualenvs, sanity, ansible-lint, unit and integration
#                        tests
#   tests/run.sh demo    a migration on the local lab with the collection's playbooks (see
#                        tests/lab/demo.py; --pattern full|partial|legacy_forward)
#   tests/run.sh bench   benchmarks (prints ratios; not a pass/fail test)
#   tests/run.sh lab     the lab in the background (tests/lab/background.py): an inventory for it
#                        and the commands to run the playbooks against it; lab-stop stops it
# Matrix: ansible-core 2.19 on Python 3.11 and 2.21 on Python 3.12 (each where that Python exists),
# and a "floor" virtualenv with the oldest versions the collection claims: ansible-core of
# meta/runtime.yml's requires_ansible and the lowest version each requirement file allows
# (tests/bootstrap-venv.sh --floor). The integration runs of the matrix go side by side.
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

# The floor: the oldest ansible-core the collection claims runs on Python 3.10 to 3.12 only.
floor_core=$(sed -n "s/^requires_ansible: *'>=\([0-9.]*\)'.*/\1/p" "$root/meta/runtime.yml")
floor_python="" floor_ver=""
for entry in "${matrix[@]}"; do
    read -r ver py _ <<< "$entry"
    case $ver in 3.10|3.11|3.12) floor_python=$py floor_ver=$ver; break ;; esac
done

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

# setup_floor: the floor virtualenv (only the tests use it).
setup_floor() {
    if [ -n "$floor_python" ]; then
        "$root/tests/bootstrap-venv.sh" --floor "$floor_python" "$venvs/floor" "==$floor_core"
    fi
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

# side_by_side TAG COMMAND... [-- TAG COMMAND...]...: the commands at the same time (each with a
# HOME and pytest base directory of its own, its output lines prefixed with its tag); fails when
# one of them fails, after all have ended. Two CPUs do two ansible-playbook runs at once.
side_by_side() {
    local pids=() tags=() tag rc=0 i
    while [ $# -gt 0 ]; do
        tag=$1; shift
        local cmd=()
        while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmd+=("$1"); shift; done
        [ $# -gt 0 ] && shift
        (
            base="$coll/tests/output/$tag"
            rm -rf "$base"; mkdir -p "$base/home"
            export HOME="$base/home"
            tmp=$(mktemp -d "/tmp/exo-pytest-$tag.XXXXXX")
            set +e
            "${cmd[@]}" --basetemp="$tmp" 2>&1 | sed -u "s/^/[$tag] /"
            status=${PIPESTATUS[0]}
            rm -rf "$tmp"
            exit "$status"
        ) &
        pids+=($!); tags+=("$tag")
    done
    for i in "${!pids[@]}"; do
        if wait "${pids[$i]}"; then
            echo "== ${tags[$i]}: passed"
        else
            echo "== ${tags[$i]}: FAILED"; rc=1
        fi
    done
    return $rc
}

# side_pytest INPROCESS PYTHON ARGS...: pytest in the collection copy with that execution path,
# for side_by_side (which sets HOME).
side_pytest() {
    local inprocess=$1 python=$2; shift 2
    (cd "$coll" && PYTHONPATH="$build" EXO_MAIL_INPROCESS=$inprocess \
        "$python" -m pytest -p no:cacheprovider -q -rfEs "$@")
}

sanity() {
    for entry in "${matrix[@]}"; do
        read -r ver _ <<< "$entry"
        "$root/tests/sanity.sh" "$venvs/py$ver" "$ver" "$coll"
    done
    if [ -n "$floor_python" ]; then
        "$root/tests/sanity.sh" "$venvs/floor" "$floor_ver" "$coll"
    fi
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
    if [ -n "$floor_python" ]; then
        echo "== unit tests: floor versions ($("$venvs/floor/bin/python" -m pip freeze 2>/dev/null \
            | grep -iE '^(ansible-core|dnspython|msal|requests)==' | tr '\n' ' '))"
        pytest_run "$venvs/floor/bin/python" tests/unit
    fi
}

# What the floor virtualenv runs besides the unit tests: the paths where msal, requests and
# dnspython are called (identity and token cache, Graph and Exchange paging, DNS updates).
floor_integration=(tests/integration/test_m365_token_cache.py tests/integration/test_m365_identity.py
                   tests/integration/test_graph_client.py
                   tests/integration/test_mailbox_info.py tests/integration/test_mailbox_protocols.py
                   tests/integration/test_domain.py tests/integration/test_smtp_test.py
                   tests/integration/test_mail_dns.py)

integration() {
    # Both execution paths get the whole suite: the module process (first Python of the
    # matrix) and the in-process path of the action plugins for connection: local (the last).
    # The floor virtualenv runs its part through the module process.
    local inprocess=0 jobs=()
    for entry in "${matrix[@]}"; do
        read -r ver _ <<< "$entry"
        [ "$entry" = "${matrix[-1]}" ] && inprocess=1
        echo "== integration tests (real BIND 9, ansible-playbook): Python $ver, EXO_MAIL_INPROCESS=$inprocess"
        jobs+=("py$ver" side_pytest "$inprocess" "$venvs/py$ver/bin/python" tests/integration --)
    done
    if [ -n "$floor_python" ]; then
        echo "== integration tests: floor versions, EXO_MAIL_INPROCESS=0 (${floor_integration[*]##*/})"
        jobs+=(floor side_pytest 0 "$venvs/floor/bin/python" "${floor_integration[@]}" --)
    fi
    side_by_side "${jobs[@]}"
}

case "${1:-test}" in
    setup) setup ;;
    test) setup; setup_floor; sanity; lint; unit; integration ;;
    sanity) setup; setup_floor; sanity ;;
    lint) setup; lint ;;
    unit) setup; setup_floor; unit ;;
    integration) setup; setup_floor; integration ;;
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
