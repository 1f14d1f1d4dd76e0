"""Review of issue 11: what migrate prints for the user to act on (the rollback command printed
before any wait, and why check mode leaves out a test-send).

Real BIND 9, the lab's Microsoft 365 emulator with its SMTP submission server, real
ansible-playbook. The printed command is copied and run as a user would, from another
directory, through a shell's word splitting (shlex).
"""

import os
import shlex
import subprocess
import sys

import yaml

from tests.integration.conftest import ZONE
from tests.integration.test_playbooks import output
from tests.integration.test_preflight import lab  # noqa: F401  pylint: disable=unused-import
from tests.lab.ansible_runner import environment, run_playbook

UNDO = 'To undo the change'
SEND_REPORT = 'exchangeonline.mail.smtp_test : Report the test-send'
LEFT_OUT = 'Say why check mode sends no test message'


def printed_rollback(run):
    """The rollback command of the message that says where the backup is."""
    messages = [r['result'].get('msg') for r in run.results
                if UNDO in str(r['result'].get('msg', ''))]
    assert messages, output(run)
    return messages[-1].split(', run ', 1)[1]


def test_the_printed_rollback_command_works_with_a_space_in_the_backup_directory(bind, tmp_path):
    """exo_backup_dir "/srv/exo backups" (or any path with a space, as on a mounted share).
    Today the command ends in -e exo_backup_dir='.../my backups': the shell keeps the quoted
    word whole, but ansible-playbook parses -e key=value text by splitting it at spaces, so
    rollback looks in ".../my" and fails ("there is no backup directory .../my/contoso.test")
    while the records stay changed. Quoting for both (-e '{"exo_backup_dir": "..."}') works."""
    zone_before = bind.axfr(ZONE)
    site = tmp_path / 'my site'
    site.mkdir()
    backups = tmp_path / 'my backups'
    inventory = site / 'inventory.yml'
    inventory.write_text(yaml.safe_dump({'all': {'hosts': {ZONE: {
        'ansible_connection': 'local', 'exo_pattern': 'full', 'exo_use_tenant': False,
        'exo_dns': bind.module_args(), 'exo_nameservers': ['127.0.0.1:%d' % bind.port],
        'exo_backup_dir': str(backups), 'exo_wait_timeout': 30, 'exo_wait_interval': 1}}}}))
    run = run_playbook(playbook='exchangeonline.mail.migrate', inventory=str(inventory),
                       workdir=str(site))
    assert run.rc == 0, output(run)
    assert bind.axfr(ZONE) != zone_before

    command = printed_rollback(run)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    argv = shlex.split(command)
    assert argv[:2] == ['ansible-playbook', 'exchangeonline.mail.rollback'], command
    argv[0] = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    undone = subprocess.run(argv, cwd=str(elsewhere), env=environment(str(elsewhere)),
                            capture_output=True, text=True, timeout=300, check=False)
    assert undone.returncode == 0, command + '\n' + (undone.stdout + undone.stderr)[-3000:]
    assert bind.axfr(ZONE) == zone_before


def sending_lab(lab, alice_smtp_auth_disabled, mailboxes, protocols):
    """contoso.test in the tenant with Email, alice (the sender, her SMTP AUTH as given) and bob;
    the inventory of a full migration that sets ``protocols`` for ``mailboxes`` and test-sends
    from alice to herself through the lab's submission server."""
    m365 = lab.m365
    smtp = m365.start_smtp()
    m365.add_domain(ZONE, verified=True, services=('Email',))
    m365.add_user('alice@contoso.test')
    m365.add_user('bob@contoso.test')
    m365.cas_mailbox('alice@contoso.test')['SmtpClientAuthenticationDisabled'] = \
        alice_smtp_auth_disabled
    return lab.inventory({ZONE: {
        'exo_pattern': 'full', 'exo_mailboxes': mailboxes, 'exo_protocols': protocols,
        'exo_smtp_test': {'sender': 'alice@contoso.test', 'to': ['alice@contoso.test'],
                          'host': '127.0.0.1', 'port': smtp.port, 'delivery_timeout': 20}}})


def test_check_mode_keeps_the_test_send_when_only_another_mailboxs_pop_changes(lab):
    """The domain is in the tenant with Email, the sender alice has SMTP AUTH on, and the run
    turns POP3 off for bob only. The test-send of alice needs nothing of this run, so check
    mode should go as far as RCPT TO. Today it is left out with "it needs what this run changes
    first (... the protocols of bob@contoso.test set)", which is not so: any change of any
    mailbox in exo_mailboxes (and all of their names, however many) is taken for a need of the
    sender's."""
    m365 = lab.m365
    inventory = sending_lab(lab, alice_smtp_auth_disabled=False, mailboxes=['bob@contoso.test'],
                            protocols={'pop': False})
    m365.cas_mailbox('bob@contoso.test')['PopEnabled'] = True
    run = lab.run('migrate', inventory, check=True)
    assert run.rc == 0, output(run)
    left_out = [r['result'].get('msg') for r in run.results
                if r['task'] == LEFT_OUT and r['status'] != 'skipped']
    assert left_out == [], left_out
    report = run.task(SEND_REPORT)['result']['msg']
    assert report == ('alice@contoso.test -> alice@contoso.test: the server accepted the '
                      'sender and the recipients; check mode sends no message, so Send As is '
                      'not proven'), report
    assert m365.cas_mailbox('bob@contoso.test')['PopEnabled'] is True


def test_check_mode_leaves_out_a_test_send_that_needs_the_senders_smtp_auth_first(lab):
    """The run turns SMTP AUTH on for the sender, whose SMTP AUTH is off: in check mode the
    test-send's AUTH would fail (535 5.7.139) only because the change is not made, so it is left
    out, naming that need and nothing else; the real run sets it and delivers the message."""
    m365 = lab.m365
    inventory = sending_lab(lab, alice_smtp_auth_disabled=True,
                            mailboxes=['Alice@contoso.test', 'bob@contoso.test'],
                            protocols={'smtp_auth': 'enabled', 'pop': False})
    run = lab.run('migrate', inventory, check=True)
    assert run.rc == 0, output(run)
    left_out = [r['result'].get('msg') for r in run.results
                if r['task'] == LEFT_OUT and r['status'] != 'skipped']
    assert left_out == [
        'Check mode: the test-send of contoso.test is left out, because it needs what this run '
        'changes first (SMTP AUTH of alice@contoso.test set). The preflight reached the '
        'submission server with TLS; the real run sends the message after those changes.']
    assert not [r for r in run.results if r['task'] == SEND_REPORT and r['status'] != 'skipped']
    assert m365.cas_mailbox('alice@contoso.test')['SmtpClientAuthenticationDisabled'] is True

    run = lab.run('migrate', inventory)
    assert run.rc == 0, output(run)
    assert m365.cas_mailbox('alice@contoso.test')['SmtpClientAuthenticationDisabled'] is False
    report = run.task(SEND_REPORT)['result']['msg']
    assert report.startswith('alice@contoso.test -> alice@contoso.test: delivered in '), report
