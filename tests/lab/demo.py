"""make demo: the three migration patterns applied to lab zones on a real BIND 9.

Starts BIND on 127.0.0.1 (free port, fresh TSIG key) and the Microsoft 365 emulator (HTTPS, its
own CA), runs demo/dns_migration.yml with one inventory host per domain (the tenant side, then the
records Graph asks for), prints the zones before and after, and stops the lab it started.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile

from tests.lab.ansible_runner import environment
from tests.lab.bind import BindServer, zone_template
from tests.lab.m365.emulator import M365Emulator

HERE = os.path.dirname(os.path.abspath(__file__))
DOMAINS = [('contoso.test', 'full'), ('fabrikam.test', 'partial'),
           ('northwind.test', 'legacy_forward')]


def show(bind, domain):
    for name, rdtype in ((domain, 'MX'), (domain, 'TXT'), ('autodiscover.' + domain, 'CNAME')):
        found = bind.rrset(name, rdtype)
        for value in (found[1] if found else ['(none)']):
            print('    %-28s %-5s %s' % (name + '.', rdtype, value))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--output', default=os.path.join(os.getcwd(), 'demo-output'),
                        help='where backups and logs go')
    args = parser.parse_args()
    os.makedirs(args.output, exist_ok=True)
    template = zone_template('contoso.test.zone')
    zones = dict((d, template.replace('contoso.test', d)) for d, dummy in DOMAINS)
    bind = BindServer(zones, workdir=tempfile.mkdtemp(prefix='exo-demo-bind-'))
    bind.start()
    emu = M365Emulator(workdir=tempfile.mkdtemp(prefix='exo-demo-m365-'),
                       dns_server=('127.0.0.1', bind.port))
    emu.start()
    try:
        app = emu.add_app(secret=base64.b64encode(os.urandom(24)).decode(),
                          roles=('Domain.ReadWrite.All',))
        print('Lab Microsoft 365 emulator at %s, tenant %s' % (emu.url, emu.tenant_id))
        print('Lab BIND 9 on 127.0.0.1 port %d, TSIG key %s (%s)\n'
              % (bind.port, bind.key_name, bind.key_file))
        print('Before:')
        for domain, pattern in DOMAINS:
            print('  %s (pattern %s)' % (domain, pattern))
            show(bind, domain)
        inventory = os.path.join(args.output, 'inventory.ini')
        with open(inventory, 'w') as f:
            f.write('[domains]\n')
            for domain, pattern in DOMAINS:
                f.write('%s domain=%s pattern=%s\n' % (domain, domain, pattern))
            f.write('\n[domains:vars]\nlab_dns_server=127.0.0.1\nlab_dns_port=%d\n'
                    'lab_key_file=%s\nlab_output=%s\nlab_m365_url=%s\nlab_ca_path=%s\n'
                    'lab_tenant_id=%s\nlab_client_id=%s\n'
                    % (bind.port, bind.key_file, args.output, emu.url, emu.ca_path,
                       emu.tenant_id, app['client_id']))
        secrets = os.path.join(args.output, 'lab-secrets.json')
        with os.fdopen(os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
            json.dump({'lab_client_secret': app['secret']}, f)
        for name in os.listdir(args.output):
            if name.endswith('.backup.json') or name.startswith('tokens-'):
                os.unlink(os.path.join(args.output, name))
        env = environment(tempfile.mkdtemp(prefix='exo-demo-'))
        env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
        cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
               '-i', inventory, '-e', '@' + secrets,
               os.path.join(HERE, 'demo', 'dns_migration.yml')]
        print('\n$ ' + ' '.join(cmd) + '\n', flush=True)
        rc = subprocess.call(cmd, env=env)
        print('\nAfter:')
        for domain, pattern in DOMAINS:
            print('  %s (pattern %s): %d UPDATE message(s) received' % (
                domain, pattern, bind.update_messages(domain)))
            show(bind, domain)
        tokens = sum(1 for r in emu.requests if r['resource'] == 'token')
        graph = sum(1 for r in emu.requests if r['resource'] == 'graph')
        print('\nThe tenant: %d Graph requests, %d token requests (token cache per host)'
              % (graph, tokens))
        print('Backups (for state: rollback) are in %s' % args.output)
        return rc
    finally:
        emu.stop()
        bind.stop()


if __name__ == '__main__':
    sys.exit(main())
