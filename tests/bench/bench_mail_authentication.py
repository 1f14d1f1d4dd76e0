"""The whole mail authentication chain (role mail_authentication: DKIM signing config created
disabled, its CNAMEs and a DMARC stage published in one UPDATE, every name server waited for, DKIM
enabled and its Status confirmed) for 1 domain and for N domains at once (one inventory host per
domain, forks N), on a real BIND 9 and the lab's Microsoft 365 emulator.

    python -m tests.bench.bench_mail_authentication [--domains 20]

Prints the wall time of each run, the time per domain, the ratio of N domains in one run against
N runs of one domain (measured in the same run: N times the one-domain time), the cmdlets and
UPDATE messages per domain; not a pass/fail test.
"""

import argparse
import json
import os
import shutil
import tempfile
import time

from tests.lab.ansible_runner import run_playbook
from tests.lab.bind import BindServer, zone_template
from tests.lab.m365.emulator import M365Emulator

ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'Exchange.ManageAsApp')


def playbook(path, emu, app, bind, backups):
    play = {'name': 'mail authentication', 'hosts': 'all', 'connection': 'local',
            'gather_facts': False, 'tasks': [{
                'name': 'chain', 'ansible.builtin.include_role': {
                    'name': 'exchangeonline.mail.mail_authentication'},
                'vars': {
                    'mail_authentication_domain': '{{ inventory_hostname }}',
                    'mail_authentication_dmarc_policy': 'none',
                    'mail_authentication_dmarc_rua': ['mailto:dmarc@{{ inventory_hostname }}'],
                    'mail_authentication_backup_dir': backups,
                    'mail_authentication_wait_interval': 1,
                    'mail_authentication_wait_timeout': 60,
                    'mail_authentication_dns': bind.module_args(),
                    'mail_authentication_m365': dict(
                        tenant_id=emu.tenant_id, client_id=app['client_id'],
                        client_secret=app['secret'], authority_host=emu.url,
                        graph_endpoint=emu.url, exo_endpoint=emu.url, ca_path=emu.ca_path)}}]}
    with open(path, 'w') as f:
        json.dump([play], f)
    return path


def run(domains, work, label):
    template = zone_template('contoso.test.zone')
    zones = dict((d, template.replace('contoso.test', d)) for d in domains)
    bind = BindServer(zones, workdir=os.path.join(work, label, 'bind'))
    bind.start()
    emu = M365Emulator(workdir=os.path.join(work, label, 'm365'),
                       dns_server=('127.0.0.1', bind.port))
    emu.start()
    try:
        for d in domains:
            emu.add_domain(d, verified=True, services=['Email'])
        app = emu.add_app(roles=ROLES)
        book = playbook(os.path.join(work, label, 'site.json'), emu, app, bind,
                        os.path.join(work, label, 'backups'))
        start = time.monotonic()
        result = run_playbook(playbook=book, workdir=os.path.join(work, label),
                              inventory=','.join(domains) + ',', forks=len(domains),
                              timeout=1800)
        seconds = time.monotonic() - start
        if result.rc != 0:
            raise SystemExit('%s failed:\n%s' % (label, (result.stdout + result.stderr)[-3000:]))
        cmdlets = [r.get('cmdlet') for r in emu.requests if r.get('cmdlet')]
        updates = sum(bind.update_messages(d) for d in domains)
        return seconds, len(cmdlets) / float(len(domains)), updates / float(len(domains))
    finally:
        emu.stop()
        bind.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--domains', type=int, default=20)
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix='exo-bench-auth-')
    try:
        one, one_cmdlets, one_updates = run(['contoso.test'], work, 'one')
        names = ['d%02d.test' % i for i in range(args.domains)]
        many, many_cmdlets, many_updates = run(names, work, 'many')
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('mail authentication chain (DKIM create/publish/wait/enable, DMARC p=none)')
    print('  1 domain:   %6.1f s   (%.0f cmdlets, %.0f UPDATE per domain)'
          % (one, one_cmdlets, one_updates))
    print('  %d domains: %6.1f s   (%.1f s per domain; %.0f cmdlets, %.0f UPDATE per domain)'
          % (args.domains, many, many / args.domains, many_cmdlets, many_updates))
    print('  ratio: %d runs of one domain (%.1f s) / one run of %d domains: %.1fx'
          % (args.domains, one * args.domains, args.domains, one * args.domains / many))


if __name__ == '__main__':
    main()
