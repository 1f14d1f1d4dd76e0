"""What ansible-doc shows a user: the modules' author line, and an example that does what its
name says when it is run against the lab's BIND."""

import os
import subprocess
import sys

import yaml

from tests.integration.conftest import ZONE, dns_args
from tests.lab.ansible_runner import environment

MODULES = ('accepted_domain', 'check_variables', 'connector', 'dkim', 'domain', 'domain_info',
           'mail_dns', 'mail_dns_check', 'mailbox_info', 'mailbox_protocols', 'smtp_test')


def ansible_doc(workdir, *args):
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-doc')]
                          + list(args), capture_output=True, text=True, timeout=300,
                          check=False, env=environment(str(workdir)), cwd=str(workdir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_ansible_doc_names_the_maintainers_of_every_module(tmp_path):
    out = ansible_doc(tmp_path, *('exchangeonline.mail.' + m for m in MODULES))
    assert out.count('AUTHOR: exchangeonline.mail maintainers (@exchangeonline)') == len(MODULES)
    assert 'UNKNOWN' not in out


def test_domain_example_publishes_only_the_verification_txt(bind, play, tmp_path):
    """The domain module's example publishes the TXT with pattern none: run as it is shown
    (the lab's server and key in place of ns1.contoso.com's), it adds that TXT and nothing else."""
    shown = ansible_doc(tmp_path, 'exchangeonline.mail.domain')
    examples = yaml.safe_load(shown.split('EXAMPLES:', 1)[1].split('RETURN VALUES:', 1)[0])
    publish, = [t for t in examples if 'exchangeonline.mail.mail_dns' in t]
    args = dict(publish['exchangeonline.mail.mail_dns'])
    assert args['pattern'] == 'none' and 'spf' not in args
    assert args['verification_txt'] == '{{ added.verification_txt }}'
    for option in ('server', 'key_file'):
        args.pop(option)
    args.update(dns_args(bind), domain=ZONE)
    before = bind.axfr(ZONE)
    run = play([{'name': 'the first task of the example registers added',
                 'ansible.builtin.set_fact': {'added': {'verification_txt': 'MS=ms12345678'}}},
                {'name': publish['name'], 'exchangeonline.mail.mail_dns': args}], diff=True)
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert sorted(set(bind.axfr(ZONE)) - set(before)) == [
        ('contoso.test.', 3600, 'TXT', '"MS=ms12345678"')]
    assert set(before) <= set(bind.axfr(ZONE))
    added = [line for line in run.stdout.splitlines() if line.startswith('+') and ' IN ' in line]
    assert added == ['+contoso.test. 3600 IN TXT "MS=ms12345678"']
