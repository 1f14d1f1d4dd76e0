"""make lab and make lab-stop: the lab of tests/lab/lab.py in the background, for users.

    python -m tests.lab.background start --python PY --collections PATH DIR
        start the lab as a daemon run by PY (a virtualenv's python) from the collection copy
        under PATH (an ANSIBLE_COLLECTIONS_PATH entry); once it serves, print how to use it
    python -m tests.lab.background status DIR
        exit 0 while a process of the lab runs (and say so), 3 when none does
    python -m tests.lab.background stop DIR
        stop every process that start started, and nothing else

The daemon (``serve``) runs in a session of its own, with its output in DIR/lab.log. It writes
its pid to DIR/lab.pid and records every process of the lab in DIR/lab.json as soon as it runs:
itself, named and Postfix's master (whose children carry MAIL_CONFIG=<config_dir>), each with its
PID file and its start time from /proc, so that a pid the system has given to another process
since is never taken for the lab's. It writes DIR/inventory.yml (the secrets in
DIR/group_vars/all/lab-secrets.yml, mode 0600) and DIR/README.txt (the commands to run against
it), and serves until SIGTERM; then it stops the servers. ``stop`` sends that SIGTERM, waits, and
ends whatever of the record still runs. This file needs only the standard library, except for
``serve``: run.sh runs start, status and stop with the system Python, also without a virtualenv.
"""

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from tests.lab.postfix import PostfixServer

STATE = 'lab.json'
PID_FILE = 'lab.pid'
LOG = 'lab.log'
HOWTO = 'README.txt'
SERVERS = 'servers'  # BIND's and the emulator's work directories
# What a lab leaves in DIR; a new lab starts without them.
LEFT_BEHIND = (STATE, PID_FILE, HOWTO, SERVERS, 'inventory.yml', 'group_vars', 'backups',
               'report', 'tokens-*.json')


# -- the record ------------------------------------------------------------------------------
def start_time(pid):
    """When a running process started (clock ticks after boot, field 22 of /proc/PID/stat);
    None when the pid is gone or a zombie."""
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as f:
            fields = f.read().rpartition(')')[2].split()
        return None if fields[0] in ('Z', 'X') else int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def record(name, pid, **info):
    return dict(info, name=name, pid=pid, start_time=start_time(pid))


def runs(entry):
    """True while the recorded process runs (the same pid and the same start time)."""
    return entry.get('start_time') is not None and start_time(entry['pid']) == entry['start_time']


def read_state(directory):
    try:
        with open(os.path.join(directory, STATE), encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_state(directory, state):
    path = os.path.join(directory, STATE)
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(state, f, indent=1)
    os.replace(path + '.tmp', path)


def running(state):
    """[(entry, [pids])] of the recorded processes that still run; for Postfix, its master and
    every process with its MAIL_CONFIG."""
    found = []
    for entry in (state or {}).get('processes', []):
        pids = [entry['pid']] if runs(entry) else []
        if entry['name'] == 'postfix':
            pids += [p for p in PostfixServer(workdir=entry['workdir']).processes()
                     if p not in pids]
        if pids:
            found.append((entry, pids))
    return found


def describe(entry, pids):
    if entry['name'] == 'postfix':
        return 'Postfix (%d processes, master pid %d)' % (len(pids), entry['pid'])
    return '%s (pid %d)' % ({'lab': 'the lab daemon'}.get(entry['name'], entry['name']),
                            entry['pid'])


def howto(state):
    """How to use a running lab: what runs, the commands, and ``inventory: <path>`` last."""
    return '\n'.join([
        'A lab runs in the background in %s (pid %d, started %s).'
        % (state['directory'], state['processes'][0]['pid'], state['started']),
        state['description'], '',
        "Run the collection's playbooks against it, as a user would (each line as it is; the "
        'first sets the environment the others need):', '']
        + ['  ' + line for line in state['commands']]
        + ['', 'The inventory has one host per lab domain, and the old Postfix as %s in '
           'exo_legacy_servers.' % state['legacy_host'],
           "The lab's secrets are in %s (mode 0600); backups go to %s, reports to %s."
           % (state['secrets'], os.path.join(state['directory'], 'backups'),
              os.path.join(state['directory'], 'report')),
           'make lab-stop stops the lab.', '', 'inventory: %s' % state['inventory']])


# -- the daemon ------------------------------------------------------------------------------
def serve(directory, collections_path):
    """The lab itself: start it, record it, write the inventory and serve until SIGTERM."""
    from tests.lab.lab import DOMAINS, LEGACY_HOST, Lab, commands  # the virtualenv's packages
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    pid_file = os.path.join(directory, PID_FILE)
    me = record('lab', os.getpid(), pid_file=pid_file, log=os.path.join(directory, LOG))
    state = {'directory': directory, 'ready': False, 'processes': [me],
             'started': time.strftime('%Y-%m-%d %H:%M:%S')}
    write_state(directory, state)
    with open(pid_file, 'w', encoding='ascii') as f:
        f.write('%d\n' % os.getpid())
    os.makedirs(os.path.join(directory, SERVERS), mode=0o700)  # BIND's key file is in it
    lab = Lab(DOMAINS, workdir=os.path.join(directory, SERVERS))

    def note_processes():
        state['processes'] = [me] + [record(**p) for p in lab.processes()]
        write_state(directory, state)

    try:
        lab.start(on_process=note_processes)
        inventory = lab.write_inventory(directory, header='make lab')
        state.update(
            ready=True, ports=lab.ports(), inventory=inventory, legacy_host=LEGACY_HOST,
            secrets=os.path.join(directory, 'group_vars', 'all', 'lab-secrets.yml'),
            description=lab.describe(),
            commands=commands(inventory, collections_path, os.path.dirname(sys.executable)))
        with open(os.path.join(directory, HOWTO), 'w', encoding='utf-8') as f:
            f.write(howto(state) + '\n')
        write_state(directory, state)
        print(howto(state), flush=True)
        while not stop.wait(1):
            pass
        print('Stopping the lab (make lab-stop, or a signal)', flush=True)
    finally:
        lab.stop()
        shutil.rmtree(os.path.join(directory, SERVERS), ignore_errors=True)
        for name in (HOWTO, PID_FILE, STATE):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass
    return 0


# -- what make lab and make lab-stop run -----------------------------------------------------
def start(directory, python, collections_path, timeout=120):
    state = read_state(directory)
    alive = running(state)
    if alive and state.get('ready') and runs(state['processes'][0]):
        print('make lab: the lab runs already; make lab-stop stops it.\n')
        print(howto(state))
        return 0
    if alive:
        print('make lab: a lab in %s is not whole (%s still run): make lab-stop ends it.'
              % (directory, ', '.join(describe(*a) for a in alive)))
        return 1
    os.makedirs(directory, exist_ok=True)
    for pattern in LEFT_BEHIND:
        for path in glob.glob(os.path.join(directory, pattern)):
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    code = os.path.join(collections_path, 'ansible_collections', 'exchangeonline', 'mail')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (code, collections_path, os.environ.get('PYTHONPATH')) if p))
    log_path = os.path.join(directory, LOG)
    with open(log_path, 'w', encoding='utf-8') as log:
        daemon = subprocess.Popen(
            [python, '-m', 'tests.lab.background', 'serve', '--collections', collections_path,
             directory], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=directory, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        state = read_state(directory)
        if state and state.get('ready'):
            print(howto(state))
            return 0
        if daemon.poll() is not None or time.monotonic() > deadline:
            stop(directory, quiet=True)
            with open(log_path, encoding='utf-8', errors='replace') as f:
                print('make lab: the lab did not start (%s); the end of %s:\n%s' % (
                    'exit %d' % daemon.returncode if daemon.returncode is not None
                    else 'not ready within %d s' % timeout, log_path, f.read()[-4000:]))
            return 1
        time.sleep(0.1)


def port_open(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=2):
            return True
    except OSError:
        return False


def end(pids, timeout=10):
    """SIGTERM, then after ``timeout`` s SIGKILL, for processes of the record."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while any(start_time(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)


def stop(directory, quiet=False, timeout=30):
    state = read_state(directory)
    if state is None:
        if not quiet:
            print('make lab-stop: no lab runs in %s (no %s), so nothing was stopped.'
                  % (directory, STATE))
        return 0
    alive = running(state)
    daemon = state['processes'][0]
    if runs(daemon):
        os.kill(daemon['pid'], signal.SIGTERM)  # the daemon stops its servers
        deadline = time.monotonic() + timeout
        while runs(daemon) and time.monotonic() < deadline:
            time.sleep(0.1)
    for entry, pids in running(state):  # what the daemon did not stop (it was killed, or hung)
        if entry['name'] == 'postfix':
            PostfixServer(workdir=entry['workdir']).stop()
        else:
            end(pids)
    left = running(state)
    for entry in state['processes']:
        if entry.get('workdir') and not left:
            shutil.rmtree(entry['workdir'], ignore_errors=True)
    for name in (SERVERS, HOWTO, PID_FILE, STATE):
        path = os.path.join(directory, name)
        if not left and os.path.isdir(path):
            shutil.rmtree(path)
        elif not left and os.path.exists(path):
            os.unlink(path)
    still_open = sorted(p for p in (state.get('ports') or {}).values() if port_open(p))
    if not quiet:
        print('make lab-stop: stopped the lab in %s: %s.' % (
            directory, ', '.join(describe(*a) for a in alive) or 'nothing ran any more'))
        if state.get('ports') and not still_open:
            print('Its ports are closed: %s.' % ', '.join(
                '%s %d' % (what, port) for what, port in sorted(state['ports'].items())))
    if left or still_open:
        print('make lab-stop: still running: %s; still open: %s' % (
            ', '.join(describe(*a) for a in left) or '-',
            ', '.join(map(str, still_open)) or '-'))
        return 1
    return 0


def status(directory):
    state = read_state(directory)
    alive = running(state)
    if not alive:
        print('No lab runs in %s.' % directory)
        return 3
    print('The lab in %s runs: %s.' % (directory, ', '.join(describe(*a) for a in alive)))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('action', choices=('start', 'serve', 'status', 'stop'))
    parser.add_argument('directory', help='the lab directory (make lab: lab/ in the checkout)')
    parser.add_argument('--python', default=sys.executable,
                        help='start: the Python that runs the lab (with the test packages)')
    parser.add_argument('--collections',
                        help='start, serve: the ANSIBLE_COLLECTIONS_PATH entry that holds the '
                             'collection copy to run')
    args = parser.parse_args(argv)
    directory = os.path.abspath(args.directory)
    if args.action in ('start', 'serve') and not args.collections:
        parser.error('%s needs --collections' % args.action)
    if args.action == 'start':
        return start(directory, args.python, os.path.abspath(args.collections))
    if args.action == 'serve':
        return serve(directory, args.collections)
    return {'status': status, 'stop': stop}[args.action](directory)


if __name__ == '__main__':
    sys.exit(main())
