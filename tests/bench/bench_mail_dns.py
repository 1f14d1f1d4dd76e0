"""Benchmark: mail_dns pattern ``full`` against a community.general.nsupdate loop.

Not a pass/fail test: it prints figures. For 1 and 20 domains (each its own zone on one real
BIND 9, one inventory host per domain, default forks) it runs

* ``mail_dns``: one task per host (pattern ``full``, a backup per domain), and
* ``nsupdate``: what a careful admin writes with ``community.general.nsupdate`` to reach the same
  end state: a loop over MX (replaced), the autodiscover CNAME and the apex TXT rrset (the merged
  SPF plus the unrelated TXT, since ``value`` replaces the whole rrset),

each from the same fresh zones, with the same ``ansible-playbook``. It prints the wall time of
each whole run, the UPDATE messages and SOA serial bumps per zone and the ratio, checks that both
sides leave every zone with the same records (AXFR, SOA aside) and says whether the targets are
met: one UPDATE per zone, and at least 5x faster than the nsupdate loop at 20 domains.

community.general must not become a dependency of the collection or of the test virtualenvs, and
Galaxy is not reachable: the bench builds its own virtualenv (``.venv/bench`` beside the test
virtualenvs, or ``$EXO_BENCH_VENV``) with the ansible-core that the PyPI ``ansible`` package pins,
plus dnspython, and unpacks only ``community/general`` from that package's wheel into it. Then it
re-runs itself with that virtualenv's Python, so both sides use its ``ansible-playbook``.

Exit status: 0 when everything ran and the end states match (a missed target only prints),
1 when a run failed or the end states differ, 2 when the bench environment cannot be built.
"""

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ANSIBLE_SPEC = os.environ.get('EXO_BENCH_ANSIBLE', 'ansible')
STAMP = '.exo-bench-stamp'
TARGET_RATIO = 5.0  # issue 13: the 20-domain ratio stays at least 5x
TARGET_UPDATES = 1


# -- the bench's own virtualenv ---------------------------------------------------------------
def bench_venv_dir(name='bench', variable='EXO_BENCH_VENV'):
    """``$<variable>``, else ``name`` beside the test venv running us, else a temp dir."""
    if os.environ.get(variable):
        return os.path.abspath(os.environ[variable])
    parent = os.path.dirname(sys.prefix)
    if sys.prefix != sys.base_prefix and os.path.basename(parent) == '.venv':
        return os.path.join(parent, name)
    return os.path.join(tempfile.gettempdir(), 'exo-%s-venv' % name)


def find_python():
    """A Python >= 3.12 with venv and ensurepip (the ``ansible`` package needs 3.12+)."""
    pyenv = os.environ.get('PYENV_ROOT', os.path.expanduser('~/.pyenv'))
    for version in ('3.12', '3.13'):
        candidates = [shutil.which('python' + version), '/usr/bin/python' + version]
        candidates += sorted(glob.glob('%s/versions/%s*/bin/python%s' % (pyenv, version, version)))
        for candidate in candidates:
            if not candidate or not os.access(candidate, os.X_OK):
                continue
            probe = [candidate, '-c', 'import venv, ensurepip']
            if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
                return candidate
    raise RuntimeError('need python3.12 or python3.13 with venv for the bench virtualenv')


def _pip(python, *args):
    proc = subprocess.run([python, '-m', 'pip', '-q'] + list(args), capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError('pip %s failed:\n%s%s'
                           % (' '.join(args), proc.stdout, proc.stderr[-3000:]))


def build_bench_venv(venv, collections=('community/general',), packages=('dnspython',)):
    """Create ``venv``: ansible-core as pinned by ``ansible``, ``packages`` and the
    ``collections`` (namespace/name) unpacked from the ``ansible`` wheel."""
    started = time.monotonic()
    print('Building the bench virtualenv %s ...' % venv, flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    base = find_python()
    subprocess.run([base, '-m', 'venv', venv], check=True)
    python = os.path.join(venv, 'bin', 'python')
    wheels = os.path.join(venv, 'wheels')
    # Only the wheel: installing the whole package unpacks ~500 MB of collections (about 33 s
    # here); the one collection the bench needs is 13 MB.
    _pip(python, 'download', '--no-deps', '-d', wheels, ANSIBLE_SPEC)
    wheel = glob.glob(os.path.join(wheels, 'ansible-*.whl'))[0]
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        lines = z.read(meta).decode('utf-8').splitlines()
        version = next(line.split(':', 1)[1].strip() for line in lines
                       if line.startswith('Version:'))
        core = next(line.split(':', 1)[1].strip() for line in lines
                    if line.startswith('Requires-Dist:') and 'ansible-core' in line)
        prefixes = tuple('ansible_collections/%s/' % c for c in collections)
        z.extractall(os.path.join(venv, 'collections'),
                     [n for n in z.namelist() if n.startswith(prefixes)])
    _pip(python, 'install', core.replace(' ', ''), *packages)
    os.unlink(wheel)
    with open(os.path.join(venv, STAMP), 'w') as f:
        json.dump({'ansible': version, 'ansible_core_spec': core,
                   'seconds': round(time.monotonic() - started, 1)}, f)
    print('  ansible %s wheel: %s unpacked; %s and %s installed (%.1f s)'
          % (version, ', '.join(collections), core, ', '.join(packages),
             time.monotonic() - started), flush=True)


def ensure_bench_python(argv):
    """Re-run this module with the bench venv's Python unless it is the one running."""
    venv = bench_venv_dir()
    python = os.path.join(venv, 'bin', 'python')
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return venv
    if not (os.path.exists(os.path.join(venv, STAMP)) and os.path.exists(python)):
        build_bench_venv(venv)
    env = dict(os.environ, EXO_BENCH_VENV=venv)
    os.execve(python, [python, '-m', 'tests.bench.bench_mail_dns'] + argv, env)


# -- zones, inventory, playbooks --------------------------------------------------------------
def domain_names(count):
    return ['d%02d.bench.test' % (i + 1) for i in range(count)]


def zone_text(domain):
    from tests.lab.bind import zone_template
    return zone_template('contoso.test.zone').replace('contoso.test', domain)


MAIL_DNS_PLAY = [{
    'name': 'mail_dns', 'hosts': 'all', 'gather_facts': False,
    'tasks': [{
        'name': 'Exchange Online records (mail_dns)',
        'exchangeonline.mail.mail_dns': {
            'server': '{{ dns.server }}', 'port': '{{ dns.port }}',
            'key_name': '{{ dns.key_name }}', 'key_secret': '{{ dns.key_secret }}',
            'key_algorithm': '{{ dns.key_algorithm }}',
            'domain': '{{ domain }}', 'pattern': 'full',
            'backup_path': '{{ backup_dir }}/{{ domain }}.json',
        },
    }],
}]

# The same end state by hand: nsupdate's `value` replaces the whole rrset, so the apex TXT gets
# the merged SPF and the unrelated TXT values together.
NSUPDATE_PLAY = [{
    'name': 'nsupdate', 'hosts': 'all', 'gather_facts': False,
    'tasks': [{
        'name': 'Exchange Online records (community.general.nsupdate loop)',
        'community.general.nsupdate': {
            'server': '{{ dns.server }}', 'port': '{{ dns.port }}',
            'key_name': '{{ dns.key_name }}', 'key_secret': '{{ dns.key_secret }}',
            'key_algorithm': '{{ dns.key_algorithm }}',
            'zone': '{{ domain }}', 'record': '{{ item.record }}', 'type': '{{ item.type }}',
            'value': '{{ item.value }}', 'ttl': 3600,
        },
        'loop': [
            {'record': '{{ domain }}.', 'type': 'MX',
             'value': ["0 {{ domain | replace('.', '-') }}.mail.protection.outlook.com."]},
            {'record': 'autodiscover.{{ domain }}.', 'type': 'CNAME',
             'value': ['autodiscover.outlook.com.']},
            {'record': '{{ domain }}.', 'type': 'TXT',
             'value': ['v=spf1 ip4:192.0.2.0/24 include:_spf.mailhost.test '
                       'include:spf.protection.outlook.com ~all',
                       'google-site-verification=Yq3nH2kQJk0_Tb9xW1cD8eP5rL7sM4aV6uZ2iO3gE']},
        ],
        'loop_control': {'label': '{{ item.type }} {{ item.record }}'},
    }],
}]

PLAYS = {'mail_dns': MAIL_DNS_PLAY, 'nsupdate': NSUPDATE_PLAY}


def write_files(workdir, domains):
    inventory = os.path.join(workdir, 'inventory.ini')
    with open(inventory, 'w') as f:
        f.write('[bench]\n')
        for domain in domains:
            f.write('%s ansible_connection=local domain=%s\n' % (domain.split('.')[0], domain))
    for side, play in PLAYS.items():
        with open(os.path.join(workdir, side + '.yml'), 'w') as f:
            json.dump(play, f, indent=1)
    return inventory


# -- what named saw -------------------------------------------------------------------------
# Every signed UPDATE that named accepts gets one update-security "approved" line; those that
# reach a zone then get "updating zone" lines from the same client, and a change made shows up as
# such lines that are not "update unsuccessful". (BindServer.update_messages() counts every client
# with an "updating zone" line, failed prerequisite probes included, so it would count nsupdate's
# NXRRSET probes as messages that changed the zone.)
_APPROVED = re.compile(r' update-security: \S+ client @\S+ (\S+?)(?:/key \S+)?: signer .* approved')
_UPDATING = re.compile(r" update: \S+ client @\S+ (\S+?)(?:/key \S+)?: updating zone "
                       r"'([^/']+)/IN': (.*)")


def update_counts(bind, zones):
    """({zone: UPDATE messages that changed it}, number of UPDATE messages named received)."""
    received = 0
    current = {}  # client -> number of the message it sent last (ports get reused over a run)
    changed = dict((z.rstrip('.').lower(), set()) for z in zones)
    for line in bind.log_text().splitlines():
        m = _APPROVED.search(line)
        if m:
            received += 1
            current[m.group(1)] = received
            continue
        m = _UPDATING.search(line)
        if m:
            zone = m.group(2).rstrip('.').lower()
            if zone in changed and not m.group(3).startswith('update unsuccessful'):
                changed[zone].add(current.get(m.group(1), m.group(1)))
    return dict((z, len(c)) for z, c in changed.items()), received


# -- one measured run -------------------------------------------------------------------------
class SideRun:
    def __init__(self, count, side, seconds, updates, received, serial_deltas, state, failures):
        self.count = count
        self.side = side
        self.seconds = seconds
        self.updates = updates              # {zone: UPDATE messages that changed it}
        self.received = received            # UPDATE messages named received, probes included
        self.serial_deltas = serial_deltas  # {zone: SOA serial after - before}
        self.state = state                  # {zone: AXFR without SOA}
        self.failures = failures


def run_side(side, domains, workdir, forks, collections_path):
    from tests.lab.ansible_runner import run_playbook
    from tests.lab.bind import BindServer

    os.makedirs(workdir)
    inventory = write_files(workdir, domains)
    bind = BindServer(dict((d, zone_text(d)) for d in domains),
                      workdir=os.path.join(workdir, 'bind'))
    bind.start()
    try:
        serials = dict((d, bind.soa_serial(d)) for d in domains)
        before = dict((d, bind.axfr(d)) for d in domains)
        dns = dict(server='127.0.0.1', port=bind.port, key_name=bind.key_name,
                   key_secret=bind.key_secret, key_algorithm=bind.algorithm)
        run = run_playbook(playbook=os.path.join(workdir, side + '.yml'), inventory=inventory,
                           forks=forks, workdir=os.path.join(workdir, 'ansible'),
                           extra_vars={'dns': dns, 'backup_dir': os.path.join(workdir, 'backup')},
                           env={'ANSIBLE_COLLECTIONS_PATH': collections_path})
        failures = []
        if run.rc != 0:
            failures.append('%s: ansible-playbook exit %d\n%s\n%s'
                            % (side, run.rc, run.stdout[-4000:], run.stderr[-2000:]))
        failures += ['%s on %s: %s' % (r['task'], r['host'], r['result'].get('msg', r['result']))
                     for r in run.results if r['status'] != 'ok']
        state = dict((d, bind.axfr(d)) for d in domains)
        failures += ['%s: zone %s was not changed' % (side, d) for d in domains
                     if state[d] == before[d]]
        updates, received = update_counts(bind, domains)
        deltas = dict((d, bind.soa_serial(d) - serials[d]) for d in domains)
        # Every message that changes a zone bumps its serial once: the two counts must agree.
        failures += ['%s: zone %s: %d UPDATE messages changed it but its serial moved by %d'
                     % (side, d, updates[d], deltas[d]) for d in domains if updates[d] != deltas[d]]
        return SideRun(len(domains), side, run.seconds, updates, received, deltas, state,
                       failures)
    finally:
        bind.stop()


def state_difference(a, b):
    """Lines that tell how the zones of two runs differ (empty when they are the same)."""
    out = []
    for zone in sorted(a.state):
        only_a = sorted(set(a.state[zone]) - set(b.state[zone]))
        only_b = sorted(set(b.state[zone]) - set(a.state[zone]))
        out += ['  %s only after %s: %s' % (zone, a.side, r) for r in only_a]
        out += ['  %s only after %s: %s' % (zone, b.side, r) for r in only_b]
    return out


# -- report -----------------------------------------------------------------------------------
def span(values):
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else '%d-%d' % (lo, hi)


def span_f(values):
    lo, hi = min(values), max(values)
    return '%g' % lo if lo == hi else '%g-%g' % (lo, hi)


def report(results, forks, repeat, info):
    print()
    print('mail_dns pattern full vs community.general.nsupdate loop (3 records per domain)')
    print('%s; forks %s; one zone and one inventory host per domain; %d run(s) per cell%s'
          % (info, forks or '5 (ansible default)', repeat,
             ', median wall time' if repeat > 1 else ''))
    print()
    header = '%7s  %-8s  %7s  %16s  %17s  %17s  %s' % (
        'domains', 'side', 'wall s', 'UPDATE msgs/zone', 'UPDATEs rcvd/zone', 'serial delta/zone',
        'nsupdate/mail_dns')
    print(header)
    print('-' * len(header))
    verdicts = []
    for count in sorted(results):
        walls = {}
        for side in ('mail_dns', 'nsupdate'):
            runs = results[count][side]
            walls[side] = statistics.median(r.seconds for r in runs)
            updates = [n for r in runs for n in r.updates.values()]
            received = [r.received / float(r.count) for r in runs]
            serials = [n for r in runs for n in r.serial_deltas.values()]
            ratio = ''
            if side == 'nsupdate':
                ratio = '%.2fx' % (walls['nsupdate'] / walls['mail_dns'])
            print('%7d  %-8s  %7.2f  %16s  %17s  %17s  %s' % (
                count, side, walls[side], span(updates), span_f(received), span(serials), ratio))
            if side == 'mail_dns':
                ok = max(updates) <= TARGET_UPDATES
                ok = ok and max(received) <= TARGET_UPDATES
                verdicts.append('%s one UPDATE per zone at %d domain(s): %s changed it, %s received'
                                % ('MET   ' if ok else 'MISSED', count, span(updates),
                                   span_f(received)))
        if count >= 20:
            ratio = walls['nsupdate'] / walls['mail_dns']
            verdicts.append('%s >= %.0fx faster than the nsupdate loop at %d domains: %.2fx'
                            % ('MET   ' if ratio >= TARGET_RATIO else 'MISSED', TARGET_RATIO,
                               count, ratio))
    print('UPDATE msgs/zone: messages that changed the zone; UPDATEs rcvd/zone: every signed '
          'UPDATE named received\n(prerequisite-only probes included), per zone.')
    print()
    for line in verdicts:
        print('target ' + line)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--domains', default='1,20',
                        help='comma-separated domain counts (default 1,20)')
    parser.add_argument('--repeat', type=int, default=1, help='runs per count and side')
    parser.add_argument('--forks', type=int, default=None,
                        help='ansible-playbook --forks (default: ansible default, 5)')
    parser.add_argument('--keep', action='store_true', help='keep the work directory')
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.domains.split(',') if c.strip()]
    if not counts or min(counts) < 1 or max(counts) > 99 or args.repeat < 1:
        parser.error('--domains takes counts from 1 to 99, --repeat at least 1')

    try:
        venv = ensure_bench_python(argv)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        print('Cannot build the bench virtualenv: %s' % e, file=sys.stderr)
        return 2

    from tests.lab.ansible_runner import collection_root
    collections_path = os.pathsep.join([os.path.dirname(collection_root()),
                                        os.path.join(venv, 'collections')])
    with open(os.path.join(venv, STAMP)) as f:
        stamp = json.load(f)
    import ansible.release
    with open(os.path.join(venv, 'collections', 'ansible_collections', 'community', 'general',
                           'MANIFEST.json')) as f:
        cg_version = json.load(f)['collection_info']['version']
    info = ('ansible-core %s (pinned by ansible %s), community.general %s, Python %s'
            % (ansible.release.__version__, stamp['ansible'], cg_version,
               '.'.join(map(str, sys.version_info[:3]))))

    workdir = tempfile.mkdtemp(prefix='exo-bench-')
    results, failures = {}, []
    try:
        # Untimed warm-up of both sides (first imports, byte-compiling the unpacked collection).
        print('warm-up (not counted) ...', flush=True)
        for side in ('mail_dns', 'nsupdate'):
            warm = run_side(side, domain_names(1), os.path.join(workdir, 'warm-' + side),
                            args.forks, collections_path)
            failures += warm.failures
        for count in counts:
            results[count] = {'mail_dns': [], 'nsupdate': []}
            for rep in range(args.repeat):
                # Alternate which side goes first so neither always runs on a warmer machine.
                order = ('mail_dns', 'nsupdate') if rep % 2 == 0 else ('nsupdate', 'mail_dns')
                done = {}
                for side in order:
                    print('%d domain(s), %s, run %d ...' % (count, side, rep + 1), flush=True)
                    done[side] = run_side(side, domain_names(count),
                                          os.path.join(workdir, '%d-%s-%d' % (count, side, rep)),
                                          args.forks, collections_path)
                    failures += done[side].failures
                    results[count][side].append(done[side])
                diff = state_difference(done['mail_dns'], done['nsupdate'])
                print('  end states (AXFR of %d zone(s), SOA aside): %s'
                      % (count, 'identical' if not diff else 'DIFFERENT'), flush=True)
                if diff:
                    failures.append('end states differ at %d domain(s), run %d:\n%s'
                                    % (count, rep + 1, '\n'.join(diff)))
        report(results, args.forks, args.repeat, info)
    except Exception:  # report it with the work directory kept, and exit non-zero
        import traceback
        failures.append(traceback.format_exc())
    finally:
        if args.keep or failures:
            print('\nwork directory kept: %s' % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        print('\nFAILED:', file=sys.stderr)
        for failure in failures:
            print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
