"""make lab and make lab-stop, as the README runs them: the lab starts in the background and
outlives make, the commands it prints run migrate, check, smtp_test and rollback against it as a
user would, a second make lab says that the lab runs, and make lab-stop stops every process of the
lab (read from /proc: a fresh Debian has no pgrep) and nothing else, and closes its ports.

The build copy under test stands in for the checkout: make runs there, with the virtualenvs of this
run (EXO_VENV_DIR), its own build copy and lab directory (EXO_BUILD_DIR, EXO_LAB_DIR)."""

import json
import os
import re
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import dns.message
import dns.query
import dns.rdatatype

from tests.lab.ansible_runner import collection_root
from tests.lab.background import port_open, start_time

COLLECTION = os.path.join(collection_root(), 'exchangeonline', 'mail')
VENVS = os.path.dirname(os.path.dirname(os.path.dirname(sys.executable)))  # .../.venv


def make(target, lab_dir, build_dir):
    env = dict(os.environ, EXO_VENV_DIR=VENVS, EXO_BUILD_DIR=build_dir, EXO_LAB_DIR=lab_dir)
    env.pop('PYTHONPATH', None)  # a user's shell has none
    started = time.monotonic()
    proc = subprocess.run(['make', target], cwd=COLLECTION, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    return proc, time.monotonic() - started


def printed_commands(text):
    """The shell lines make lab prints: the environment line, then {playbook: command}."""
    lines = [line.strip() for line in text.splitlines() if line.startswith('  ')]
    export, = [line for line in lines if line.startswith('export ')]
    commands = {}
    for line in lines:
        found = re.search(r' exchangeonline\.mail\.(\w+) ', line)
        if found and 'ansible-playbook' in line:
            commands[found.group(1)] = line
    return export, commands


def run_printed(export, command, cwd):
    """A printed line as a user pastes it into a shell, after the environment line."""
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.pop('ANSIBLE_COLLECTIONS_PATH', None)
    started = time.monotonic()
    proc = subprocess.run(['bash', '-ec', export + '\n' + command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    return proc, time.monotonic() - started


def processes_naming(*paths):
    """Pids of running processes whose command line or environment names one of ``paths``."""
    found = set()
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                text = f.read()
            with open('/proc/%s/environ' % pid, 'rb') as f:
                text += f.read()
        except OSError:  # gone meanwhile
            continue
        if any(p.encode() in text for p in paths) and start_time(int(pid)) is not None:
            found.add(int(pid))
    return found


def dns_answers_udp(port):
    try:
        dns.query.udp(dns.message.make_query('contoso.test', 'SOA'), '127.0.0.1', port=port,
                      timeout=1)
        return True
    except Exception:  # timeout or ICMP port unreachable
        return False


def served(port, name, rdtype):
    answer = dns.query.tcp(dns.message.make_query(name, rdtype), '127.0.0.1', port=port,
                           timeout=5).answer
    return sorted(rr.to_text() for rrset in answer for rr in rrset
                  if rrset.rdtype == dns.rdatatype.from_text(rdtype))


def output(proc):
    return (proc.stdout + proc.stderr)[-5000:]


def test_make_lab_runs_the_printed_commands_and_lab_stop_ends_it(tmp_path, bind):
    lab_dir, build_dir = str(tmp_path / 'lab'), str(tmp_path / 'build')
    assert not processes_naming(lab_dir)
    proc, lab_seconds = make('lab', lab_dir, build_dir)
    seen = {}  # pid -> start time of every process of the lab seen running
    try:
        text = proc.stdout
        assert proc.returncode == 0, output(proc)
        inventory = os.path.join(lab_dir, 'inventory.yml')
        assert 'inventory: %s' % inventory in text.splitlines()
        with open(os.path.join(lab_dir, 'lab.json'), encoding='utf-8') as f:
            state = json.load(f)
        ports = state['ports']
        postfix_dir = [p for p in state['processes'] if p['name'] == 'postfix'][0]['workdir']

        # The secrets are in the vars file beside the inventory, readable by its owner only,
        # and neither in the inventory nor on the screen.
        secrets = os.path.join(lab_dir, 'group_vars', 'all', 'lab-secrets.yml')
        assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600
        assert secrets in text
        with open(secrets, encoding='utf-8') as f:
            values = [line.split(': ', 1)[1].strip() for line in f if line.startswith('lab_')]
        with open(inventory, encoding='utf-8') as f:
            inventory_text = f.read()
        for value in values:
            assert value not in inventory_text and value not in text

        # Make has ended; the lab runs on, in a session of its own, and every process of it is
        # in the record (the daemon, named, Postfix's master and its children).
        daemon, named, master = [p['pid'] for p in state['processes']]
        with open('/proc/%d/stat' % daemon, encoding='ascii') as f:
            assert int(f.read().rpartition(')')[2].split()[3]) == daemon  # session id
        assert processes_naming(lab_dir) == {daemon, named}
        postfix = processes_naming(postfix_dir)  # MAIL_CONFIG=<its config_dir>
        assert master in postfix and len(postfix) > 1, postfix
        seen.update((pid, start_time(pid)) for pid in {daemon, named} | postfix)
        assert all(port_open(port) for port in ports.values()), ports

        # The printed commands, as a user runs them.
        export, commands = printed_commands(text)
        assert sorted(commands) == ['check', 'migrate', 'rollback', 'smtp_test']
        migrate, migrate_seconds = run_printed(export, commands['migrate'], str(tmp_path))
        assert migrate.returncode == 0, output(migrate)
        # The MX host the lab's tenant gave the domain migrate added today (MC1048624); the lab
        # runs in its own process, so its emulator's mx_host() is out of reach: the check below
        # compares what is served with Graph's records.
        mx, = served(ports['dns'], 'contoso.test', 'MX')
        assert re.fullmatch(r'0 contoso-test\.[a-z]-v1\.mx\.microsoft\.', mx), mx
        assert served(ports['dns'], 'autodiscover.northwind.test', 'CNAME') == [
            'autodiscover.outlook.com.']
        check, check_seconds = run_printed(export, commands['check'], str(tmp_path))
        assert check.returncode == 0, output(check)
        suites = ET.parse(os.path.join(lab_dir, 'report', 'exo-check.xml')).getroot()
        assert suites.get('failures') == '0' and suites.get('errors') == '0'
        assert int(suites.get('tests')) > 10
        assert 'Every check passed for 3 domain(s)' in check.stdout
        sent, dummy = run_printed(export, commands['smtp_test'], str(tmp_path))
        assert sent.returncode == 0, output(sent)
        assert 'alice@fabrikam.test -> bob@fabrikam.test: delivered in' in sent.stdout
        rolled, dummy = run_printed(export, commands['rollback'], str(tmp_path))
        assert rolled.returncode == 0, output(rolled)
        assert served(ports['dns'], 'contoso.test', 'MX') == ['10 mail.contoso.test.']
        print('make lab: %.1f s; migrate: %.1f s; check: %.1f s (migrate + check: %.1f s)'
              % (lab_seconds, migrate_seconds, check_seconds, migrate_seconds + check_seconds))

        # A second make lab says that the lab runs, and starts nothing.
        again, dummy = make('lab', lab_dir, build_dir)
        assert again.returncode == 0, output(again)
        assert 'the lab runs already' in again.stdout
        assert 'inventory: %s' % inventory in again.stdout.splitlines()
        assert processes_naming(lab_dir) == {daemon, named}
        postfix = processes_naming(postfix_dir)
        assert master in postfix
        seen.update((pid, start_time(pid)) for pid in postfix)
    finally:
        stopped, dummy = make('lab-stop', lab_dir, build_dir)
    assert stopped.returncode == 0, output(stopped)
    assert 'stopped the lab in %s' % lab_dir in stopped.stdout
    assert 'Its ports are closed' in stopped.stdout
    assert seen and not [pid for pid, started in seen.items() if start_time(pid) == started]
    assert not processes_naming(lab_dir, postfix_dir)
    assert not [port for port in ports.values() if port_open(port)]
    assert not dns_answers_udp(ports['dns'])
    assert not os.path.exists(postfix_dir)
    # Nothing else was stopped: another BIND of this test still serves.
    assert bind.proc.poll() is None and bind.soa_serial('contoso.test')
    again, dummy = make('lab-stop', lab_dir, build_dir)
    assert again.returncode == 0 and 'no lab runs in %s' % lab_dir in again.stdout
