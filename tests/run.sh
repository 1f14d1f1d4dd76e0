#!/usr/bin/env bash
# The one entry point behind `make test`, `make demo` and `make bench`.
#   tests/run.sh test    system packages, virtualenvs, sanity, ansible-lint, unit and integration
#                        tests
#   tests/run.sh demo    a migration on the local lab with the collection's playbooks (see
#                        tests/lab/demo.py; --pattern full|partial|legacy_forward)
#   tests/run.sh bench   benchmarks (prints ratios; not a pass/fail test)
#   tests/run.sh lab     the lab in the background (tests/lab/background.py): an inventory for it
#                        and the commands to run the playbooks against it; lab-stop stops it
# Matrix: every ansible-core that meta/runtime.yml's requires_ansible claims, 2.16 to 2.21, each
# on a Python it supports (2.16/2.17: 3.10-3.12, 2.18/2.19: 3.11-3.13, 2.20/2.21: 3.12 and later).
#   2.16  the "floor" virtualenv: also the lowest version each requirement file allows
#         (tests/bootstrap-venv.sh --floor); full sanity, unit, the msal/requests/dnspython part of
#         the integration tests, module process
#   2.19  Python 3.11: compact sanity, unit, every integration test as module processes
#         (EXO_MAIL_INPROCESS=0) but the hosted DNS providers' (they run in the 2.21 run)
#   2.21  Python 3.12 (or 3.13): full sanity, unit, every integration test through the in-process
#         path of the action plugins (EXO_MAIL_INPROCESS=1), side by side with the 2.19 run
#   2.17, 2.18, 2.20  compact sanity (compile, import, validate-modules, yamllint), unit
# and on every version tests/integration/test_execution_paths.py, which runs every module on both
# execution paths and compares them. Where no Python 3.12+ exists, tests/bootstrap-python.sh builds
# one (CPython from Debian's source package). A combination that cannot run fails the run after
# the table of what ran (EXO_MATRIX_PARTIAL=1: a developer's shortcut that only warns).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venvs="${EXO_VENV_DIR:-$root/.venv}"
build="${EXO_BUILD_DIR:-$root/build/collections}"
coll="$build/ansible_collections/exchangeonline/mail"
labdir="${EXO_LAB_DIR:-$root/lab}"

# find_python 3.12: a working interpreter of that version (PATH, pyenv's versions, then the one
# tests/bootstrap-python.sh built).
find_python() {
    local v=$1 candidate
    for candidate in "python$v" "/usr/bin/python$v" "${PYENV_ROOT:-$HOME/.pyenv}/versions/$v"*"/bin/python$v" \
                     "$venvs/cpython-$v/bin/python$v"; do
        if "$candidate" -c 'import venv, ensurepip, ssl, sqlite3' >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}
# first_python 3.11 3.12 ...: the first of these versions found.
first_python() {
    local v
    for v in "$@"; do
        if find_python "$v"; then return 0; fi
    done
    return 1
}

floor_core=$(sed -n "s/^requires_ansible: *'>=\([0-9.]*\)'.*/\1/p" "$root/meta/runtime.yml")
# CORE PYTHON_VERSIONS VENV_NAME ANSIBLE_CORE_SPEC ROLE: the claimed combinations, oldest first.
# ROLE: floor | module (whole integration suite, module process) | inprocess (whole suite,
# in-process path) | compact. VENV_NAME "@" is py<the Python found>.
claimed=("$floor_core 3.11,3.10,3.12 floor ==$floor_core floor"
         "2.17 3.11,3.10,3.12 core2.17 >=2.17,<2.18 compact"
         "2.18 3.11,3.12,3.13 core2.18 >=2.18,<2.19 compact"
         "2.19 3.11,3.12,3.13 @ >=2.19,<2.20 module"
         "2.20 3.12,3.13 core2.20 >=2.20,<2.21 compact"
         "2.21 3.12,3.13 @ >=2.21,<2.22 inprocess")
# matrix: "CORE PYVER PYTHON VENV SPEC ROLE" for each combination that has its Python; missing:
# "CORE reason" for those that do not.
matrix=() missing=()
resolve_matrix() {
    local entry core pys name spec role py ver
    matrix=() missing=()
    for entry in "${claimed[@]}"; do
        read -r core pys name spec role <<< "$entry"
        # shellcheck disable=SC2086
        if py=$(first_python ${pys//,/ }); then
            ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
            [ "$name" = "@" ] && name="py$ver"
            matrix+=("$core $ver $py $venvs/$name $spec $role")
        else
            missing+=("$core no Python ${pys//,/ or } (tests/bootstrap-python.sh builds 3.13 as root)")
        fi
    done
}
resolve_matrix
status_file="$build/matrix-status.txt"
# record CORE WHAT STATUS: one line of the table printed at the end.
record() { mkdir -p "$build"; printf '%s|%s|%s\n' "$1" "$2" "$3" >> "$status_file"; }
# run_recorded CORE WHAT COMMAND...: the command, its outcome recorded; fails as it fails.
run_recorded() {
    local core=$1 what=$2; shift 2
    if "$@"; then record "$core" "$what" passed; else record "$core" "$what" FAILED; return 1; fi
}
print_table() {
    local rc=$? core ver venv line stages
    [ "$matrix_command" = 1 ] || return $rc
    echo
    echo "== matrix: what ran (ansible-core, Python, execution path)"
    printf '%-8s %-7s %s\n' core python results
    for entry in "${matrix[@]}"; do
        read -r core ver _ venv _ <<< "$entry"
        core=$("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)' 2>/dev/null || echo "$core")
        stages=$(grep "^${entry%% *}|" "$status_file" 2>/dev/null | cut -d'|' -f2- | sed 's/|/: /' | paste -sd';' - | sed 's/;/; /g')
        printf '%-8s %-7s %s\n' "$core" "$ver" "${stages:-nothing run by this command}"
    done
    for line in "${missing[@]}"; do
        printf '%-8s %-7s NOT RUN: %s\n' "${line%% *}" - "${line#* }"
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "${EXO_MATRIX_PARTIAL:-0}" = 1 ]; then
            echo "!! EXO_MATRIX_PARTIAL=1: ${#missing[@]} claimed ansible-core version(s) NOT TESTED" >&2
        else
            echo "!! ${#missing[@]} claimed ansible-core version(s) NOT TESTED: failing (EXO_MATRIX_PARTIAL=1 only warns)" >&2
            [ "$rc" -eq 0 ] && rc=1
        fi
    fi
    return $rc
}
matrix_command=0  # 1 for the commands that run the matrix: they print the table and may fail
trap 'print_table; exit $?' EXIT

setup() {
    "$root/tests/bootstrap-system.sh"
    if [ ${#missing[@]} -gt 0 ] && ! first_python 3.12 3.13 >/dev/null; then
        "$root/tests/bootstrap-python.sh" "$venvs/cpython-3.13"
        resolve_matrix
    fi
    for entry in "${matrix[@]}"; do
        read -r _ _ py venv spec role <<< "$entry"
        [ "$role" = floor ] && continue
        "$root/tests/bootstrap-venv.sh" "$py" "$venv" "$spec"
    done
    rm -f "$status_file"
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
    for entry in "${matrix[@]}"; do
        read -r _ _ py venv spec role <<< "$entry"
        if [ "$role" = floor ]; then
            "$root/tests/bootstrap-venv.sh" --floor "$py" "$venv" "$spec"
        fi
    done
}

newest_python() { local venv; read -r _ _ _ venv _ <<< "${matrix[-1]}"; echo "$venv/bin/python"; }

# lab_control status|stop|start ...: tests/lab/background.py from this checkout, with the system
# Python (it needs only the standard library, so make lab-stop works without the virtualenvs).
lab_control() {
    local action=$1 py
    shift
    read -r _ _ py _ <<< "${matrix[0]}"
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
    local pids=() tags=() failed=() tag rc=0 i
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
            "${cmd[@]}" --basetemp="$tmp" 2>&1 | tee "$base/output.log" | sed -u "s/^/[$tag] /"
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
            echo "== ${tags[$i]}: FAILED"; rc=1; failed+=("${tags[$i]}")
        fi
    done
    # The failures again at the end, where a CI log that keeps only its tail shows them: pytest's
    # short summary lines and the last lines of each failed job.
    for tag in "${failed[@]}"; do
        echo "== $tag: what failed"
        grep -E '^(FAILED|ERROR) ' "$coll/tests/output/$tag/output.log" | cut -c1-400 | head -40 \
            | sed "s/^/[$tag] /"
        tail -n 5 "$coll/tests/output/$tag/output.log" | sed "s/^/[$tag] /"
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

# The sanity tests each combination runs besides the floor's and the newest's full set.
compact_sanity=(--test compile --test import --test validate-modules --test yamllint)

sanity() {
    local core ver venv role
    for entry in "${matrix[@]}"; do
        read -r core ver _ venv _ role <<< "$entry"
        if [ "$role" = floor ] || [ "$entry" = "${matrix[-1]}" ]; then
            run_recorded "$core" "sanity (all)" "$root/tests/sanity.sh" "$venv" "$ver" "$coll"
        else
            run_recorded "$core" "sanity (compile, import, validate-modules, yamllint)" \
                "$root/tests/sanity.sh" "$venv" "$ver" "$coll" "${compact_sanity[@]}"
        fi
    done
}

lint() {
    "$root/tests/lint.sh" "$coll"
}

unit() {
    local core ver venv role
    for entry in "${matrix[@]}"; do
        read -r core ver _ venv _ role <<< "$entry"
        if [ "$role" = floor ]; then
            echo "== unit tests: ansible-core $core, Python $ver, floor versions ($("$venv/bin/python" -m pip freeze 2>/dev/null \
                | grep -iE '^(ansible-core|dnspython|msal|requests)==' | tr '\n' ' '))"
        else
            echo "== unit tests: ansible-core $core, Python $ver"
        fi
        run_recorded "$core" unit pytest_run "$venv/bin/python" tests/unit
    done
}

# What the floor virtualenv runs besides the unit tests: the paths where msal, requests and
# dnspython are called (identity and token cache, Graph and Exchange paging, DNS updates).
floor_integration=(tests/integration/test_m365_token_cache.py tests/integration/test_m365_identity.py
                   tests/integration/test_graph_client.py
                   tests/integration/test_mailbox_info.py tests/integration/test_mailbox_protocols.py
                   tests/integration/test_domain.py tests/integration/test_smtp_test.py
                   tests/integration/test_mail_dns.py)
# Tests of the lab itself (BIND, Knot, Postfix and Microsoft 365 emulator fixtures, make lab): they
# run no module of the collection, so they run once, in the module-process run.
lab_selftests=(tests/integration/test_lab.py tests/integration/test_lab_postfix.py
               tests/integration/test_m365_emulator.py tests/integration/test_m365_emulator_exo.py)
execution_paths=tests/integration/test_execution_paths.py
# The hosted DNS providers (real PowerDNS, moto behind the lab's Route 53 front): their code is the
# same module_utils on both execution paths, so they run once, in the in-process run (the shorter
# of the two).
provider_tests=(tests/integration/test_dns_providers.py)

# compact_integration ENTRY... --basetemp=DIR: for side_by_side, one after the other: the floor's
# part of the suite (module process) and, on each combination, the test of both execution paths.
compact_integration() {
    local basetemp=${*: -1} entries=("${@:1:$#-1}") rc=0 core ver venv role
    for entry in "${entries[@]}"; do
        read -r core ver _ venv _ role <<< "$entry"
        if [ "$role" = floor ]; then
            echo "== ansible-core $core (floor versions), EXO_MAIL_INPROCESS=0: ${floor_integration[*]##*/}"
            if side_pytest 0 "$venv/bin/python" "${floor_integration[@]}" "$basetemp"; then
                record "$core" "integration (floor part, module process)" passed
            else
                record "$core" "integration (floor part, module process)" FAILED; rc=1
            fi
        fi
        echo "== ansible-core $core: both execution paths (${execution_paths##*/})"
        if side_pytest 0 "$venv/bin/python" "$execution_paths" "$basetemp"; then
            record "$core" "execution paths (module process and in-process)" passed
        else
            record "$core" "execution paths (module process and in-process)" FAILED; rc=1
        fi
    done
    return $rc
}

# full_integration CORE INPROCESS PYTHON ARGS...: the whole suite on one execution path.
full_integration() {
    local core=$1 inprocess=$2 path=module\ process; shift 2
    [ "$inprocess" = 1 ] && path=in-process
    if side_pytest "$inprocess" "$@"; then
        record "$core" "integration (all, $path, execution paths)" passed
    else
        record "$core" "integration (all, $path, execution paths)" FAILED; return 1
    fi
}

integration() {
    # The whole suite twice side by side, once per execution path (2.19 as module processes,
    # 2.21 in-process); beside them, the floor's part and the execution paths test of the others.
    local jobs=() compact=() core ver venv role
    for entry in "${matrix[@]}"; do
        read -r core ver _ venv _ role <<< "$entry"
        case $role in
            module)
                echo "== integration tests (real BIND 9, ansible-playbook): ansible-core $core, Python $ver, EXO_MAIL_INPROCESS=0"
                jobs+=("core$core" full_integration "$core" 0 "$venv/bin/python" tests/integration
                       "${provider_tests[@]/#/--ignore=}" --) ;;
            inprocess)
                echo "== integration tests: ansible-core $core, Python $ver, EXO_MAIL_INPROCESS=1 (lab self-tests only in the other run, provider tests only here)"
                jobs+=("core$core" full_integration "$core" 1 "$venv/bin/python" tests/integration
                       "${lab_selftests[@]/#/--ignore=}" --) ;;
            *) compact+=("$entry") ;;
        esac
    done
    if [ ${#compact[@]} -gt 0 ]; then
        jobs+=(others compact_integration "${compact[@]}" --)
    fi
    side_by_side "${jobs[@]}"
}

case "${1:-test}" in
    setup) setup ;;
    test) matrix_command=1; setup; setup_floor; sanity; lint; unit; integration ;;
    sanity) matrix_command=1; setup; setup_floor; sanity ;;
    lint) setup; lint ;;
    unit) matrix_command=1; setup; setup_floor; unit ;;
    integration) matrix_command=1; setup; setup_floor; integration ;;
    demo) setup; (cd "$coll" && PYTHONPATH="$build" "$(newest_python)" -m tests.lab.demo \
                  --output "$root/demo-output" --lab-dir "$labdir" "${@:2}") ;;
    # A lab that runs already keeps its build copy: start then says that it runs.
    lab) lab_control status >/dev/null || setup
         lab_control start --python "$(newest_python)" --collections "$build" ;;
    lab-stop) lab_control stop ;;
    bench) setup; (cd "$coll" && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_mail_dns "${@:2}" \
                   && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_route53 \
                   && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_token_cache \
                   && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_mailboxes \
                   && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_legacy_forwarding \
                   && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_imports \
                   && PYTHONPATH="$build" "$(newest_python)" -m tests.bench.bench_mail_authentication) ;;
    *) echo "usage: $0 test|demo|lab|lab-stop|bench|setup|sanity|lint|unit|integration" >&2; exit 2 ;;
esac
