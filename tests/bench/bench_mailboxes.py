"""mailbox_info for a whole tenant against a per-mailbox ansible.builtin.uri loop, and the
throughput of mailbox_protocols; the lab's Microsoft 365 emulator adds latency to every request.

    python -m tests.bench.bench_mailboxes [--mailboxes 5000] [--loop 100] [--latency 0.03]

Prints figures; not a pass/fail test.
"""

import argparse
import os
import sys
import tempfile

from tests.lab.ansible_runner import run_playbook
from tests.lab.m365.emulator import M365Emulator

ROLES = ('User.Read.All', 'Exchange.ManageAsApp')


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--mailboxes', type=int, default=5000)
    parser.add_argument('--loop', type=int, default=100)
    parser.add_argument('--latency', type=float, default=0.03)
    parser.add_argument('--protocols', type=int, default=1000)
    opts = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix='exo-bench-mailboxes-')
    with M365Emulator(workdir=os.path.join(work, 'm365')) as emu:
        emu.generate_users(opts.mailboxes, domain=emu.tenant_domain)
        app = emu.add_app(secret='bench-mailboxes-secret', roles=ROLES)
        emu.latency = opts.latency
        info = run_playbook([{'name': 'all', 'exchangeonline.mail.mailbox_info': dict(
            auth(emu, app), all=True), 'register': 'out'}], workdir=os.path.join(work, 'info'))
        if info.rc != 0:
            print(info.stdout[-3000:], info.stderr[-2000:])
            return 1
        count = info.last['result']['count']
        info_requests = len(emu.requests)
        upns = sorted(m['upn'] for m in info.last['result']['mailboxes'])[:opts.loop]
        emu.clear_log()
        loop = run_playbook(uri_loop_tasks(emu, app, upns), workdir=os.path.join(work, 'loop'))
        if loop.rc != 0:
            print(loop.stdout[-3000:], loop.stderr[-2000:])
            return 1
        targets = [m['upn'] for m in info.last['result']['mailboxes'] if m.get('has_mailbox')]
        targets = targets[:opts.protocols]
        emu.clear_log()
        change = run_playbook([{'name': 'imap off', 'exchangeonline.mail.mailbox_protocols': dict(
            auth(emu, app), mailboxes=targets, imap=False), 'register': 'out'}],
            workdir=os.path.join(work, 'protocols'))
        if change.rc != 0:
            print(change.stdout[-3000:], change.stderr[-2000:])
            return 1
        sets = sum(1 for r in emu.requests if r.get('cmdlet') == 'Set-CASMailbox')
    per_module = info.seconds / count
    per_loop = loop.seconds / len(upns)
    print('emulator latency %.0f ms per request\n' % (opts.latency * 1000))
    print('mailbox_info all=true: %d mailboxes in %.2f s wall (ansible-playbook start-up '
          'included), %d HTTP requests' % (count, info.seconds, info_requests))
    print('uri loop (licence + protocols per mailbox): %d mailboxes in %.2f s wall'
          % (len(upns), loop.seconds))
    print('per mailbox: %.5f s vs %.4f s -> %.0fx faster'
          % (per_module, per_loop, per_loop / per_module))
    print('mailbox_protocols: %d mailboxes changed (%d Set-CASMailbox) in %.2f s -> %.0f '
          'mailboxes/s' % (len(targets), sets, change.seconds, len(targets) / change.seconds))
    print('\ntargets: all %d in under 15 s: %s; at least 200x per mailbox: %s' % (
        count, 'MET' if info.seconds < 15 else 'MISSED', 'MET' if per_loop / per_module >= 200
        else 'MISSED'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
