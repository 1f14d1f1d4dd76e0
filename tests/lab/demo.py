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

prints where the reports are, stops the lab it started (tests/lab/lab.py, which make lab shares)
and ends with the next steps: make lab and the commands to run against it. One inventory host per
domain: contoso.test (full), fabrikam.test (partial), northwind.test (legacy_forward); --pattern
picks one of them.
"""

import argparse
import os
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time

from tests.lab.ansible_runner import collection_root, environment
from tests.lab.lab import DOMAINS, Lab, commands
from tests.lab.m365.client import find_message, lab_message


def show(bind, domain):
    for name, rdtype in ((domain, 'MX'), (domain, 'TXT'), ('autodiscover.' + domain, 'CNAME')):
        found = bind.rrset(name, rdtype)
        for value in (found[1] if found else ['(none)']):
            print('    %-28s %-5s %s' % (name + '.', rdtype, value[:90]))


def ansible_playbook(name, inv, env, *extra):
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
           'exchangeonline.mail.' + name, '-i', inv] + list(extra)
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
    parser.add_argument('--lab-dir', default=os.path.join(os.getcwd(), 'lab'),
                        help='the directory of make lab, for the next steps printed at the end')
    parser.add_argument('--pattern', choices=[p for d, p in DOMAINS] + ['all'], default='all',
                        help='migrate only the lab domain of this pattern')
    args = parser.parse_args()
    domains = [(d, p) for d, p in DOMAINS if args.pattern in ('all', p)]
    output = os.path.abspath(args.output)
    for stale in ('backups', 'report'):
        shutil.rmtree(os.path.join(output, stale), ignore_errors=True)
    os.makedirs(output, exist_ok=True)
    lab = Lab(domains, workdir=tempfile.mkdtemp(prefix='exo-demo-'))
    started = time.monotonic()
    try:
        lab.start()
        bind = lab.bind
        print(lab.describe())
        print('\nBefore:')
        for domain, pattern in domains:
            print('  %s (pattern %s)' % (domain, pattern))
            show(bind, domain)

        inv = lab.write_inventory(output, header='make demo')
        env = environment(os.path.join(lab.workdir, 'ansible'))
        env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
        rc = ansible_playbook('migrate', inv, env, '--diff')

        print('\nAfter:')
        for domain, pattern in domains:
            print('  %s (pattern %s): %d UPDATE message(s) received' % (
                domain, pattern, bind.update_messages(domain)))
            show(bind, domain)
        for domain, pattern in domains:
            if pattern == 'legacy_forward' and rc == 0:
                rc = 0 if prove_forwarding(lab.emu, lab.postfix, domain) else 1

        check_rc = ansible_playbook('check', inv, env)
        report = os.path.join(output, 'report')
        print('\nThe report: %s/exo-check.md (Markdown) and %s/exo-check.xml (JUnit)'
              % (report, report))
        if os.path.exists(os.path.join(report, 'exo-check.md')):
            with open(os.path.join(report, 'exo-check.md')) as f:
                print('\n' + f.read())
        print('Backups (for exchangeonline.mail.rollback): %s' % os.path.join(output, 'backups'))
        print('Inventory: %s' % inv)
        print('Demo took %.1f s' % (time.monotonic() - started))
        print(next_steps(args.lab_dir))
        return rc or check_rc
    finally:
        lab.stop()
        shutil.rmtree(lab.workdir, ignore_errors=True)


def next_steps(lab_dir):
    """What to do after the demo: the same lab in the background, driven by hand."""
    inv = os.path.join(os.path.abspath(lab_dir), 'inventory.yml')
    return '\n'.join(
        ['', 'The demo stopped its lab. Next, to run the playbooks yourself on a lab that keeps '
         'running:', '', '  make lab        # starts the lab in the background and writes %s'
         % inv, '', 'then, as make lab prints them:', '']
        + ['  ' + line for line in commands(inv, os.path.dirname(collection_root()),
                                            os.path.dirname(sys.executable))]
        + ['', '  make lab-stop   # stops everything make lab started'])


if __name__ == '__main__':
    sys.exit(main())
