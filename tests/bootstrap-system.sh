#!/usr/bin/env bash
# Installs the Debian packages the lab and the tests need (BIND 9 and its tools, Knot DNS, Postfix,
# PowerDNS and ShellCheck) when they are missing.
set -euo pipefail
missing=()
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || missing+=(bind9)
command -v tsig-keygen >/dev/null 2>&1 || [ -x /usr/sbin/tsig-keygen ] || missing+=(bind9-utils)
command -v dig >/dev/null 2>&1 || missing+=(bind9-dnsutils)
# Knot DNS: the lab runs private instances of it (tests/lab/knot.py), never the system one.
command -v knotd >/dev/null 2>&1 || [ -x /usr/sbin/knotd ] || missing+=(knot)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)  # ansible-test sanity uses it
# Postfix: the lab runs private instances of it (tests/lab/postfix.py), never the system one.
[ -x /usr/sbin/postfix ] || missing+=(postfix)
# PowerDNS Authoritative with its HTTP API and the SQLite backend: private instances
# (tests/lab/powerdns.py), never the system one.
[ -x /usr/sbin/pdns_server ] || missing+=(pdns-server)
compgen -G '/usr/lib/*/pdns/libgsqlite3backend.so' >/dev/null || missing+=(pdns-backend-sqlite3)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "The lab needs: ${missing[*]}. Run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "Installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
postfix_new=0
if [[ " ${missing[*]} " == *" postfix "* ]]; then
    postfix_new=1
    # No debconf question, and no system configuration: without /etc/postfix/main.cf the
    # package's own instance cannot start.
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
fi
pdns_new=0
if [[ " ${missing[*]} " == *" pdns-server "* ]]; then
    pdns_new=1
fi
knot_new=0
if [[ " ${missing[*]} " == *" knot "* ]]; then
    knot_new=1
fi
# Services must not start during the install (Docker images ship such a policy already).
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    own_policy=1
fi
cleanup() { if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "$postfix_new" -eq 1 ]; then
    # The system Postfix stays stopped and off: nothing of it may listen on port 25.
    if [ -d /run/systemd/system ]; then
        systemctl disable --now postfix.service >/dev/null 2>&1 || true
    fi
    if [ -f /etc/postfix/main.cf ] && /usr/sbin/postfix status >/dev/null 2>&1; then
        /usr/sbin/postfix stop || true
    fi
fi
if [ "$pdns_new" -eq 1 ]; then
    # The system PowerDNS stays stopped and off, like Knot below: nothing of it on port 53.
    if [ -d /run/systemd/system ]; then
        systemctl disable --now pdns.service >/dev/null 2>&1 || true
    elif command -v systemctl >/dev/null 2>&1; then
        systemctl disable pdns.service >/dev/null 2>&1 || true
    fi
    update-rc.d pdns disable >/dev/null 2>&1 || true
fi
if [ "$knot_new" -eq 1 ]; then
    # The system Knot stays stopped and off: nothing of it may listen on port 53. systemctl
    # disable also works without a running systemd (it removes the unit's link and calls
    # update-rc.d); update-rc.d covers a machine without systemctl.
    if [ -d /run/systemd/system ]; then
        systemctl disable --now knot.service >/dev/null 2>&1 || true
    elif command -v systemctl >/dev/null 2>&1; then
        systemctl disable knot.service >/dev/null 2>&1 || true
    fi
    update-rc.d knot disable >/dev/null 2>&1 || true
    if /usr/sbin/knotc -t 5 status >/dev/null 2>&1; then
        /usr/sbin/knotc -t 5 stop >/dev/null || true
    fi
fi
