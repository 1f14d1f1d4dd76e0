"""Tenant scale: mailbox_info for a whole tenant and mailbox_protocols for thousands of changes at
Exchange's real page latency, against a per-mailbox ansible.builtin.uri loop; the lab's Microsoft
365 emulator adds latency to every request and to every Exchange page (per 1,000 objects).

    python -m tests.bench.bench_mailboxes [--mailboxes 50000] [--small 5000] [--changes 5000]
        [--latency 0.03] [--page-latency 1.5] [--loop 100] [--zone-records 20000] [--repeat 2]

Prints figures (wall times including ansible-playbook's start-up, requests by kind, the module
process's peak memory, ratios against the loop measured in the same run); not a pass/fail test.
"""

import argparse
import collections
import os
import resource
import sys
import tempfile
import time

from tests.lab.ansible_runner import run_playbook
from tests.lab.m365.emulator import M365Emulator

ROLES = ('User.Read.All', 'Exchange.ManageAsApp', 'Organization.Read.All')


def auth(emu, app):
    return dict(tenant_id=emu.tenant_id, client_id=app['client_id'], client_secret=app['secret'],
                authority_host=emu.url, graph_endpoint=emu.url, exo_endpoint=emu.url,
                ca_path=emu.ca_path)


def uri_loop_tasks(emu, app, upns):
    """What a playbook without this collection does: a token, then per mailbox a Graph call for
    the licence and an InvokeCommand call for the protocols, in a loop."""
    token_url = '%s/%s/oauth2/v2.0/token' % (emu.url, emu.tenant_id)
    anchor = 'APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@' + emu.tenant_id
    return [
        {'name': 'token', 'ansible.builtin.uri': {
            'url': token_url, 'method': 'POST', 'body_format': 'form-urlencoded',
            'ca_path': emu.ca_path, 'body': {
                'grant_type': 'client_credentials', 'client_id': app['client_id'],
                'client_secret': app['secret'], 'scope': 'https://outlook.office365.com/.default'}},
         'register': 'exo_token', 'no_log': True},
        {'name': 'graph token', 'ansible.builtin.uri': {
            'url': token_url, 'method': 'POST', 'body_format': 'form-urlencoded',
            'ca_path': emu.ca_path, 'body': {
                'grant_type': 'client_credentials', 'client_id': app['client_id'],
                'client_secret': app['secret'], 'scope': 'https://graph.microsoft.com/.default'}},
         'register': 'graph_token', 'no_log': True},
        {'name': 'licence per mailbox', 'ansible.builtin.uri': {
            'url': '%s/v1.0/users/{{ item }}/licenseDetails' % emu.url, 'ca_path': emu.ca_path,
            'headers': {'Authorization': 'Bearer {{ graph_token.json.access_token }}'}},
         'loop': upns, 'register': 'licences'},
        {'name': 'protocols per mailbox', 'ansible.builtin.uri': {
            'url': '%s/adminapi/beta/%s/InvokeCommand' % (emu.url, emu.tenant_id),
            'method': 'POST', 'body_format': 'json', 'ca_path': emu.ca_path,
            'headers': {'Authorization': 'Bearer {{ exo_token.json.access_token }}',
                        'X-AnchorMailbox': anchor},
            'body': {'CmdletInput': {'CmdletName': 'Get-CASMailbox',
                                     'Parameters': {'Identity': '{{ item }}'}}}},
         'loop': upns, 'register': 'cas', 'failed_when': False},
    ]


def kinds(emu):
    """Requests by kind: Graph path (ids folded) or Exchange cmdlet."""
    count = collections.Counter()
    for r in emu.requests:
        if r.get('cmdlet'):
            count['exchange %s%s' % (r['cmdlet'], ' (refused: concurrency)'
                                     if r.get('concurrency_refused') else '')] += 1
        elif r['resource'] == 'graph':
            path = r['path'].replace('/v1.0', '')
            count['graph %s%s' % ('/users/{id}/...' if path.count('/') > 1 else path,
                                  ' (%d in $batch)' % len(r['batch_items'])
                                  if r.get('batch_items') else '')] += 1
        else:
            count[r['resource'] or 'other'] += 1
    return ', '.join('%s: %d' % kv for kv in sorted(count.items()))


def peak_mb():
    """The largest resident set of any finished child process so far (the module's), in MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def play(emu, work, name, tasks):
    emu.clear_log()
    emu.exo.peak_in_flight = 0
    run = run_playbook(tasks, workdir=os.path.join(work, name))
    if run.rc != 0:
        print(run.stdout[-3000:], run.stderr[-2000:])
        raise SystemExit('%s failed' % name)
    return run


def tenant(work, count, opts, name):
    emu = M365Emulator(workdir=os.path.join(work, name))
    started = time.monotonic()
    emu.generate_users(count, domain=emu.tenant_domain)
    made = time.monotonic() - started
    app = emu.add_app(secret='bench-mailboxes-secret', roles=ROLES)
    emu.latency = opts.latency
    emu.exo.page_latency = opts.page_latency
    emu.exo.max_concurrent = opts.tenant_limit
    return emu, app, made


def large(opts, work):
    emu, app, made = tenant(work, opts.mailboxes, opts, 'large')
    with emu:
        print('== %d mailboxes: %.0f ms per request, %.1f s per 1,000 objects of an Exchange '
              'page, Exchange takes %s requests at once (tenant generated in %.1f s)'
              % (opts.mailboxes, opts.latency * 1000, opts.page_latency,
                 opts.tenant_limit or 'any number of', made))
        for label, extra in (('summary (the default)', {}),
                             ('output_path (whole entries to a file)',
                              {'output_path': os.path.join(work, 'mailboxes.json')}),
                             ('detail: full', {'detail': 'full'})):
            runs = [play(emu, work, 'info-%d-%d' % (len(label), i), [
                {'name': 'all', 'exchangeonline.mail.mailbox_info': dict(
                    auth(emu, app), all=True, **extra), 'register': 'out'}])
                for i in range(opts.repeat)]  # the first run also warms the lab's caches
            run = min(runs, key=lambda r: r.seconds)
            result = run.last['result']
            print('mailbox_info all: true, %s: %d users in %.1f s wall, best of %s (target '
                  'under 60 s: %s); peak %d in flight; %s; module peak memory so far %.0f MB'
                  % (label, result['count'], run.seconds, ' / '.join(
                      '%.1f' % r.seconds for r in runs), 'MET' if run.seconds < 60 else
                     'MISSED', emu.exo.peak_in_flight, kinds(emu), peak_mb()))
        targets = [u['userPrincipalName'] for u in emu.users if u['_mailbox']][:opts.changes]
        run = play(emu, work, 'protocols', [
            {'name': 'imap off', 'exchangeonline.mail.mailbox_protocols': dict(
                auth(emu, app), mailboxes=targets, imap=False), 'register': 'out'}])
        changed = run.last['result']['changed_count']
        print('mailbox_protocols: %d of %d mailboxes changed in %.1f s wall (target under 30 s: '
              '%s); peak %d in flight; %s'
              % (changed, len(targets), run.seconds, 'MET' if run.seconds < 30 else 'MISSED',
                 emu.exo.peak_in_flight, kinds(emu)))


def small(opts, work):
    emu, app, made = tenant(work, opts.small, opts, 'small')
    with emu:
        info = play(emu, work, 'small-info', [
            {'name': 'all', 'exchangeonline.mail.mailbox_info': dict(
                auth(emu, app), all=True), 'register': 'out'}])
        count = info.last['result']['count']
        requests = len(emu.requests)
        upns = sorted(m['upn'] for m in info.last['result']['mailboxes'])[:opts.loop]
        loop = play(emu, work, 'loop', uri_loop_tasks(emu, app, upns))
    per_module = info.seconds / count
    per_loop = loop.seconds / len(upns)
    print('\n== %d mailboxes, same latencies' % opts.small)
    print('mailbox_info all: true: %d users in %.2f s wall, %d requests' % (
        count, info.seconds, requests))
    print('uri loop (licence + protocols per mailbox): %d mailboxes in %.2f s wall'
          % (len(upns), loop.seconds))
    print('per mailbox: %.5f s vs %.4f s -> %.0fx faster (target at least 500x: %s)'
          % (per_module, per_loop, per_loop / per_module,
             'MET' if per_loop / per_module >= 500 else 'MISSED'))


def zone(opts, work):
    from tests.bench.bench_zone_read import read_both_ways
    print('\n== a %d-record zone on BIND 9' % opts.zone_records)
    read_both_ways(opts.zone_records, os.path.join(work, 'zone'))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--mailboxes', type=int, default=50000)
    parser.add_argument('--small', type=int, default=5000)
    parser.add_argument('--changes', type=int, default=5000)
    parser.add_argument('--loop', type=int, default=100)
    parser.add_argument('--latency', type=float, default=0.03)
    parser.add_argument('--page-latency', type=float, default=1.5)
    parser.add_argument('--tenant-limit', type=int, default=None,
                        help='requests Exchange serves at once (default: no limit)')
    parser.add_argument('--zone-records', type=int, default=20000)
    parser.add_argument('--repeat', type=int, default=2,
                        help='runs of each mailbox_info variant (the best is reported)')
    parser.add_argument('--skip', action='append', default=[],
                        choices=['large', 'small', 'zone'])
    opts = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix='exo-bench-mailboxes-')
    for part in (large, small, zone):
        if part.__name__ not in opts.skip:
            part(opts, work)
    return 0


if __name__ == '__main__':
    sys.exit(main())
