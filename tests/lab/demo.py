"""make demo: the three migration patterns applied to lab zones on a real BIND 9.

Starts BIND on 127.0.0.1 (free port, fresh TSIG key), runs demo/dns_migration.yml with one
inventory host per domain, prints the zones before and after, rolls one domain back, and stops
the lab it started.
"""

import argparse
import os
import subprocess
import sys
import tempfile

from tests.lab.ansible_runner import environment
from tests.lab.bind import BindServer, zone_template

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
    try:
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
                    'lab_key_file=%s\nlab_output=%s\n'
                    % (bind.port, bind.key_file, args.output))
        for name in os.listdir(args.output):
            if name.endswith('.backup.json'):
                os.unlink(os.path.join(args.output, name))
        env = environment(tempfile.mkdtemp(prefix='exo-demo-'))
        env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
        cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
               '-i', inventory, os.path.join(HERE, 'demo', 'dns_migration.yml')]
        print('\n$ ' + ' '.join(cmd) + '\n', flush=True)
        rc = subprocess.call(cmd, env=env)
        print('\nAfter:')
        for domain, pattern in DOMAINS:
            print('  %s (pattern %s): %d UPDATE message(s) received' % (
                domain, pattern, bind.update_messages(domain)))
            show(bind, domain)
        print('\nBackups (for state: rollback) are in %s' % args.output)
        return rc
    finally:
        bind.stop()


if __name__ == '__main__':
    sys.exit(main())
