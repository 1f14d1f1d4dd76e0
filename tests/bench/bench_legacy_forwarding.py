"""The legacy_forwarding role against the naive way: mailbox_info, then one
ansible.builtin.lineinfile task per address in a loop, then postmap and a reload; both write the
same Postfix virtual alias map on a real Postfix, for a tenant of N mailboxes.

    python -m tests.bench.bench_legacy_forwarding [--mailboxes 300]

Prints wall times, the ratio, and whether both maps are the same; not a pass/fail test.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

from tests.lab.ansible_runner import run_playbook
from tests.lab.m365.emulator import M365Emulator
from tests.lab.postfix import PostfixServer, lab_workdir

DOMAIN = 'legacy.test'


def m365(emu, app):
    return dict(tenant_id=emu.tenant_id, client_id=app['client_id'], client_secret=app['secret'],
                authority_host=emu.url, graph_endpoint=emu.url, exo_endpoint=emu.url,
                ca_path=emu.ca_path)


def role_tasks(emu, app, postfix):
    return [{'name': 'forward', 'ansible.builtin.include_role': {
        'name': 'exchangeonline.mail.legacy_forwarding'}, 'vars': {
        'legacy_forwarding_domains': [DOMAIN], 'legacy_forwarding_m365': m365(emu, app),
        'legacy_forwarding_postfix_config_dir': postfix.config_dir}}]


def loop_tasks(emu, app, postfix):
    """What a playbook without the role does: one lineinfile per address, then postmap."""
    return [
        {'name': 'read', 'exchangeonline.mail.mailbox_info': dict(
            m365(emu, app), all=True, include=['mailbox', 'routing']), 'register': 'info'},
        {'name': 'one line per address', 'ansible.builtin.lineinfile': {
            'path': postfix.forwarding_map, 'regexp': '^{{ item.1 | regex_escape }}\\s',
            'line': '{{ item.1 | lower }}\t{{ item.0.routing_address }}'},
         'loop': "{{ info.mailboxes | selectattr('has_mailbox') | subelements('proxy_addresses')"
                 " | selectattr('1', 'search', '@legacy\\.test$') | list }}",
         'register': 'lines'},
        {'name': 'postmap', 'when': 'lines is changed', 'ansible.builtin.command':
            'postmap -c %s hash:%s' % (postfix.config_dir, postfix.forwarding_map)},
        {'name': 'reload', 'ansible.builtin.command': 'postfix -c %s reload' % postfix.config_dir,
         'when': 'lines is changed'},
    ]


def entries(postfix):
    with open(postfix.forwarding_map) as f:
        return sorted(line for line in f.read().splitlines() if line and line[0] != '#')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--mailboxes', type=int, default=300)
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix='exo-bench-forwarding-')
    emu = M365Emulator(workdir=os.path.join(work, 'm365'))
    emu.start()
    emu.add_domain(DOMAIN, verified=True, services=['Email'])
    for i in range(args.mailboxes):
        emu.add_user('user%05d@%s' % (i, DOMAIN))
    app = emu.add_app(roles=('User.Read.All', 'Exchange.ManageAsApp'))
    print('%d mailboxes in %s, one Postfix per side' % (args.mailboxes, DOMAIN))
    results = {}
    try:
        for name, tasks in (('legacy_forwarding role', role_tasks),
                            ('lineinfile loop', loop_tasks)):
            postfix = PostfixServer(workdir=lab_workdir(), mydomains=(DOMAIN,))
            postfix.start()
            try:
                start = time.monotonic()
                run = run_playbook(tasks(emu, app, postfix),
                                   workdir=os.path.join(work, name.replace(' ', '-')))
                seconds = time.monotonic() - start
                if run.rc != 0:
                    print('%s failed:\n%s' % (name, run.stdout[-3000:]))
                    return 1
                results[name] = (seconds, entries(postfix))
                print('  %-24s %7.2f s  %d map lines' % (name, seconds, len(results[name][1])))
            finally:
                postfix.stop()
                shutil.rmtree(postfix.workdir, ignore_errors=True)
    finally:
        emu.stop()
        shutil.rmtree(work, ignore_errors=True)
    role, loop = results['legacy_forwarding role'], results['lineinfile loop']
    print('  ratio (loop / role): %.1fx; same map: %s' % (loop[0] / role[0], role[1] == loop[1]))
    return 0 if role[1] == loop[1] else 1


if __name__ == '__main__':
    sys.exit(main())
