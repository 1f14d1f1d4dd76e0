"""The legacy_forward pattern end to end: the legacy_forwarding role on a real Postfix, mail sent
to the old server arriving in each account's Exchange Online mailbox (read through Graph)."""

import os
import smtplib
import subprocess
import ssl

from tests.integration.conftest import LEGACY_DOMAIN, m365_args
from tests.lab.m365.client import find_message, lab_message

SECRET = 'legacy-forwarding-app-secret-77c1'
ROLES = ('User.Read.All', 'Exchange.ManageAsApp')
# In Exchange Online: alice and bob (in the Postfix too), dave with a second address; carol stays
# on the old server only (no Exchange mailbox), erin is licensed but her mailbox is not there yet.
MOVED = {'alice@legacy.test': 'alice', 'bob@legacy.test': 'bob',
         'dave@legacy.test': 'dave', 'd.smith@legacy.test': 'dave'}


def tenant(m365):
    m365.add_domain(LEGACY_DOMAIN, verified=True, services=['Email'])
    for name in ('alice', 'bob'):
        m365.add_user('%s@%s' % (name, LEGACY_DOMAIN))
    routing = m365.tenant_domain.replace('.onmicrosoft.com', '.mail.onmicrosoft.com')
    m365.add_user('dave@' + LEGACY_DOMAIN, proxy_addresses=[
        'SMTP:dave@' + LEGACY_DOMAIN, 'smtp:d.smith@' + LEGACY_DOMAIN,
        'smtp:dave@' + routing])
    m365.add_user('erin@' + LEGACY_DOMAIN, mailbox=False)
    m365.add_user('frank@' + m365.tenant_domain)  # not in the forwarded domain
    return m365.add_app(secret=SECRET, roles=ROLES), routing


def forwarding(postfix, m365, app, **extra):
    variables = dict(legacy_forwarding_domains=[LEGACY_DOMAIN],
                     legacy_forwarding_postfix_config_dir=postfix.config_dir,
                     legacy_forwarding_m365=m365_args(m365, app))
    variables.update(extra)
    return {'name': 'forward', 'ansible.builtin.include_role': {
        'name': 'exchangeonline.mail.legacy_forwarding'}, 'vars': variables}


def send_to_old_server(postfix, m365, rcpt):
    msg = lab_message('partner@example.net', rcpt, 'to %s via the old server' % rcpt,
                      domain='example.net')
    with smtplib.SMTP('127.0.0.1', postfix.port, timeout=10) as smtp:
        smtp.starttls(context=ssl.create_default_context(cafile=m365.ca_path))
        smtp.send_message(msg)
    return msg['Message-ID']


def entries(postfix):
    with open(postfix.forwarding_map) as f:
        return [line for line in f.read().splitlines() if line and not line.startswith('#')]


def changed_tasks(run):
    return [r['task'] for r in run.results if r['result'].get('changed')]


def test_every_exo_account_forwarded_and_second_run_changes_nothing(m365, postfix, play):
    app, routing = tenant(m365)
    postfix.add_mailbox('carol@' + LEGACY_DOMAIN)

    check = play([forwarding(postfix, m365, app)], check=True, diff=True)
    assert check.rc == 0, check.stdout
    assert 'alice@legacy.test\talice@%s' % routing in check.stdout  # the diff
    assert entries(postfix) == []

    run = play([forwarding(postfix, m365, app)])
    assert run.rc == 0, run.stdout + run.stderr
    assert entries(postfix) == ['%s\t%s@%s' % (address, user, routing)
                                for address, user in sorted(MOVED.items())]
    assert 'exchangeonline.mail.legacy_forwarding : Reload Postfix' in changed_tasks(run)
    assert 'erin' not in open(postfix.forwarding_map).read()

    for address, user in MOVED.items():
        message_id = send_to_old_server(postfix, m365, address)
        found = find_message(m365, '%s@%s' % (user, LEGACY_DOMAIN), message_id)
        assert found, 'mail to %s did not arrive; maillog:\n%s' % (
            address, postfix.log_text()[-3000:])
        assert found[0]['subject'] == 'to %s via the old server' % address
    # Forwarded, not delivered locally: no maildir delivery for a moved account in the log.
    assert postfix.mailbox('alice@' + LEGACY_DOMAIN) == []
    assert 'to=<alice@legacy.test>, relay=virtual' not in postfix.log_text()
    # carol is not in Exchange Online: her mail stays on the old server.
    send_to_old_server(postfix, m365, 'carol@' + LEGACY_DOMAIN)
    assert len(postfix.wait_for_mail('carol@' + LEGACY_DOMAIN)) == 1
    assert 'to=<carol@legacy.test>, relay=virtual' in postfix.log_text()  # the form looked for

    before = os.stat(postfix.forwarding_map).st_mtime_ns
    again = play([forwarding(postfix, m365, app)])
    assert again.rc == 0
    assert changed_tasks(again) == []
    assert os.stat(postfix.forwarding_map).st_mtime_ns == before


def test_keep_local_copy_and_listed_mailboxes(m365, postfix, play):
    app, routing = tenant(m365)
    run = play([forwarding(postfix, m365, app, legacy_forwarding_keep_local_copy=True,
                           legacy_forwarding_mailboxes=['alice@legacy.test',
                                                        'erin@legacy.test'])])
    assert run.rc == 0, run.stdout
    assert entries(postfix) == ['alice@legacy.test\talice@legacy.test, alice@%s' % routing]
    assert 'without a mailbox (not forwarded): erin@legacy.test' in run.stdout
    message_id = send_to_old_server(postfix, m365, 'alice@legacy.test')
    assert find_message(m365, 'alice@legacy.test', message_id)
    assert len(postfix.wait_for_mail('alice@legacy.test')) == 1


def test_wrong_domain_stops_before_writing(m365, postfix, play):
    app, routing = tenant(m365)
    run = play([forwarding(postfix, m365, app, legacy_forwarding_domains=['legacy.tset'])])
    assert run.rc != 0
    assert 'No Exchange Online mailbox has an address in legacy.tset' in run.stdout
    assert entries(postfix) == []


def test_argument_spec_needs_domains(m365, postfix, play):
    run = play([{'name': 'forward', 'ansible.builtin.include_role': {
        'name': 'exchangeonline.mail.legacy_forwarding'}}])
    assert run.rc != 0
    assert 'missing required arguments: legacy_forwarding_domains' in run.stdout + run.stderr


def test_smtp_test_against_real_postfix_reports_its_queue_id(m365, postfix, play):
    """Interoperability: smtp_test with STARTTLS (the Postfix certificate from the lab CA) and
    auth: none to a real MTA; the queue ID it reports is the one in Postfix's log."""
    run = play([{'name': 'send', 'exchangeonline.mail.smtp_test': {
        'host': '127.0.0.1', 'port': postfix.port, 'auth': 'none', 'ca_path': m365.ca_path,
        'sender': 'partner@example.net', 'to': ['alice@' + LEGACY_DOMAIN],
        'ehlo_name': 'client.example.net', 'timeout': 10}}])
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    assert r['phase'] == 'quit' and r['tls']['verified'] is True
    assert 'mail.legacy.test' in r['tls']['peer_certificate']['names']
    assert 'STARTTLS' in r['capabilities']['before_tls']
    assert 'STARTTLS' not in r['capabilities']['after_tls']
    assert r['queue_id'] and r['queue_id'] in postfix.queue_ids_seen()
    delivered = postfix.wait_for_mail('alice@' + LEGACY_DOMAIN)
    assert [m['Message-ID'] for m in delivered] == [r['message_id']]


def test_a_run_for_one_domain_keeps_the_other_domains_lines(m365, postfix, play):
    """Two forwarded domains on one old server, migrated in separate runs: the second run must
    not drop the first domain's forwarding; a repeated run changes nothing."""
    app, routing = tenant(m365)
    m365.add_domain('other.test', verified=True, services=['Email'])
    m365.add_user('olga@other.test')
    olga = [u for u in m365.users if u['userPrincipalName'] == 'olga@other.test'][0]
    olga_routing = [p.split(':', 1)[1] for p in olga['proxyAddresses'] if 'mail.onmicrosoft' in p][0]
    first = play([forwarding(postfix, m365, app)])
    assert first.rc == 0, first.stdout
    second = play([forwarding(postfix, m365, app, legacy_forwarding_domains=['other.test'])])
    assert second.rc == 0, second.stdout
    lines = entries(postfix)
    assert 'olga@other.test\t%s' % olga_routing in lines
    assert 'alice@legacy.test\talice@%s' % routing in lines and len(lines) == len(MOVED) + 1
    again = play([forwarding(postfix, m365, app)])
    assert changed_tasks(again) == []


def test_an_earlier_alias_table_does_not_win_over_the_forwarding(m365, postfix, play):
    """Postfix uses the first virtual_alias_maps table that knows an address: the role puts its
    map first, so a site table that maps alice to herself no longer keeps her mail local."""
    app, routing = tenant(m365)
    site = os.path.join(postfix.config_dir, 'site_virtual')
    with open(site, 'w') as f:
        f.write('alice@legacy.test alice@legacy.test\n')
    postfix.postmap(site)
    subprocess.run(['postconf', '-c', postfix.config_dir, '-e',
                    'virtual_alias_maps = hash:%s, hash:%s' % (site, postfix.forwarding_map)],
                   check=True)
    postfix.reload()
    run = play([forwarding(postfix, m365, app)])
    assert run.rc == 0, run.stdout
    maps = postfix.postconf('virtual_alias_maps')['virtual_alias_maps']
    assert maps == 'hash:%s, hash:%s' % (postfix.forwarding_map, site)
    message_id = send_to_old_server(postfix, m365, 'alice@legacy.test')
    assert find_message(m365, 'alice@legacy.test', message_id)
    assert changed_tasks(play([forwarding(postfix, m365, app)])) == []


def test_a_map_newer_than_its_database_is_rebuilt(m365, postfix, play):
    """A run that wrote the map but stopped before the handlers: the next run rebuilds the
    database although the map itself does not change."""
    app, routing = tenant(m365)
    assert play([forwarding(postfix, m365, app)]).rc == 0
    db = postfix.forwarding_map + '.db'
    os.utime(db, (os.stat(db).st_atime, os.stat(postfix.forwarding_map).st_mtime - 60))
    run = play([forwarding(postfix, m365, app)])
    assert run.rc == 0
    assert 'exchangeonline.mail.legacy_forwarding : Build the map database when it is missing ' \
        'or older than the map' in changed_tasks(run)
    assert os.stat(db).st_mtime >= os.stat(postfix.forwarding_map).st_mtime
