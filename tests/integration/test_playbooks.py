"""The collection's playbooks run by FQCN (ansible-playbook exchangeonline.mail.<name>) with an
inventory of one host per domain, against a real BIND 9 and the lab's Microsoft 365 emulator.

Assertions are about what a user sees: the records the servers serve, the zone after a rollback
(AXFR, SOA aside), the tenant's state, the JUnit and Markdown reports a CI system shows.
"""

import os
import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from tests.integration.conftest import m365_args
from tests.lab.ansible_runner import run_playbook
from tests.lab.bind import BindServer, zone_template
from tests.lab.m365.emulator import M365Emulator

PATTERNS = {'contoso.test': 'full', 'fabrikam.test': 'partial', 'northwind.test': 'legacy_forward'}
ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'Exchange.ManageAsApp')
SECRET = 'playbooks-lab-secret-4711'


class Lab:
    def __init__(self, bind, m365, app, workdir):
        self.bind = bind
        self.m365 = m365
        self.app = app
        self.workdir = workdir

    def inventory(self, hosts, **common):
        """An inventory file: hosts {domain: host vars}; common vars for every host."""
        group_vars = {'exo_dns': self.bind.module_args(),
                      'exo_m365': m365_args(self.m365, self.app),
                      'exo_wait_timeout': 30}
        group_vars.update(common)
        path = os.path.join(self.workdir, 'inventory-%d.yml' % len(os.listdir(self.workdir)))
        with open(path, 'w') as f:
            yaml.safe_dump({'all': {'children': {'mail_domains': {
                'hosts': hosts, 'vars': group_vars}}}}, f)
        return path

    def run(self, name, inventory, **kwargs):
        """ansible-playbook exchangeonline.mail.<name> -i inventory, from the lab's directory."""
        return run_playbook(playbook='exchangeonline.mail.' + name, inventory=inventory,
                            workdir=self.workdir, **kwargs)

    @classmethod
    def start(cls, tmp_path, domains, roles=ROLES, secret=SECRET, bind_class=BindServer):
        """BIND with a legacy zone per domain, the emulator verifying against it, an app with
        ``roles``; stop() ends both."""
        template = zone_template('contoso.test.zone')
        bind = bind_class(dict((d, template.replace('contoso.test', d)) for d in domains),
                          workdir=str(tmp_path / 'bind'))
        bind.start()
        m365 = M365Emulator(workdir=str(tmp_path / 'm365'), dns_server=('127.0.0.1', bind.port))
        m365.start()
        workdir = tmp_path / 'run'
        workdir.mkdir()
        return cls(bind, m365, m365.add_app(secret=secret, roles=roles), str(workdir))

    def stop(self):
        self.m365.stop()
        self.bind.stop()


@pytest.fixture
def lab(tmp_path):
    """BIND with three legacy zones, the emulator verifying against it, an app with the roles
    the playbooks need."""
    lab = Lab.start(tmp_path, PATTERNS)
    try:
        yield lab
    finally:
        lab.stop()


def served(bind, domain):
    mx = bind.rrset(domain, 'MX')
    cname = bind.rrset('autodiscover.' + domain, 'CNAME')
    spf = [v for v in bind.rrset(domain, 'TXT')[1] if 'v=spf1' in v]
    return {'mx': mx[1] if mx else None, 'autodiscover': cname[1] if cname else None, 'spf': spf}


def exo_mx(m365, domain, preference=0):
    """The MX record of the host Graph gives the domain (emu.mx_host)."""
    return '%d %s.' % (preference, m365.mx_host(domain))


def legacy_mx(domain):
    return '10 mail.%s.' % domain


def output(run):
    return (run.stdout + run.stderr)[-4000:]


def junit(path):
    """(root, {suite name: {(classname, name): testcase element}}) of a JUnit file."""
    root = ET.parse(path).getroot()
    suites = {}
    for suite in root.iter('testsuite'):
        suites[suite.get('name')] = dict(((c.get('classname'), c.get('name')), c)
                                         for c in suite.iter('testcase'))
    return root, suites


def test_migrate_each_pattern_then_rollback(lab):
    """One inventory host per domain, each with its own pattern; then rollback.yml gives every
    zone back exactly."""
    bind, m365 = lab.bind, lab.m365
    m365.add_user('adele@contoso.test', licensed=True, mailbox=True)
    m365.cas_mailbox('adele@contoso.test')['PopEnabled'] = False
    before = dict((d, bind.axfr(d)) for d in PATTERNS)
    hosts = dict((d, {'exo_pattern': p}) for d, p in PATTERNS.items())
    hosts['contoso.test'].update(exo_mailboxes=['adele@contoso.test'],
                                 exo_protocols={'pop': True, 'smtp_auth': 'disabled'})
    inventory = lab.inventory(hosts)

    run = lab.run('migrate', inventory, forks=3)
    assert run.rc == 0, output(run)
    # The tenant side: every domain verified with Exchange Online enabled.
    for domain in PATTERNS:
        assert m365.domains[domain]['isVerified'] is True
        assert m365.domains[domain]['supportedServices'] == ['Email']
    # The DNS side: each pattern's records (SPEC section 2), verified on the name server, with
    # the MX host Graph gives a domain added today (MC1048624: under mx.microsoft).
    assert m365.mx_host('contoso.test').endswith('-v1.mx.microsoft')
    spf = ('v=spf1 ip4:192.0.2.0/24 include:_spf.mailhost.test '
           'include:spf.protection.outlook.com ~all')
    assert served(bind, 'contoso.test') == {
        'mx': [exo_mx(m365, 'contoso.test')], 'autodiscover': ['autodiscover.outlook.com.'],
        'spf': ['"%s"' % spf]}
    assert served(bind, 'fabrikam.test') == {
        'mx': sorted([legacy_mx('fabrikam.test'), exo_mx(m365, 'fabrikam.test', 20)]),
        'autodiscover': ['autodiscover.outlook.com.'], 'spf': ['"%s"' % spf]}
    assert served(bind, 'northwind.test') == {
        'mx': [legacy_mx('northwind.test')], 'autodiscover': ['autodiscover.outlook.com.'],
        'spf': ['"%s"' % spf]}
    verified = [r for r in run.results if r['task'] == (
        'exchangeonline.mail.dns_migration : '
        'Wait until every authoritative name server serves the records')]
    assert sorted(r['host'] for r in verified if r['result'].get('ok')) == sorted(PATTERNS)
    # The mailbox step ran for contoso.test only.
    assert m365.cas_mailbox('adele@contoso.test')['PopEnabled'] is True
    assert m365.cas_mailbox('adele@contoso.test')['SmtpClientAuthenticationDisabled'] is True
    protocols = [r for r in run.results
                 if r['task'].startswith('exchangeonline.mail.mailbox_protocols')]
    assert set(r['host'] for r in protocols) == {'contoso.test'}
    # DKIM on by default: every domain signs with its own keys, its CNAMEs on the server.
    for domain in PATTERNS:
        config = m365.exo.dkim[domain]
        assert config['Enabled'] is True and config['Status'] == 'Valid'
        assert bind.rrset('selector1._domainkey.' + domain, 'CNAME')[1] == [
            config['targets'][0] + '.']
    # Backups: relative to where ansible-playbook ran, one directory per domain, three per
    # domain (verification TXT, the migration, then the DKIM CNAMEs).
    for domain in PATTERNS:
        names = sorted(os.listdir(os.path.join(lab.workdir, 'exo-backups', domain)))
        assert [n.split('-', 1)[1] for n in names] == [
            'verification.json', 'migration.json', 'authentication.json']
    assert SECRET not in run.stdout + run.stderr
    assert bind.key_secret not in run.stdout + run.stderr

    # A second run changes nothing.
    again = lab.run('migrate', inventory, forks=3)
    assert again.rc == 0, output(again)
    recap = re.findall(r'changed=(\d+)', again.stdout.split('PLAY RECAP')[-1])
    assert recap and set(recap) == {'0'}, again.stdout[-2000:]

    # rollback.yml: every zone exactly as before (SOA aside), newest backup first.
    run = lab.run('rollback', inventory, forks=3)
    assert run.rc == 0, output(run)
    for domain in PATTERNS:
        assert bind.axfr(domain) == before[domain], domain
        pending = [n for n in os.listdir(os.path.join(lab.workdir, 'exo-backups', domain))
                   if n.endswith('.json')]
        assert pending == []
    # ... and a second rollback finds nothing pending and changes nothing.
    run = lab.run('rollback', inventory)
    assert run.rc == 0, output(run)
    assert run.stdout.count('nothing was pending') == 3
    for domain in PATTERNS:
        assert bind.axfr(domain) == before[domain], domain


def test_migrate_check_mode_changes_nothing(lab):
    inventory = lab.inventory({'contoso.test': {'exo_pattern': 'full', 'exo_use_tenant': False}})
    before = lab.bind.axfr('contoso.test')
    run = lab.run('migrate', inventory, check=True, diff=True)
    assert run.rc == 0, output(run)
    assert '+contoso.test. 3600 IN MX 0 contoso-test.mail.protection.outlook.com.' in run.stdout
    assert lab.bind.axfr('contoso.test') == before
    assert lab.bind.updates_seen() == []


def test_rollback_refuses_records_changed_since_unless_forced(lab):
    bind = lab.bind
    inventory = lab.inventory({'contoso.test': {'exo_pattern': 'full', 'exo_use_tenant': False}})
    before = bind.axfr('contoso.test')
    run = lab.run('migrate', inventory)
    assert run.rc == 0, output(run)
    # Someone edits a record the migration wrote.
    assert bind.update('contoso.test', lambda u: u.replace(
        'contoso.test.', 3600, 'MX', '5 mx2.example.net.')) == 'NOERROR'
    edited = bind.axfr('contoso.test')
    run = lab.run('rollback', inventory)
    assert run.rc != 0
    failed = [r for r in run.results if r['status'] == 'failed']
    assert len(failed) == 1, [r['task'] for r in failed]
    assert 'records changed since the run that wrote' in failed[0]['result']['msg']
    assert 'contoso.test. MX is now TTL 3600 5 mx2.example.net.' in failed[0]['result']['msg']
    assert bind.axfr('contoso.test') == edited
    backups = os.path.join(lab.workdir, 'exo-backups', 'contoso.test')
    assert len([n for n in os.listdir(backups) if n.endswith('.json')]) == 1

    run = lab.run('rollback', inventory, extra_vars={'exo_rollback_force': True})
    assert run.rc == 0, output(run)
    assert bind.axfr('contoso.test') == before
    assert 'force: overwriting changes made since the backup' in run.stdout + run.stderr


def test_rollback_without_backups_says_so(lab):
    inventory = lab.inventory({'contoso.test': {}}, exo_backup_dir='no-such-backups')
    run = lab.run('rollback', inventory)
    assert run.rc != 0
    failed = [r for r in run.results if r['status'] == 'failed']
    assert len(failed) == 1
    assert 'there is no backup directory %s for contoso.test' % os.path.join(
        lab.workdir, 'no-such-backups', 'contoso.test') in failed[0]['result']['msg']


def test_migrate_without_pattern_fails_before_any_change(lab):
    inventory = lab.inventory({'contoso.test': {'exo_use_tenant': False}})
    before = lab.bind.axfr('contoso.test')
    run = lab.run('migrate', inventory)
    assert run.rc != 0
    assert 'Set exo_pattern (full, partial or legacy_forward) for contoso.test' in run.stdout
    assert lab.bind.axfr('contoso.test') == before


def test_migrate_with_a_mistyped_pattern_changes_neither_tenant_nor_zone(lab):
    inventory = lab.inventory({'contoso.test': {'exo_pattern': 'fulll'}})
    before = lab.bind.axfr('contoso.test')
    run = lab.run('migrate', inventory)
    assert run.rc != 0
    assert 'Set exo_pattern (full, partial or legacy_forward) for contoso.test, not fulll' \
        in run.stdout
    assert lab.bind.axfr('contoso.test') == before
    assert not [r for r in lab.m365.requests if r['method'] != 'GET' and r['resource'] == 'graph']


def test_check_writes_junit_and_markdown_and_fails_on_a_wrong_record(lab):
    bind, m365 = lab.bind, lab.m365
    m365.add_user('adele@contoso.test', licensed=True, mailbox=True)
    m365.add_user('nobox@fabrikam.test', licensed=False, mailbox=False)
    hosts = {'contoso.test': {'exo_pattern': 'full', 'exo_mailboxes': ['adele@contoso.test'],
                              'exo_protocols': {'pop': True}},
             'fabrikam.test': {'exo_pattern': 'partial'}}
    inventory = lab.inventory(hosts)
    run = lab.run('migrate', inventory)
    assert run.rc == 0, output(run)

    # Everything in place: check passes, the reports are written; named saw no UPDATE.
    seen = len(bind.updates_seen())
    run = lab.run('check', inventory)
    assert run.rc == 0, output(run)
    assert len(bind.updates_seen()) == seen
    report_dir = os.path.join(lab.workdir, 'exo-report')
    root, suites = junit(os.path.join(report_dir, 'exo-check.xml'))
    assert root.tag == 'testsuites' and root.get('failures') == '0' and root.get('errors') == '0'
    assert sorted(suites) == ['contoso.test', 'fabrikam.test']
    contoso = suites['contoso.test']
    assert ('contoso.test.tenant', 'domain verified with Email') in contoso
    for check in ('mx', 'autodiscover', 'spf', 'dmarc', 'mta_sts', 'tls_rpt'):
        case = contoso[('contoso.test.dns', '%s @ ns1.contoso.test' % check)]
        assert case.find('failure') is None and case.find('error') is None
    # Neither is published in the lab: each domain's case says so (a warning, not a failure).
    assert 'no MTA-STS record at _mta-sts.contoso.test.' in \
        contoso[('contoso.test.dns', 'mta_sts @ ns1.contoso.test')].find('system-out').text
    assert 'no TLS-RPT record at _smtp._tls.contoso.test.' in \
        contoso[('contoso.test.dns', 'tls_rpt @ ns1.contoso.test')].find('system-out').text
    mailbox = contoso[('contoso.test.mailbox', 'adele@contoso.test')]
    assert mailbox.find('failure') is None
    assert 'POP3 on' in mailbox.find('system-out').text
    with open(os.path.join(report_dir, 'exo-check.md')) as f:
        markdown = f.read()
    assert '# Exchange Online mail check' in markdown
    assert '## contoso.test (full): PASS' in markdown
    assert '#### ns1.contoso.test (127.0.0.1 port %d, authoritative)' % bind.port in markdown
    assert '| mx | pass | %s |' % exo_mx(m365, 'contoso.test') in markdown
    assert '| adele@contoso.test | yes | yes | yes | on |' in markdown
    assert 'Every check passed for 2 domain(s)' in run.stdout
    # Read-only: no UPDATE reached the server during the check.
    updates = bind.update_messages()

    # Someone points contoso.test's MX back at the old server; the mailbox check wants IMAP off.
    apex = 'contoso.test.'
    assert bind.update('contoso.test', lambda u: u.replace(
        apex, 3600, 'MX', '10 mail.contoso.test.')) == 'NOERROR'
    updates += 1
    inventory = lab.inventory(dict(hosts, **{'contoso.test': dict(
        hosts['contoso.test'], exo_protocols={'pop': True, 'imap': False})}))
    run = lab.run('check', inventory, extra_vars={'exo_report_dir': 'ci-reports'})
    assert run.rc != 0
    assert bind.update_messages() == updates
    report_dir = os.path.join(lab.workdir, 'ci-reports')
    root, suites = junit(os.path.join(report_dir, 'exo-check.xml'))
    assert root.get('failures') == '2'
    mx = suites['contoso.test'][('contoso.test.dns', 'mx @ ns1.contoso.test')]
    failure = mx.find('failure')
    assert failure is not None
    assert failure.get('message') == ('found 10 mail.contoso.test.; the Exchange Online MX '
                                      '%s. is missing' % m365.mx_host('contoso.test'))
    assert 'found: 10 mail.contoso.test.' in failure.text
    mailbox = suites['contoso.test'][('contoso.test.mailbox', 'adele@contoso.test')]
    assert mailbox.find('failure').get('message') == 'IMAP is on, expected off'
    # The other domain still passes.
    fabrikam = suites['fabrikam.test']
    assert all(c.find('failure') is None for c in fabrikam.values())
    assert root.find("testsuite[@name='fabrikam.test']").get('failures') == '0'
    with open(os.path.join(report_dir, 'exo-check.md')) as f:
        markdown = f.read()
    assert '## contoso.test (full): FAIL' in markdown
    assert '## fabrikam.test (partial): PASS' in markdown
    assert '| mx | fail | 10 mail.contoso.test. |' in markdown
    assert 'rua=mailto:dmarc@&lt;domain&gt;' in markdown
    assert '| adele@contoso.test | yes | yes | yes | on | on | off (tenant) |' in markdown
    # The run says what failed and where the reports are, after writing them.
    assert '2 check(s) failed in 1 of 2 domain(s)' in run.stdout
    assert 'contoso.test.dns mx @ ns1.contoso.test: found 10 mail.contoso.test.' in run.stdout
    assert os.path.join(report_dir, 'exo-check.xml') in run.stdout


def test_check_reports_the_smtp_test_send(lab):
    """exo_check_smtp: check.yml test-sends with exo_smtp_test through the lab's submission
    server; a refusal (SMTP AUTH off for the tenant) is a failing testcase with Exchange's reply
    and the hint, a delivered message a passing one; without exo_check_smtp nothing is sent."""
    smtp = lab.m365.start_smtp()
    lab.app = lab.m365.add_app(secret=SECRET + '-smtp',
                               roles=ROLES + ('SMTP.SendAsApp', 'Mail.ReadBasic.All'))
    for upn in ('alice@contoso.test', 'bob@fabrikam.test', 'carol@northwind.test'):
        lab.m365.add_user(upn)
    lab.m365.cas_mailbox('bob@fabrikam.test')['SmtpClientAuthenticationDisabled'] = False
    lab.m365.transport_config['SmtpClientAuthenticationDisabled'] = True

    def send(sender):
        return {'sender': sender, 'host': '127.0.0.1', 'port': smtp.port,
                'delivery_timeout': 10}
    inventory = lab.inventory({
        'contoso.test': {'exo_pattern': 'legacy_forward', 'exo_use_tenant': False,
                         'exo_check_smtp': True, 'exo_smtp_test': send('alice@contoso.test')},
        'fabrikam.test': {'exo_pattern': 'legacy_forward', 'exo_use_tenant': False,
                          'exo_check_smtp': True, 'exo_smtp_test': send('bob@fabrikam.test')},
        'northwind.test': {'exo_pattern': 'legacy_forward', 'exo_use_tenant': False,
                           'exo_smtp_test': send('carol@northwind.test')}})
    run = lab.run('check', inventory)
    assert run.rc != 0
    root, suites = junit(os.path.join(lab.workdir, 'exo-report', 'exo-check.xml'))
    failure = suites['contoso.test'][('contoso.test.smtp', 'test-send')].find('failure')
    assert failure.get('message').startswith(
        'failed at auth: 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is '
        'disabled for the Tenant.')
    assert 'SMTP AUTH is disabled for the whole tenant' in failure.get('message')
    assert 'TLS: TLSv1.' in failure.text
    passed = suites['fabrikam.test'][('fabrikam.test.smtp', 'test-send')]
    assert passed.find('failure') is None
    assert 'delivered: True' in ET.tostring(passed, encoding='unicode')
    # Without exo_check_smtp nothing is sent and nothing reported.
    assert ('northwind.test.smtp', 'test-send') not in suites['northwind.test']
    senders = [e['arg'] for e in smtp.log if e['verb'] == 'MAIL']
    assert not any('carol' in (arg or '') for arg in senders)
    with open(os.path.join(lab.workdir, 'exo-report', 'exo-check.md')) as f:
        markdown = f.read()
    assert '| starttls | auth | 535 5.7.139 Authentication unsuccessful' in markdown
    assert markdown.count('### SMTP test-send') == 2
