"""Long waits, as a user watches them: the wait for every authoritative server goes in rounds
(until/retries), each failed round prints the servers still behind and what they serve, and the
backup and the exact undo come first, so a run stopped with Ctrl-C can be undone.

A second authoritative server that catches up late is a DNS relay in front of a BIND that still
serves the old zone; some seconds after the primary's serial changes, the relay starts to
forward to the primary instead (as a secondary does once its zone transfer is in). The output is
read line by line as ansible-playbook writes it (stdout and stderr together), with the time each
line arrives.
"""

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from tests.integration.conftest import ZONE, dns_args, m365_args
from tests.integration.test_roles import play_file, role_play
from tests.lab.ansible_runner import environment
from tests.lab.bind import BindServer, zone_template
from tests.lab.dns_relay import DnsRelay

WAIT_TASK = 'Wait until every authoritative name server serves the records'
# Seconds one round of mail_dns_check may take here: a module process on a busy machine.
ROUND = 6
# Seconds after the primary's change that a late server catches up, when a test needs at least
# two failed rounds first: two rounds of ROUND s, a pause and the tasks before the wait.
LATE = 2 * ROUND + 4
LEGACY_SPF = '"v=spf1 ip4:192.0.2.0/24 include:_spf.mailhost.test ~all"'
BEHIND = ('1 of 2 servers behind: %s serves MX 10 mail.contoso.test., no autodiscover CNAME, '
          'SPF ' + LEGACY_SPF)


class LateServer:
    """A second authoritative server for ZONE on ``port``: it serves the zone as it was until
    ``catch_up`` seconds after the primary's serial changed (None: never), then the primary's."""

    def __init__(self, primary, workdir, catch_up):
        self.primary = primary
        self.catch_up = catch_up
        self.stale = BindServer({ZONE: zone_template('contoso.test.zone')}, workdir=workdir)
        self.relay = None
        self.caught_up_at = None
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self.stale.start()
        self.relay = DnsRelay(self.stale.port).start()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        self.relay.stop()
        self.stale.stop()

    @property
    def port(self):
        return self.relay.port

    def _follow(self):
        if self.catch_up is None:
            return
        serial = self.primary.soa_serial(ZONE)
        deadline = time.monotonic() + 300
        while not self._stop.is_set() and time.monotonic() < deadline:
            if self.primary.soa_serial(ZONE) != serial:
                if not self._stop.wait(self.catch_up):
                    self.relay.upstream = ('127.0.0.1', self.primary.port)
                    self.caught_up_at = time.monotonic()
                return
            self._stop.wait(0.1)


@pytest.fixture
def late_server(bind, tmp_path, request):
    server = LateServer(bind, str(tmp_path / 'late-bind'), request.param).start()
    yield server
    server.stop()


class LiveRun:
    """ansible-playbook's output line by line, with the monotonic time each line arrived."""

    def __init__(self, cmd, cwd, env):
        self.lines = []
        # A process group of its own, as a terminal gives a command: Ctrl-C reaches all of it.
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True)
        self.started = time.monotonic()
        self._queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._queue.put((time.monotonic(), line.rstrip('\n')))
        self._queue.put(None)

    def follow(self, until=None, timeout=300):
        """Collect lines until the run ends, or until ``until(line)`` is true for a line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                self.proc.wait(timeout=60)
                return None
            self.lines.append(item)
            if until is not None and until(item[1]):
                return item
        self.signal(signal.SIGKILL)
        raise AssertionError('ansible-playbook did not finish within %d s:\n%s'
                             % (timeout, self.text[-5000:]))

    def signal(self, signum):
        """Send ``signum`` to ansible-playbook and its workers, as Ctrl-C in a terminal does."""
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:  # already gone
            pass

    @property
    def rc(self):
        return self.proc.returncode

    @property
    def text(self):
        return '\n'.join(line for dummy, line in self.lines)

    def index(self, predicate, what):
        for i, (dummy, line) in enumerate(self.lines):
            if predicate(line):
                return i
        raise AssertionError('no line with %s in:\n%s' % (what, self.text[-6000:]))

    def matching(self, predicate):
        return [(t, line) for t, line in self.lines if predicate(line)]


def ansible_playbook(workdir, playbook, inventory, *args):
    os.makedirs(workdir, exist_ok=True)
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), playbook,
           '-i', inventory] + list(args)
    # What a terminal shows: there Python's stdout is line-buffered. Through a pipe it is not,
    # and Ansible does not flush, so its stdout lines (FAILED - RETRYING) would come late next to
    # the stderr lines of the wait (which servers are behind). This machine sets
    # PYTHONUNBUFFERED in its environment, a fresh one does not: set here, for both.
    return LiveRun(cmd, workdir, environment(workdir, {'PYTHONUNBUFFERED': '1'}))


def retrying(task):
    return lambda line: line.startswith('FAILED - RETRYING: ') and task in line


def role_alone(tmp_path, bind, late, **role_vars):
    """The dns_migration role on its own, verifying the primary and the late server."""
    nameservers = ['127.0.0.1:%d' % bind.port, '127.0.0.1:%d' % late.port]
    play = role_play('dns_migration', dict({
        'dns_migration_domain': ZONE, 'dns_migration_pattern': 'full',
        'dns_migration_from_tenant': False,
        'dns_migration_backup_dir': str(tmp_path / 'backups'),
        'dns_migration_nameservers': nameservers}, **role_vars),
        module_defaults={'group/exchangeonline.mail.dns': dns_args(bind)})
    workdir = str(tmp_path / 'run')
    return ansible_playbook(workdir, play_file(workdir, [play]), 'localhost,'), nameservers


@pytest.mark.parametrize('late_server', [LATE], indirect=True)
def test_each_round_names_the_server_behind_until_it_catches_up(bind, late_server, tmp_path):
    run, (primary, late) = role_alone(tmp_path, bind, late_server,
                                      dns_migration_wait_timeout=120,
                                      dns_migration_wait_interval=2)
    assert run.follow(timeout=240) is None
    assert run.rc == 0, run.text[-5000:]
    # Records on both servers in the end.
    assert bind.rrset(ZONE, 'MX')[1] == ['0 contoso-test.mail.protection.outlook.com.']

    # Right after the apply, before any wait line: the backup and how to undo it.
    backups = os.listdir(str(tmp_path / 'backups' / ZONE))
    assert len(backups) == 1
    backup = str(tmp_path / 'backups' / ZONE / backups[0])
    undo = run.index(lambda line: 'applied; the records as they were are in %s' % backup in line,
                     'the backup path')
    assert ("run the task exchangeonline.mail.mail_dns: {state: rollback, backup_path: '%s'} "
            "with this play's DNS options" % backup) in run.lines[undo][1]

    # Every round that failed: one line naming the late server and what it serves, then
    # Ansible's retry line. The primary is never named as behind.
    retries = run.matching(retrying(WAIT_TASK))
    assert len(retries) >= 2, run.text[-5000:]
    first = run.index(retrying(WAIT_TASK), 'a retry line')
    assert undo < first
    for i, (dummy, line) in enumerate(run.lines):
        if retrying(WAIT_TASK)(line):
            assert run.lines[i - 1][1] == '[localhost] ' + BEHIND % late, run.lines[i - 1]
    assert primary + ' serves' not in run.text
    # Rounds at least the 2 s interval apart (less 10 % jitter; plus the round itself, which
    # takes longer on a busy machine), and the wait ended in the round after the late server
    # caught up.
    times = [t for t, dummy in retries]
    assert all(1.8 <= b - a <= 2.2 + ROUND for a, b in zip(times, times[1:])), times
    last = max(i for i, (dummy, line) in enumerate(run.lines) if retrying(WAIT_TASK)(line))
    done = next(t for t, line in run.lines[last:] if line == 'ok: [localhost]')
    assert late_server.caught_up_at is not None
    assert 0 < done - late_server.caught_up_at < 2.2 + 2 * ROUND


@pytest.mark.parametrize('late_server', [None], indirect=True)
def test_a_server_that_never_catches_up_ends_the_wait_in_time_and_is_rolled_back(
        bind, late_server, tmp_path):
    zone_before = bind.axfr(ZONE)
    run, (primary, late) = role_alone(tmp_path, bind, late_server,
                                      dns_migration_wait_timeout=10,
                                      dns_migration_wait_interval=2)
    assert run.follow(timeout=120) is None
    assert run.rc != 0
    undo = run.index(lambda line: 'applied; the records as they were are in' in line, 'undo')
    start = run.lines[undo][0]
    retries = run.matching(retrying(WAIT_TASK))
    # 10 s in rounds of about 2 s (varied by up to 10 %): at most 5 retries (fewer when the
    # rounds themselves are slow). No round starts after the 10 s: the wait is over at most one
    # interval and one round later, and not before the planned rounds are done.
    assert 1 <= len(retries) <= 5, run.text[-5000:]
    failed = run.index(lambda line: line.startswith('fatal: [localhost]: FAILED!')
                       and 'servers behind' in line, 'the failed last round')
    assert 7.5 <= run.lines[failed][0] - start <= 10 + 2.2 + ROUND
    # The automatic rollback, and a message that says how long it waited.
    assert bind.axfr(ZONE) == zone_before
    message = run.lines[run.index(lambda line: 'dns_migration: verification failed' in line,
                                  'the failure message')][1]
    waited = re.search(r'verification failed for contoso.test \(full\) after (\d+) s of asking '
                       r'every server in rounds: contoso.test.: 3 check\(s\) failed. mx failed on '
                       + re.escape(late) + ': found 10 mail.contoso.test.', message)
    assert waited and 7 <= int(waited.group(1)) <= 10 + 2.2 + ROUND, message
    assert 'Hint:' not in message
    assert 'raise dns_migration_wait_timeout (exo_wait_timeout in exchangeonline.mail.migrate; ' \
           'it was 10 s)' in message
    assert 'The change was rolled back from' in message


@pytest.mark.parametrize('late_server', [None], indirect=True)
def test_migrate_stopped_with_ctrl_c_is_undone_by_the_printed_command(bind, late_server, tmp_path):
    """migrate prints the backup and the exact rollback command before it waits; the user
    presses Ctrl-C at the first retry line and runs the command it printed, from elsewhere."""
    zone_before = bind.axfr(ZONE)
    inventory = tmp_path / 'site' / 'inventory.yml'
    inventory.parent.mkdir()
    inventory.write_text(yaml.safe_dump({'all': {'hosts': {ZONE: {
        'exo_pattern': 'full', 'exo_use_tenant': False, 'exo_dns': bind.module_args(),
        'exo_nameservers': ['127.0.0.1:%d' % bind.port, '127.0.0.1:%d' % late_server.port],
        'exo_wait_timeout': 120, 'exo_wait_interval': 1}}}}))
    workdir = str(tmp_path / 'site')
    run = ansible_playbook(workdir, 'exchangeonline.mail.migrate', 'inventory.yml')
    assert run.follow(until=retrying(WAIT_TASK), timeout=120) is not None, run.text[-5000:]
    run.signal(signal.SIGINT)  # Ctrl-C
    # Ansible ends its workers and the play after a Ctrl-C; on a machine running two other full
    # test runs beside this one, that once took longer than 60 s (2026-12-03, fresh Debian root)
    run.follow(timeout=120)
    assert run.rc != 0
    assert bind.axfr(ZONE) != zone_before  # stopped after the apply: the change is in

    backups = str(tmp_path / 'site' / 'exo-backups')
    expected = ('ansible-playbook exchangeonline.mail.rollback -i %s --limit %s '
                '-e exo_backup_dir=%s' % (inventory, ZONE, backups))
    undo = run.index(lambda line: expected in line, 'the rollback command')
    assert undo < run.index(retrying(WAIT_TASK), 'the retry line')
    command = re.search(r'run (ansible-playbook exchangeonline\.mail\.rollback [^"]*)"',
                        run.lines[undo][1]).group(1)
    assert command == expected

    elsewhere = str(tmp_path / 'elsewhere')
    os.makedirs(elsewhere)
    argv = shlex.split(command)
    argv[0] = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    undone = subprocess.run(argv, cwd=elsewhere, env=environment(elsewhere), capture_output=True,
                            text=True, timeout=300, check=False)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert bind.axfr(ZONE) == zone_before


@pytest.mark.parametrize('late_server', [LATE], indirect=True)
def test_domain_role_waits_for_the_verification_txt_in_rounds(bind, m365, late_server, tmp_path):
    app = m365.add_app(secret='waits-domain-secret', roles=('Domain.ReadWrite.All',))
    backup_root = tmp_path / 'backups'
    late = '127.0.0.1:%d' % late_server.port
    play = role_play('domain', {
        'domain_name': ZONE, 'domain_backup_dir': str(backup_root),
        'domain_nameservers': ['127.0.0.1:%d' % bind.port, late],
        'domain_dns_wait_timeout': 60, 'domain_dns_wait_interval': 1,
        'domain_verify_timeout': 10,
    }, module_defaults={'group/exchangeonline.mail.dns': dns_args(bind),
                        'group/exchangeonline.mail.m365': m365_args(m365, app)})
    workdir = str(tmp_path / 'run')
    run = ansible_playbook(workdir, play_file(workdir, [play]), 'localhost,')
    assert run.follow(timeout=240) is None
    assert run.rc == 0, run.text[-5000:]
    assert m365.domains[ZONE]['isVerified'] is True
    backup, = os.listdir(str(backup_root / ZONE))
    task = 'Wait until every authoritative name server serves it'
    undo = run.index(lambda line: 'verification TXT published; the records as they were are in '
                     '%s' % (backup_root / ZONE / backup) in line, 'the backup')
    assert undo < run.index(retrying(task), 'a retry line')
    assert len(run.matching(retrying(task))) >= 2
    assert run.matching(lambda line: line == '[localhost] 1 of 2 servers behind: %s serves no '
                        'MS= TXT' % late)


# The late server's time starts before ansible-playbook does: a few seconds more.
@pytest.mark.parametrize('late_server', [LATE + 4], indirect=True)
def test_check_with_a_wait_follows_the_late_server(bind, late_server, tmp_path):
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(yaml.safe_dump({'all': {'hosts': {ZONE: {
        'exo_pattern': 'full', 'exo_use_tenant': False, 'exo_dns': bind.module_args(),
        'exo_nameservers': ['127.0.0.1:%d' % bind.port, '127.0.0.1:%d' % late_server.port],
        'exo_check_wait_timeout': 60, 'exo_wait_interval': 1,
        'exo_report_dir': str(tmp_path / 'report'), 'exo_check_smtp': False}}}}))

    def migrated(u):  # the full pattern's records, in one change of the primary
        apex = ZONE + '.'
        u.replace(apex, 3600, 'MX', '0 contoso-test.mail.protection.outlook.com.')
        u.add('autodiscover.' + apex, 3600, 'CNAME', 'autodiscover.outlook.com.')
        u.replace(apex, 3600, 'TXT', '"v=spf1 include:spf.protection.outlook.com -all"')
    assert bind.update(ZONE, migrated) == 'NOERROR'  # the late server follows LATE + 4 s later
    run = ansible_playbook(str(tmp_path / 'run'), 'exchangeonline.mail.check', str(inventory))
    assert run.follow(timeout=240) is None
    assert run.rc == 0, run.text[-5000:]
    task = "Ask every authoritative name server for the pattern's records"
    assert len(run.matching(retrying(task))) >= 2, run.text[-5000:]
    assert run.matching(lambda line: line.startswith('[%s] 1 of 2 servers behind: 127.0.0.1:%d '
                                                     'serves MX 10 mail.contoso.test.'
                                                     % (ZONE, late_server.port)))
    assert 'Every check passed for 1 domain(s)' in run.text
