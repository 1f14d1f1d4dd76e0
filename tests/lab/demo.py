"""make demo: a migration to Exchange Online on the local lab, with the collection's playbooks.

Starts the lab: a real BIND 9 (the domains' zones, TSIG), the Microsoft 365 emulator (HTTPS with
its own CA, Graph, the Exchange admin endpoint, SMTP submission and the inbound MX) and a real
Postfix as the old mail server. Then, as an administrator would:

  ansible-playbook exchangeonline.mail.migrate -i inventory.yml --diff
      add and verify each domain, plan / show / apply / verify its pattern's DNS records, turn on
      POP, IMAP and SMTP AUTH for the test mailbox, test-send through the submission endpoint
      with delivery proof, and for legacy_forward make the old Postfix forward every account
  ansible-playbook exchangeonline.mail.check -i inventory.yml
      the read-only check that writes the JUnit XML and Markdown reports

prints where the reports are, and stops the lab it started. One inventory host per domain:
contoso.test (full), fabrikam.test (partial), northwind.test (legacy_forward); --pattern picks
one of them.
"""

import argparse
import json
import os
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time

import yaml

from tests.lab.ansible_runner import environment
from tests.lab.bind import BindServer, zone_template
from tests.lab.m365.client import find_message, lab_message
from tests.lab.m365.emulator import M365Emulator
from tests.lab.postfix import PostfixServer, lab_workdir

DOMAINS = [('contoso.test', 'full'), ('fabrikam.test', 'partial'),
           ('northwind.test', 'legacy_forward')]
USERS = ('alice', 'bob')
ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'Exchange.ManageAsApp', 'SMTP.SendAsApp',
         'Mail.ReadBasic.All')


def show(bind, domain):
    for name, rdtype in ((domain, 'MX'), (domain, 'TXT'), ('autodiscover.' + domain, 'CNAME')):
        found = bind.rrset(name, rdtype)
        for value in (found[1] if found else ['(none)']):
            print('    %-28s %-5s %s' % (name + '.', rdtype, value[:90]))


def inventory(domains, bind, emu, postfix, output):
    """One host per domain; the old Postfix as the host of exo_legacy_servers."""
    m365 = {'tenant_id': emu.tenant_id, 'client_id': '{{ lab_client_id }}',
            'client_secret': '{{ lab_client_secret }}', 'authority_host': emu.url,
            'graph_endpoint': emu.url, 'exo_endpoint': emu.url, 'ca_path': emu.ca_path,
            'token_cache_path': os.path.join(output, 'tokens-{{ inventory_hostname }}.json')}
    hosts = {}
    for domain, pattern in domains:
        hosts[domain] = {
            'exo_pattern': pattern,
            'exo_mailboxes': ['alice@' + domain],
            'exo_protocols': {'pop': True, 'imap': True, 'smtp_auth': 'enabled'},
            'exo_smtp_test': {'sender': 'alice@' + domain, 'to': ['bob@' + domain],
                              'host': '127.0.0.1', 'port': emu.smtp.port,
                              'delivery_timeout': 30}}
    data = {'all': {'children': {
        'mail_domains': {'hosts': hosts, 'vars': {
            'ansible_connection': 'local', 'exo_dns': bind.module_args(), 'exo_m365': m365,
            'exo_backup_dir': os.path.join(output, 'backups'), 'exo_wait_timeout': 30,
            'exo_report_dir': os.path.join(output, 'report'), 'exo_check_smtp': True}},
        'exo_legacy_servers': {'hosts': {'legacy-mail.lab': {
            'ansible_connection': 'local',
            'legacy_forwarding_postfix_config_dir': postfix.config_dir,
            'legacy_forwarding_m365': m365}}}}}}
    path = os.path.join(output, 'inventory.yml')
    with open(path, 'w') as f:
        f.write('# Written by make demo; the client secret is in lab-secrets.json (mode 0600).\n')
        yaml.safe_dump(data, f, sort_keys=False)
    return path


def ansible_playbook(name, inv, secrets, env, *extra):
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
           'exchangeonline.mail.' + name, '-i', inv, '-e', '@' + secrets] + list(extra)
    print('\n$ ansible-playbook exchangeonline.mail.%s -i %s %s\n'
          % (name, inv, ' '.join(extra)), flush=True)
    start = time.monotonic()
    rc = subprocess.call(cmd, env=env)
    print('(%s: exit %d, %.1f s)' % (name, rc, time.monotonic() - start), flush=True)
    return rc


def prove_forwarding(emu, postfix, domain):
    """Mail to alice@<domain> at the old server, found in her Exchange Online mailbox."""
    msg = lab_message('partner@example.net', 'alice@' + domain, 'sent to the old server',
                      domain='example.net')
    with smtplib.SMTP('127.0.0.1', postfix.port, timeout=10) as smtp:
        smtp.starttls(context=ssl.create_default_context(cafile=emu.ca_path))
        smtp.send_message(msg)
    found = find_message(emu, 'alice@' + domain, msg['Message-ID'], timeout=20)
    if found:
        print('  mail to alice@%s at the old Postfix arrived in her Exchange Online mailbox '
              '(Graph: %s)' % (domain, found[0]['receivedDateTime']))
        return True
    print('  mail to alice@%s at the old Postfix did NOT arrive in Exchange Online; the old '
          'server\'s log:\n%s' % (domain, postfix.log_text()[-3000:]))
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output', default=os.path.join(os.getcwd(), 'demo-output'),
                        help='where the inventory, backups and reports go')
    parser.add_argument('--pattern', choices=[p for d, p in DOMAINS] + ['all'], default='all',
                        help='migrate only the lab domain of this pattern')
    args = parser.parse_args()
    domains = [(d, p) for d, p in DOMAINS if args.pattern in ('all', p)]
    output = os.path.abspath(args.output)
    for stale in ('backups', 'report'):
        shutil.rmtree(os.path.join(output, stale), ignore_errors=True)
    os.makedirs(output, exist_ok=True)
    template = zone_template('contoso.test.zone')
    bind = BindServer(dict((d, template.replace('contoso.test', d)) for d, dummy in domains),
                      workdir=tempfile.mkdtemp(prefix='exo-demo-bind-'))
    emu = M365Emulator(workdir=tempfile.mkdtemp(prefix='exo-demo-m365-'))
    postfix = None
    started = time.monotonic()
    try:
        bind.start()
        emu.dns_server = ('127.0.0.1', bind.port)
        emu.start()
        emu.start_smtp()
        for domain, dummy in domains:
            for user in USERS:
                emu.add_user('%s@%s' % (user, domain))
        app = emu.add_app(roles=ROLES)
        workdir = lab_workdir('exo-demo-postfix-')
        postfix = PostfixServer(
            workdir=workdir, mydomains=[d for d, dummy in domains],
            mailboxes=['%s@%s' % (u, d) for d, dummy in domains for u in USERS],
            relay=('127.0.0.1', emu.smtp.inbound_port),
            tls_cert=emu.ca.issue_cert('127.0.0.1', 'localhost', 'mail.lab.test'))
        postfix.start()
        print('The lab:')
        print('  BIND 9            127.0.0.1 port %d, TSIG key %s' % (bind.port, bind.key_name))
        print('  Microsoft 365     %s (tenant %s), SMTP submission 127.0.0.1:%d'
              % (emu.url, emu.tenant_domain, emu.smtp.port))
        print('  old mail server   Postfix on 127.0.0.1:%d (config %s)'
              % (postfix.port, postfix.config_dir))
        print('\nBefore:')
        for domain, pattern in domains:
            print('  %s (pattern %s)' % (domain, pattern))
            show(bind, domain)

        inv = inventory(domains, bind, emu, postfix, output)
        secrets = os.path.join(output, 'lab-secrets.json')
        with os.fdopen(os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
            json.dump({'lab_client_id': app['client_id'], 'lab_client_secret': app['secret']}, f)
        env = environment(tempfile.mkdtemp(prefix='exo-demo-'))
        env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
        rc = ansible_playbook('migrate', inv, secrets, env, '--diff')

        print('\nAfter:')
        for domain, pattern in domains:
            print('  %s (pattern %s): %d UPDATE message(s) received' % (
                domain, pattern, bind.update_messages(domain)))
            show(bind, domain)
        for domain, pattern in domains:
            if pattern == 'legacy_forward' and rc == 0:
                rc = 0 if prove_forwarding(emu, postfix, domain) else 1

        check_rc = ansible_playbook('check', inv, secrets, env)
        report = os.path.join(output, 'report')
        print('\nThe report: %s/exo-check.md (Markdown) and %s/exo-check.xml (JUnit)'
              % (report, report))
        if os.path.exists(os.path.join(report, 'exo-check.md')):
            with open(os.path.join(report, 'exo-check.md')) as f:
                print('\n' + f.read())
        print('Backups (for exchangeonline.mail.rollback): %s' % os.path.join(output, 'backups'))
        print('Inventory: %s' % inv)
        print('Demo took %.1f s' % (time.monotonic() - started))
        return rc or check_rc
    finally:
        if postfix is not None:
            postfix.stop()
            shutil.rmtree(postfix.workdir, ignore_errors=True)
        emu.stop()
        bind.stop()


if __name__ == '__main__':
    sys.exit(main())
