"""How often a playbook asks the identity endpoint for tokens, with and without token_cache_path.

A 10-task playbook (domain_info x 10) against the lab's Microsoft 365 emulator; the emulator's
request log counts the token requests. Prints both counts and wall times; not a pass/fail test.

    python -m tests.bench.bench_token_cache [--tasks 10]
"""

import argparse
import os
import sys
import tempfile

from tests.lab.ansible_runner import run_playbook
from tests.lab.m365.emulator import M365Emulator

DOMAIN = 'contoso.test'


def playbook_tasks(emu, app, count, cache_path):
    args = dict(tenant_id=emu.tenant_id, client_id=app['client_id'], client_secret=app['secret'],
                authority_host=emu.url, graph_endpoint=emu.url, exo_endpoint=emu.url,
                ca_path=emu.ca_path, domain=DOMAIN)
    if cache_path:
        args['token_cache_path'] = cache_path
    return [{'name': 'domain_info %d' % i, 'exchangeonline.mail.domain_info': args}
            for i in range(count)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--tasks', type=int, default=10)
    opts = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix='exo-bench-tokens-')
    rows = []
    with M365Emulator(workdir=os.path.join(work, 'm365')) as emu:
        emu.add_domain(DOMAIN, verified=True, services=['Email'])
        app = emu.add_app(secret='bench-secret', roles=('Domain.Read.All',))
        for label, cache in (('without token_cache_path', None),
                             ('with token_cache_path', os.path.join(work, 'tokens.json'))):
            emu.clear_log()
            run = run_playbook(playbook_tasks(emu, app, opts.tasks, cache),
                               workdir=os.path.join(work, label.replace(' ', '-')))
            if run.rc != 0:
                print(run.stdout[-3000:], run.stderr[-3000:])
                return 1
            tokens = sum(1 for r in emu.requests if r['resource'] == 'token')
            graph = sum(1 for r in emu.requests if r['resource'] == 'graph')
            rows.append((label, tokens, graph, run.seconds))
    print('%d-task playbook (domain_info), one resource (Graph)\n' % opts.tasks)
    print('%-26s %14s %14s %8s' % ('', 'token requests', 'Graph requests', 'wall s'))
    for label, tokens, graph, seconds in rows:
        print('%-26s %14d %14d %8.2f' % (label, tokens, graph, seconds))
    print('\ntarget: one token request per resource with the cache: %s'
          % ('MET' if rows[1][1] == 1 else 'MISSED (%d)' % rows[1][1]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
