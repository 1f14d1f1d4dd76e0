#!/usr/bin/env bash
# bootstrap-python.sh PREFIX: a CPython 3.13 under PREFIX (PREFIX/bin/python3.13), for the
# ansible-core versions of the matrix that need Python 3.12 or later (2.20, 2.21), on a machine
# that has none (Debian 12 ships 3.11 only). Debian has no 3.12 or 3.13 for bookworm, and
# downloads of prebuilt interpreters (uv python install, pyenv) fail where only the package
# registries are reached; so it builds CPython from the source package of Debian 13 (trixie),
# fetched with apt-get through a sources list of its own (the system's apt configuration stays
# as it is). Measured: 5.5 minutes on 2 shared CPUs, 400 MB. Re-used while PREFIX works.
set -euo pipefail
prefix=$1
if "$prefix/bin/python3.13" -c 'import venv, ensurepip, ssl, sqlite3, ctypes, lzma, bz2' >/dev/null 2>&1; then
    exit 0
fi
# The build's own packages (headers of the modules the tests need: ssl, sqlite3, ctypes, ...).
deps=(build-essential pkg-config libssl-dev zlib1g-dev libffi-dev libsqlite3-dev libbz2-dev
      liblzma-dev libreadline-dev libncurses-dev uuid-dev xz-utils)
need=()
for dep in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'install ok installed' || need+=("$dep")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "Building Python 3.13 needs: ${need[*]}. Run as root:" >&2
        echo "  apt-get update && apt-get install -y ${need[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
work=$(mktemp -d /tmp/exo-cpython.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "Building CPython 3.13 from Debian's source package into $prefix (about 5 minutes) ..."
mkdir -p "$work/lists/partial" "$work/src"
echo 'deb-src http://deb.debian.org/debian trixie main' > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
          -o "Dir::State::Lists=$work/lists" -o APT::Sandbox::User=root)
apt-get -qq "${apt_opts[@]}" update
(cd "$work/src" && apt-get -qq "${apt_opts[@]}" source --download-only python3.13 >/dev/null)
tar -xJf "$work"/src/python3.13_*.orig.tar.xz -C "$work/src"
cd "$work"/src/Python-3.13.*/
if ! { ./configure -q --prefix="$prefix" --with-ensurepip=install && make -j"$(nproc)" -s \
        && make -s install; } >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    echo "CPython 3.13 build failed (log above)" >&2
    exit 1
fi
"$prefix/bin/python3.13" -c 'import venv, ensurepip, ssl, sqlite3, ctypes, lzma, bz2'
echo "Python 3.13 ready: $prefix/bin/python3.13"
