"""Benchmark: mail_dns on Route 53 against an amazon.aws.route53 task loop, 20 zones.

Not a pass/fail test: it prints figures. Route 53 is moto in server mode behind the lab's strict
front (tests/lab/route53.py), which counts the API calls by operation. For 20 domains, each its
own hosted zone made from the lab's contoso.test zone, one inventory host per domain, ansible's
default forks (5), it runs

* ``mail_dns``: one task per host (provider route53, pattern ``full``, a backup per domain), and
* ``amazon.aws.route53``: what an admin writes with it to reach the same end state: a loop over
  the MX (replaced), the autodiscover CNAME and the apex TXT rrset (the merged SPF plus the
  unrelated TXT, since ``value`` with ``overwrite: true`` replaces the whole rrset), three tasks
  per zone, each its own ChangeResourceRecordSets,

each from fresh zones, with the same ``ansible-playbook``. It prints the wall time of each run,
the API calls per zone by operation and the ratio, and checks that both sides leave every zone
with the same rrsets (SOA and NS aside).

amazon.aws is not a dependency of the collection or of the test virtualenvs, and Galaxy is not
reachable: like bench_mail_dns, the bench builds a virtualenv of its own (``.venv/bench-route53``
or ``$EXO_BENCH_ROUTE53_VENV``) with the ansible-core the PyPI ``ansible`` package pins, boto3,
moto and dnspython, unpacks only ``amazon/aws`` from that package's wheel, and re-runs itself
with that virtualenv's Python.

Exit status: 0 when everything ran and the end states match, 1 when a run failed or the end
states differ, 2 when the bench environment cannot be built.
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

from tests.bench.bench_mail_dns import STAMP, bench_venv_dir, build_bench_venv, zone_text

PACKAGES = ('dnspython', 'requests', 'msal', 'boto3', 'botocore', 'moto[server]')
VARIABLE = 'EXO_BENCH_ROUTE53_VENV'


def ensure_bench_python(argv):
    venv = bench_venv_dir('bench-route53', VARIABLE)
    python = os.path.join(venv, 'bin', 'python')
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return venv
    if not (os.path.exists(os.path.join(venv, STAMP)) and os.path.exists(python)):
        build_bench_venv(venv, ('amazon/aws',), PACKAGES)
    os.execve(python, [python, '-m', 'tests.bench.bench_route53'] + argv,
              dict(os.environ, **{VARIABLE: venv}))
    return venv  # not reached


def domain_names(count):
    return ['r%02d.bench.test' % (i + 1) for i in range(count)]


AWS = {'aws_endpoint_url': '{{ aws.url }}', 'aws_access_key_id': '{{ aws.key }}',
       'aws_secret_access_key': '{{ aws.secret }}'}
MAIL_DNS_PLAY = [{
    'name': 'mail_dns', 'hosts': 'all', 'gather_facts': False,
    'tasks': [{
        'name': 'Exchange Online records (mail_dns, provider route53)',
        'exchangeonline.mail.mail_dns': dict(
            AWS, provider='route53', domain='{{ domain }}', pattern='full',
            backup_path='{{ backup_dir }}/{{ domain }}.json'),
    }],
}]
ROUTE53_PLAY = [{
    'name': 'route53', 'hosts': 'all', 'gather_facts': False,
    'tasks': [{
        'name': 'Exchange Online records (amazon.aws.route53 loop)',
        'amazon.aws.route53': {
            'state': 'present', 'zone': '{{ domain }}', 'record': '{{ item.record }}',
            'type': '{{ item.type }}', 'ttl': 3600, 'value': '{{ item.value }}',
            'overwrite': True, 'endpoint_url': '{{ aws.url }}',
            'access_key': '{{ aws.key }}', 'secret_key': '{{ aws.secret }}',
        },
        'loop': [
            {'record': '{{ domain }}', 'type': 'MX',
             'value': ["0 {{ domain | replace('.', '-') }}.mail.protection.outlook.com."]},
            {'record': 'autodiscover.{{ domain }}', 'type': 'CNAME',
             'value': ['autodiscover.outlook.com.']},
            {'record': '{{ domain }}', 'type': 'TXT',
             'value': ['"v=spf1 ip4:192.0.2.0/24 include:_spf.mailhost.test '
                       'include:spf.protection.outlook.com ~all"',
                       '"google-site-verification=Yq3nH2kQJk0_Tb9xW1cD8eP5rL7sM4aV6uZ2iO3gE"']},
        ],
        'loop_control': {'label': '{{ item.type }} {{ item.record }}'},
    }],
}]
PLAYS = {'mail_dns': MAIL_DNS_PLAY, 'route53': ROUTE53_PLAY}


def run_side(side, domains, workdir, collections_path):
    from tests.lab.ansible_runner import run_playbook
    from tests.lab.route53 import ACCESS_KEY, SECRET_KEY, Route53Lab

    os.makedirs(workdir)
    inventory = os.path.join(workdir, 'inventory.ini')
    with open(inventory, 'w') as f:
        f.write('[bench]\n' + ''.join('%s ansible_connection=local domain=%s\n'
                                      % (d.split('.')[0], d) for d in domains))
    playbook = os.path.join(workdir, side + '.yml')
    with open(playbook, 'w') as f:
        json.dump(PLAYS[side], f, indent=1)
    lab = Route53Lab(dict((d, zone_text(d)) for d in domains))
    lab.start()
    try:
        before = dict((d, lab.axfr(d)) for d in domains)
        run = run_playbook(playbook=playbook, inventory=inventory,
                           workdir=os.path.join(workdir, 'ansible'),
                           extra_vars={'aws': {'url': lab.url, 'key': ACCESS_KEY,
                                               'secret': SECRET_KEY},
                                       'backup_dir': os.path.join(workdir, 'backup')},
                           env={'ANSIBLE_COLLECTIONS_PATH': collections_path,
                                'AWS_DEFAULT_REGION': 'us-east-1'})
        failures = []
        if run.rc != 0:
            failures.append('%s: ansible-playbook exit %d\n%s\n%s'
                            % (side, run.rc, run.stdout[-4000:], run.stderr[-2000:]))
        state = dict((d, [r for r in lab.axfr(d) if r[2] not in ('NS', 'SOA')]) for d in domains)
        failures += ['%s: zone %s was not changed' % (side, d) for d in domains
                     if state[d] == [r for r in before[d] if r[2] not in ('NS', 'SOA')]]
        return run.seconds, collections.Counter(lab.calls), state, failures
    finally:
        lab.stop()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--domains', type=int, default=20)
    parser.add_argument('--keep', action='store_true', help='keep the work directory')
    args = parser.parse_args(argv)
    try:
        venv = ensure_bench_python(argv)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        print('Cannot build the bench virtualenv: %s' % e, file=sys.stderr)
        return 2
    from tests.lab.ansible_runner import collection_root
    collections_path = os.pathsep.join([os.path.dirname(collection_root()),
                                        os.path.join(venv, 'collections')])
    with open(os.path.join(venv, 'collections', 'ansible_collections', 'amazon', 'aws',
                           'MANIFEST.json')) as f:
        aws_version = json.load(f)['collection_info']['version']
    import ansible.release
    workdir = tempfile.mkdtemp(prefix='exo-bench-route53-')
    failures, seen = [], {}
    try:
        print('warm-up (not counted) ...', flush=True)
        for side in PLAYS:
            failures += run_side(side, domain_names(1), os.path.join(workdir, 'warm-' + side),
                                 collections_path)[3]
        for side in PLAYS:
            print('%d domains, %s ...' % (args.domains, side), flush=True)
            seen[side] = run_side(side, domain_names(args.domains),
                                  os.path.join(workdir, side), collections_path)
            failures += seen[side][3]
        same = seen['mail_dns'][2] == seen['route53'][2]
        if not same:
            failures.append('end states differ: mail_dns %s / route53 %s' % (
                seen['mail_dns'][2], seen['route53'][2]))
        print()
        print('mail_dns provider route53 vs amazon.aws.route53 loop (3 records per zone), %d '
              'zones; ansible-core %s, amazon.aws %s, moto behind the lab front'
              % (args.domains, ansible.release.__version__, aws_version))
        for side, (seconds, calls, _state, _f) in seen.items():
            per_zone = ', '.join('%s %.1f' % (op, n / float(args.domains))
                                 for op, n in sorted(calls.items()))
            print('  %-8s  wall %6.2f s   API calls per zone: %.1f (%s)'
                  % (side, seconds, sum(calls.values()) / float(args.domains), per_zone))
        print('  ratio route53/mail_dns wall time: %.2fx; end states (rrsets, SOA and NS aside): '
              '%s' % (seen['route53'][0] / seen['mail_dns'][0],
                      'identical' if same else 'DIFFERENT'))
    except Exception:  # pylint: disable=broad-except
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
