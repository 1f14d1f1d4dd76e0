"""What the playbooks take from the inventory, run by FQCN against the lab (real BIND 9, the
Microsoft 365 emulator over HTTPS with its SMTP server, real ansible-playbook):

* a user's dict is never read by attribute: every partial exo_protocols, exo_smtp_test and
  exo_dkim works, and check reports it correctly (a missing key is not the dict's ``pop``);
* every mail_dns / mail_dns_check option a migration needs has its exo_* variable, and it
  reaches the module (what BIND serves afterwards);
* a typo is never ignored: an unknown exo_* name, a dict key, or a role variable close to a known
  one stops each playbook before anything is asked or changed, naming the closest known name.
"""

import json
import os
import re
import time
import xml.etree.ElementTree as ET

import pytest

from tests.integration.conftest import m365_args
from tests.integration.test_playbooks import Lab, output
from tests.lab.ansible_runner import run_playbook
from tests.lab.m365.client import app_token
from tests.lab.m365.smtp import MAX_SENDER_SESSIONS as SENDER_SESSIONS

DOMAINS = ('contoso.test', 'fabrikam.test', 'northwind.test', 'tailspin.test', 'adatum.test')
SECRET = 'inputs-lab-secret-5521'
ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'Exchange.ManageAsApp', 'SMTP.SendAsApp',
         'Mail.ReadBasic.All')
CHECK_VARIABLES = 'Check this host\'s variables (names, dict keys, values)'


def start_lab(tmp_path, domains):
    return Lab.start(tmp_path, domains, roles=ROLES, secret=SECRET)


@pytest.fixture
def lab(tmp_path):
    lab = start_lab(tmp_path, DOMAINS)
    try:
        yield lab
    finally:
        lab.stop()


def variable_messages(run):
    """{host: message} of the failed variable checks (whose results carry no defaults, which
    would print before the message)."""
    failed = [r for r in run.results if r['task'] == CHECK_VARIABLES and r['status'] == 'failed']
    assert not [r for r in failed if 'defaults' in r['result'] or 'ansible_facts' in r['result']]
    return dict((r['host'], r['result']['msg']) for r in failed)


def junit_failures(lab, report_dir='exo-report'):
    root = ET.parse(os.path.join(lab.workdir, report_dir, 'exo-check.xml')).getroot()
    cases = dict(((c.get('classname'), c.get('name')), c) for c in root.iter('testcase'))
    return root, cases


def before(lab):
    """The zones now, and how many reads named logged so far (those of this very call too:
    named logs "AXFR ended" after the client has the zone, so wait for those lines, at most
    5 s)."""
    def ended():
        return sum(1 for line in lab.bind.reads_seen() if ': AXFR ended' in line)
    start = ended()
    zones = dict((d, lab.bind.axfr(d)) for d in DOMAINS)
    deadline = time.monotonic() + 5.0
    while ended() < start + len(DOMAINS) and time.monotonic() < deadline:
        time.sleep(0.05)
    return zones, len(lab.bind.reads_seen())


def assert_untouched(lab, run, state):
    """Stopped before anything was asked: no request to the tenant, no query or UPDATE to BIND
    since ``state = before(lab)``."""
    zones, reads = state
    assert run.rc != 0
    assert lab.m365.requests == []
    assert len(lab.bind.reads_seen()) == reads and lab.bind.updates_seen() == []
    for domain, axfr in zones.items():
        assert lab.bind.axfr(domain) == axfr


# -- item 1: partial dicts ------------------------------------------------------------------------
PROTOCOLS = {'contoso.test': {}, 'fabrikam.test': {'pop': False},
             'northwind.test': {'imap': False}, 'tailspin.test': {'smtp_auth': 'enabled'},
             'adatum.test': {'tenant_smtp_auth': 'enabled'}}


def test_every_partial_exo_protocols_migrates_and_checks_green(lab):
    """Each key of exo_protocols alone, and the empty dict: migrate sets exactly that switch,
    check passes with a JUnit report without failures. {smtp_auth: enabled} is the README's own
    inventory, which used to fail after the DNS cut-over (exo_protocols['pop'] was dict.pop)."""
    m365 = lab.m365
    hosts = {}
    for domain, protocols in PROTOCOLS.items():
        upn = 'scanner@' + domain
        m365.add_user(upn)
        hosts[domain] = {'exo_pattern': 'full', 'exo_use_tenant': False,
                         'exo_mailboxes': [upn], 'exo_protocols': protocols}
    inventory = lab.inventory(hosts)
    run = lab.run('migrate', inventory, forks=5)
    assert run.rc == 0, output(run)

    def cas(domain):
        c = m365.cas_mailbox('scanner@' + domain)
        return c['PopEnabled'], c['ImapEnabled'], c['SmtpClientAuthenticationDisabled']
    # New mailboxes: POP and IMAP on, SMTP AUTH following the tenant (null); only the asked
    # switch moved.
    assert cas('contoso.test') == (True, True, None)
    assert cas('fabrikam.test') == (False, True, None)
    assert cas('northwind.test') == (True, False, None)
    assert cas('tailspin.test') == (True, True, False)
    assert cas('adatum.test') == (True, True, None)
    assert m365.transport_config['SmtpClientAuthenticationDisabled'] is False
    for domain in PROTOCOLS:
        assert lab.bind.rrset(domain, 'MX')[1] == [
            '0 %s.mail.protection.outlook.com.' % domain.replace('.', '-')]

    run = lab.run('check', inventory, forks=5)
    assert run.rc == 0, output(run)
    root, cases = junit_failures(lab)
    assert root.get('failures') == '0' and root.get('errors') == '0'
    for domain in PROTOCOLS:
        case = cases[(domain + '.mailbox', 'scanner@' + domain)]
        assert case.find('failure') is None, domain
    assert 'POP3 on' in cases[('tailspin.test.mailbox', 'scanner@tailspin.test')].find(
        'system-out').text
    assert 'Every check passed for 5 domain(s)' in run.stdout


# The sender (and, in the lab, host and port) with each other key of exo_smtp_test alone.
SMTP_VARIANTS = ('base', 'to', 'tls', 'min-tls', 'auth', 'username', 'subject', 'no-delivery',
                 'delivery-mailbox', 'delivery-timeout', 'access-token', 'password')


def smtp_variants(lab):
    """(the lab's submission server, {variant: exo_smtp_test}); alice and bob may use SMTP
    AUTH, alice also with a password."""
    m365 = lab.m365
    smtp = m365.start_smtp()
    for upn in ('alice@contoso.test', 'bob@contoso.test'):
        m365.add_user(upn)
        m365.cas_mailbox(upn)['SmtpClientAuthenticationDisabled'] = False
    smtp.set_password('alice@contoso.test', 'alice-lab-password-9')
    token = app_token(m365, ('SMTP.SendAsApp',), ['https://outlook.office365.com/.default'])
    base = {'sender': 'alice@contoso.test', 'host': '127.0.0.1', 'port': smtp.port}
    variants = {
        'base': {}, 'to': {'to': ['bob@contoso.test']}, 'tls': {'tls': 'starttls'},
        'min-tls': {'min_tls_version': 'TLSv1_2'}, 'auth': {'auth': 'xoauth2'},
        'username': {'username': 'alice@contoso.test'}, 'subject': {'subject': 'partial dict'},
        'no-delivery': {'confirm_delivery': False},
        'delivery-mailbox': {'delivery_mailbox': 'alice@contoso.test'},
        'delivery-timeout': {'delivery_timeout': 20},
        'access-token': {'access_token': token},
        'password': {'auth': 'login', 'password': 'alice-lab-password-9'},
    }
    assert tuple(variants) == SMTP_VARIANTS
    return smtp, dict((name, dict(base, **extra)) for name, extra in variants.items())


def test_every_partial_exo_smtp_test_sends(lab):
    """smtp_test.yml with exo_smtp_test holding the sender (and, in the lab, host and port) and
    each other key alone: every host sends, and each key reaches the role."""
    smtp, variants = smtp_variants(lab)
    inventory = lab.inventory(dict(('send-' + name, {'exo_smtp_test': exo_smtp_test})
                                   for name, exo_smtp_test in variants.items()))
    # Every host sends as alice, and Exchange Online (like the lab) lets three sessions send as
    # one mailbox at a time (432 4.3.2 beyond): three forks keep the test about the variants.
    run = lab.run('smtp_test', inventory, forks=SENDER_SESSIONS)
    assert run.rc == 0, output(run)
    reports = dict((r['host'], r['result']['msg']) for r in run.results
                   if r['task'] == 'exchangeonline.mail.smtp_test : Report the test-send')
    assert sorted(reports) == sorted('send-' + name for name in variants)
    for host, msg in reports.items():
        if host == 'send-no-delivery':
            assert msg.startswith('alice@contoso.test -> alice@contoso.test: accepted, queue id')
        elif host == 'send-to':
            assert msg.startswith('alice@contoso.test -> bob@contoso.test: delivered in '), msg
        else:
            assert msg.startswith('alice@contoso.test -> alice@contoso.test: delivered in '), msg
    mechanisms = [e['mechanism'] for e in smtp.log if e['verb'] == 'AUTH']
    assert mechanisms.count('LOGIN') == 1 and mechanisms.count('XOAUTH2') == len(variants) - 1
    assert any(b'Subject: partial dict' in m['raw'] for m in smtp.received)
    assert SECRET not in run.stdout + run.stderr
    assert 'alice-lab-password-9' not in run.stdout + run.stderr


# The partial exo_smtp_test whose key migrate's preflight reads itself (the others only reach
# smtp_test.yml, which migrate and check import as it is: the test above).
PREFLIGHT_VARIANTS = ('to', 'tls', 'min-tls', 'auth', 'no-delivery', 'delivery-mailbox',
                      'access-token', 'password')


@pytest.fixture
def send_lab(tmp_path):
    """The lab with one zone for each partial exo_smtp_test that the preflight reads."""
    lab = start_lab(tmp_path, [name + '.test' for name in PREFLIGHT_VARIANTS])
    try:
        yield lab
    finally:
        lab.stop()


def test_migrate_then_check_with_each_partial_exo_smtp_test_the_preflight_reads(send_lab):
    """Each partial exo_smtp_test that the preflight reads, as the test-send of a migration (one
    domain each, DNS only), then check with exo_check_smtp: both green, every test-send a
    passing JUnit case."""
    lab = send_lab
    smtp, variants = smtp_variants(lab)
    variants = dict((name, variants[name]) for name in PREFLIGHT_VARIANTS)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    read = set()
    for path in ('migrate.yml', os.path.join('templates', 'migrate-preflight.json.j2')):
        with open(os.path.join(root, 'playbooks', path), encoding='utf-8') as f:
            read |= set(re.findall(r"migrate_smtp\['([a-z_]+)'\]", f.read()))
    assert len(read) > 5 and read <= set(k for v in variants.values() for k in v)
    inventory = lab.inventory(dict((name + '.test', {
        'exo_pattern': 'full', 'exo_use_tenant': False, 'exo_check_smtp': True,
        'exo_smtp_test': exo_smtp_test}) for name, exo_smtp_test in variants.items()))
    run = lab.run('migrate', inventory, forks=SENDER_SESSIONS)  # all send as alice
    assert run.rc == 0, output(run)
    sent = dict((r['host'], r['result']['msg']) for r in run.results
                if r['task'] == 'exchangeonline.mail.smtp_test : Report the test-send')
    assert sorted(sent) == sorted(name + '.test' for name in PREFLIGHT_VARIANTS)
    assert sent['no-delivery.test'].startswith('alice@contoso.test -> alice@contoso.test: '
                                               'accepted, queue id')
    assert sent['to.test'].startswith('alice@contoso.test -> bob@contoso.test: delivered in ')
    for name in PREFLIGHT_VARIANTS:
        assert lab.bind.rrset(name + '.test', 'MX')[1] == [
            '0 %s-test.mail.protection.outlook.com.' % name], name
    assert 'alice-lab-password-9' not in run.stdout + run.stderr

    run = lab.run('check', inventory, forks=SENDER_SESSIONS)
    assert run.rc == 0, output(run)
    root, cases = junit_failures(lab)
    assert root.get('failures') == '0' and root.get('errors') == '0'
    for name in PREFLIGHT_VARIANTS:
        case = cases[(name + '.test.smtp', 'test-send')]
        assert case.find('failure') is None, name
    assert 'Every check passed for %d domain(s)' % len(PREFLIGHT_VARIANTS) in run.stdout
    mechanisms = [e['mechanism'] for e in smtp.log if e['verb'] == 'AUTH']
    assert mechanisms.count('LOGIN') == 2 and mechanisms.count('XOAUTH2') == 2 * 7
    assert 'alice-lab-password-9' not in run.stdout + run.stderr


def test_empty_connection_dicts_are_reported_before_any_change(lab, tmp_path):
    """exo_dns {} and exo_m365 {} (no AZURE_* either): the preflight names what is missing."""
    inventory = lab.inventory({'contoso.test': {'exo_pattern': 'full'}},
                              exo_dns={}, exo_m365={})
    env = dict((k, '') for k in os.environ if k.startswith('AZURE_'))
    run = lab.run('migrate', inventory, env=env)
    assert run.rc != 0
    msg = [r for r in run.results if r['task'].startswith('Stop the whole run')][0]['result']['msg']
    assert '(1) DNS: provider is rfc2136 but all of the following are missing: server' in msg, msg
    assert ('(2) Microsoft Graph: input: tenant_id and client_id are required (or set '
            'AZURE_TENANT_ID and AZURE_CLIENT_ID)') in msg, msg
    assert lab.bind.updates_seen() == [] and lab.m365.requests == []


# -- item 3: the mail_dns options as exo_* variables ----------------------------------------------
def test_the_mail_dns_options_reach_the_modules(lab):
    """DNS only (exo_use_tenant false): exo_on_conflict replace removes the A record in the way,
    exo_ttl is the TTL BIND serves, exo_mx_host / exo_mx_preference / exo_legacy_mx / exo_spf /
    exo_spf_all / exo_spf_include / exo_autodiscover_target / exo_dkim (each partial) /
    exo_dmarc / exo_resolvers reach mail_dns and mail_dns_check; then check, given the same
    variables, passes."""
    bind = lab.bind
    assert bind.update('contoso.test', lambda u: u.add(
        'autodiscover.contoso.test.', 3600, 'A', '192.0.2.9')) == 'NOERROR'
    dkim1 = 'selector1-contoso-test._domainkey.contosolab.onmicrosoft.com'
    dkim2 = 'selector2-fabrikam-test._domainkey.contosolab.onmicrosoft.com'
    resolver = '127.0.0.1:%d' % bind.port
    hosts = {
        'contoso.test': {'exo_pattern': 'full', 'exo_on_conflict': 'replace', 'exo_ttl': 300,
                         'exo_mx_host': 'contoso-test.k-v1.mx.microsoft',
                         'exo_dkim': {'selector1': dkim1},
                         'exo_dmarc': 'v=DMARC1; p=none; rua=mailto:dmarc@contoso.test'},
        'fabrikam.test': {'exo_pattern': 'partial', 'exo_mx_preference': 40,
                          'exo_legacy_mx': [{'host': 'mail.fabrikam.test', 'preference': 30}],
                          'exo_spf': 'replace', 'exo_dkim': {'selector2': dkim2}},
        'northwind.test': {'exo_pattern': 'legacy_forward', 'exo_spf_all': '-all',
                           'exo_spf_include': 'spf.protection.office365.us',
                           'exo_autodiscover_target': 'autodiscover-s.office365.us',
                           'exo_dkim': {}, 'exo_resolvers': [resolver]},
    }
    inventory = lab.inventory(hosts, exo_use_tenant=False)
    run = lab.run('migrate', inventory, forks=3)
    assert run.rc == 0, output(run)

    # contoso.test: the A record replaced by the CNAME (into the backup), TTL 300 everywhere.
    assert bind.rrset('autodiscover.contoso.test', 'CNAME') == (300, ['autodiscover.outlook.com.'])
    assert bind.rrset('autodiscover.contoso.test', 'A') is None
    assert bind.rrset('contoso.test', 'MX') == (300, ['0 contoso-test.k-v1.mx.microsoft.'])
    assert bind.rrset('contoso.test', 'TXT')[0] == 300
    assert bind.rrset('selector1._domainkey.contoso.test', 'CNAME') == (300, [dkim1 + '.'])
    assert bind.rrset('_dmarc.contoso.test', 'TXT') == (
        300, ['"v=DMARC1; p=none; rua=mailto:dmarc@contoso.test"'])
    backups = os.path.join(lab.workdir, 'exo-backups', 'contoso.test')
    backup, = [n for n in os.listdir(backups) if n.endswith('-migration.json')]
    with open(os.path.join(backups, backup)) as f:
        saved = json.load(f)['entries']
    assert [e['before']['rdata'] for e in saved
            if e['name'] == 'autodiscover.contoso.test.' and e['type'] == 'A'] == [['192.0.2.9']]
    # fabrikam.test: the given legacy MX and preference; SPF Exchange Online only.
    assert bind.rrset('fabrikam.test', 'MX')[1] == [
        '30 mail.fabrikam.test.', '40 fabrikam-test.mail.protection.outlook.com.']
    assert [v for v in bind.rrset('fabrikam.test', 'TXT')[1] if 'v=spf1' in v] == [
        '"v=spf1 include:spf.protection.outlook.com ~all"']
    assert bind.rrset('selector2._domainkey.fabrikam.test', 'CNAME')[1] == [dkim2 + '.']
    assert bind.rrset('selector1._domainkey.fabrikam.test', 'CNAME') is None
    # northwind.test: the government cloud's include and autodiscover, -all; the resolver asked.
    assert [v for v in bind.rrset('northwind.test', 'TXT')[1] if 'v=spf1' in v] == [
        '"v=spf1 ip4:192.0.2.0/24 include:_spf.mailhost.test '
        'include:spf.protection.office365.us -all"']
    assert bind.rrset('autodiscover.northwind.test', 'CNAME')[1] == [
        'autodiscover-s.office365.us.']
    waited = [r for r in run.results if r['host'] == 'northwind.test' and r['task'].endswith(
        'Wait until every authoritative name server serves the records')][-1]['result']
    assert [s['kind'] for s in waited['servers']] == ['authoritative', 'resolver']

    run = lab.run('check', inventory, forks=3)
    assert run.rc == 0, output(run)
    root, cases = junit_failures(lab)
    assert root.get('failures') == '0' and root.get('errors') == '0'
    assert cases[('contoso.test.dns', 'dkim @ ns1.contoso.test')].find('failure') is None
    assert ('northwind.test.dns', 'autodiscover @ %s' % resolver) in cases

    # check compares with what the variables say: another MX host than the one served fails.
    other = lab.inventory(dict(hosts, **{'contoso.test': dict(
        hosts['contoso.test'], exo_mx_host='contoso-test.mail.protection.outlook.com')}),
        exo_use_tenant=False)
    run = lab.run('check', other, forks=3)
    assert run.rc != 0
    root, cases = junit_failures(lab)
    assert root.get('failures') == '1'
    assert cases[('contoso.test.dns', 'mx @ ns1.contoso.test')].find('failure') is not None


# -- item 4: typos --------------------------------------------------------------------------------
def test_typos_stop_migrate_before_anything_is_asked_naming_the_closest_name(lab):
    zones = before(lab)
    lab.m365.add_user('scanner@tailspin.test')
    inventory = lab.inventory({
        'contoso.test': {'exo_patern': 'full'},
        'fabrikam.test': {'exo_pattern': 'partial', 'dns_migration_primry': 'exo'},
        'northwind.test': {'exo_pattern': 'full',
                           'exo_dns': dict(lab.bind.module_args(), sever='127.0.0.1')},
        'tailspin.test': {'exo_pattern': 'full', 'exo_mailboxes': ['scanner@tailspin.test'],
                          'exo_protocols': {'smtp-auth': 'enabled'}},
        # variables of the user's own that only look like the roles' are left alone
        'adatum.test': {'exo_pattern': 'full', 'domain_controller': 'dc1.adatum.test',
                        'smtp_test_window': 'night'},
    })
    run = lab.run('migrate', inventory, forks=5, verbosity=3)
    assert_untouched(lab, run, zones)
    messages = variable_messages(run)
    assert sorted(messages) == ['contoso.test', 'fabrikam.test', 'northwind.test',
                                'tailspin.test']
    assert messages['contoso.test'] == (
        'The variables of contoso.test have 2 problems, so nothing was changed: (1) exo_patern: '
        'unknown variable; did you mean exo_pattern? If it is a variable of your own, add it to '
        'exo_ignore_variables. (2) Set exo_pattern (full, partial or '
        'legacy_forward) for contoso.test.')
    assert messages['fabrikam.test'] == (
        'The variables of fabrikam.test have 1 problem, so nothing was changed: (1) '
        'dns_migration_primry: unknown variable of the role exchangeonline.mail.dns_migration; '
        'did you mean dns_migration_primary? (the playbook migrate sets dns_migration_primary '
        'itself from exo_primary: set exo_primary instead) If it is a variable of your own, add '
        'it to exo_ignore_variables.')
    assert messages['northwind.test'] == (
        'The variables of northwind.test have 1 problem, so nothing was changed: (1) exo_dns has '
        'an unknown key sever; did you mean server?')
    assert messages['tailspin.test'] == (
        'The variables of tailspin.test have 1 problem, so nothing was changed: (1) '
        'exo_protocols has an unknown key smtp-auth; did you mean smtp_auth?')
    assert lab.bind.key_secret not in run.stdout + run.stderr
    assert SECRET not in run.stdout + run.stderr


def test_an_old_servers_typo_stops_migrate_too(lab):
    """The old Postfix servers of legacy_forward are checked in the same way (their role's
    variables), before anything changes for any domain."""
    zones = before(lab)
    path = os.path.join(lab.workdir, 'legacy-inventory.yml')
    with open(path, 'w') as f:
        f.write(json.dumps({'all': {'children': {
            'mail_domains': {'hosts': {'northwind.test': {'exo_pattern': 'legacy_forward'}},
                             'vars': {'exo_dns': lab.bind.module_args(),
                                      'exo_m365': m365_args(lab.m365, lab.app)}},
            'exo_legacy_servers': {'hosts': {'mail-old.northwind.test': {
                'ansible_connection': 'local',
                'legacy_forwarding_postfix_config_dri': '/etc/postfix'}}}}}}))
    run = lab.run('migrate', path)
    assert run.rc != 0
    messages = dict((r['host'], r['result']['msg']) for r in run.results
                    if r['status'] == 'failed')
    assert messages == {'mail-old.northwind.test': (
        'The variables of mail-old.northwind.test have 1 problem, so nothing was changed: (1) '
        'legacy_forwarding_postfix_config_dri: unknown variable of the role '
        'exchangeonline.mail.legacy_forwarding; did you mean '
        'legacy_forwarding_postfix_config_dir? If it is a variable of your own, add it to '
        'exo_ignore_variables.')}
    assert lab.bind.axfr('northwind.test') == zones[0]['northwind.test']
    assert lab.bind.update_messages() == 0
    assert 'northwind.test' not in lab.m365.domains
    assert not [r for r in run.results if r['task'].startswith('exchangeonline.mail.')]


def test_wrong_values_stop_migrate_and_known_role_variables_it_sets_are_warned_about(lab):
    zones = before(lab)
    inventory = lab.inventory({
        'contoso.test': {'exo_pattern': 'full', 'exo_spf': 'replce', 'exo_ttl': -1,
                         'exo_protocols': {'smtp_auth': True, 'pop': 'maybe'}},
        'fabrikam.test': {'exo_pattern': 'partial', 'domain_nam': 'x',
                          'exo_ignore_variables': ['domain_nam'],
                          'dns_migration_primary': 'exo'},
    })
    run = lab.run('migrate', inventory, check=True, forks=2)
    assert_untouched(lab, run, zones)
    messages = variable_messages(run)
    assert sorted(messages) == ['contoso.test']
    assert messages['contoso.test'] == (
        'The variables of contoso.test have 4 problems, so nothing was changed: (1) '
        'exo_protocols.pop must be true or false, got \'maybe\'. (2) Set exo_protocols.smtp_auth '
        '(enabled, disabled, inherit or null) for contoso.test, not True. (3) Set exo_spf (merge, '
        'replace or keep) for contoso.test, not replce. (4) exo_ttl must be from 0 to 2147483647 '
        'seconds, got -1.')
    assert ('dns_migration_primary is set for fabrikam.test, but the playbook migrate sets it '
            'itself from exo_primary: set exo_primary instead, so this value is not used'
            ) in run.stdout + run.stderr


def test_every_playbook_checks_its_variables_first(lab):
    """check, rollback, smtp_test and enable_pop stop at a typo before they ask anything."""
    zones = before(lab)
    inventory = lab.inventory({
        'contoso.test': {'exo_pattern': 'full', 'exo_protocols': {'imap': False, 'popp': True},
                         'exo_backup_dri': 'backups'},
        'fabrikam.test': {'exo_pattern': 'partial', 'exo_smtp_test': {'sendr': 'a@fabrikam.test'}},
    })
    check = lab.run('check', inventory, forks=2)
    assert_untouched(lab, check, zones)
    messages = variable_messages(check)
    assert ('(1) exo_backup_dri: unknown variable; did you mean exo_backup_dir? If it is a '
            'variable of your own, add it to exo_ignore_variables. (2) '
            'exo_protocols has an unknown key popp; did you mean pop?') in messages['contoso.test']
    assert ('(1) Set exo_smtp_test.sender for fabrikam.test. (2) exo_smtp_test has an unknown '
            'key sendr; did you mean sender?') in messages['fabrikam.test']
    assert not os.path.exists(os.path.join(lab.workdir, 'exo-report'))

    zones = before(lab)
    rollback = lab.run('rollback', inventory, forks=2)
    assert_untouched(lab, rollback, zones)
    assert 'did you mean exo_backup_dir?' in variable_messages(rollback)['contoso.test']

    zones = before(lab)
    smtp = lab.run('smtp_test', inventory, forks=2)
    assert_untouched(lab, smtp, zones)
    assert 'did you mean sender?' in variable_messages(smtp)['fabrikam.test']

    m365 = m365_args(lab.m365, lab.app)
    m365['tenant'] = m365.pop('tenant_id')
    pop = run_playbook(playbook='exchangeonline.mail.enable_pop', workdir=lab.workdir,
                       extra_vars={'user': 'adele@contoso.test', 'exo_m365': m365})
    assert pop.rc != 0
    assert ('exo_m365 has an unknown key tenant; did you mean tenant_id?'
            in variable_messages(pop)['localhost'])
    assert lab.m365.requests == []
    assert SECRET not in pop.stdout + pop.stderr
