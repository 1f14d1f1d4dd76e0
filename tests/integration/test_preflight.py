"""migrate's preflight: before anything changes for any domain, every access the run needs is
proven for every domain, and every problem is reported at once (SPEC section 7).

Real BIND 9, the lab's Microsoft 365 emulator over HTTPS and its SMTP server, real
ansible-playbook. Assertions are about what a user sees (the task messages) and about what did
not happen: no domain in the tenant (asked through Graph), no UPDATE in named's log, the zones
as they were.
"""

import os

import pytest

from tests.integration.test_playbooks import SECRET, Lab, output
from tests.lab.bind import BindServer
from tests.lab.m365.client import app_token, session_for

DOMAINS = ('contoso.test', 'fabrikam.test', 'northwind.test')
ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'Exchange.ManageAsApp', 'SMTP.SendAsApp',
         'Mail.ReadBasic.All')
PREFLIGHT_STOP = 'Stop the whole run when the preflight of a domain found a problem'
CHANGES = ('exchangeonline.mail.domain :', 'exchangeonline.mail.dns_migration :',
           'exchangeonline.mail.mailbox_protocols :', 'exchangeonline.mail.smtp_test :')


class UpdatelessBind(BindServer):
    """named whose zones take no dynamic updates at all (allow-update { none; }): the key reads
    them (transfers and queries) but may not update them."""

    def _write_config(self):
        super(UpdatelessBind, self)._write_config()
        path = os.path.join(self.workdir, 'named.conf')
        with open(path) as f:
            text = f.read()
        with open(path, 'w') as f:
            f.write(text.replace('allow-update { key "%s"; };' % self.key_name,
                                 'allow-update { none; };'))


def start_lab(tmp_path, bind_class=BindServer):
    return Lab.start(tmp_path, DOMAINS, roles=ROLES, secret=SECRET, bind_class=bind_class)


@pytest.fixture
def lab(tmp_path):
    lab = start_lab(tmp_path)
    try:
        yield lab
    finally:
        lab.stop()


def tenant_domains(m365):
    """The tenant's domains, asked through Graph (GET /v1.0/domains) with an app of its own."""
    token = app_token(m365, ('Domain.Read.All',), ['https://graph.microsoft.com/.default'])
    answer = session_for(m365).get(m365.url + '/v1.0/domains', timeout=10,
                                   headers={'Authorization': 'Bearer ' + token})
    assert answer.status_code == 200, answer.text
    return sorted(d['id'] for d in answer.json()['value'])


def preflight_messages(run):
    """{host: message} of the task that stops the run."""
    return dict((r['host'], r['result']['msg']) for r in run.results
                if r['task'] == PREFLIGHT_STOP)


def tenant_writes(m365):
    """The requests that could have changed the tenant: Graph calls other than GET (a $batch
    of GETs aside) and cmdlets other than Get-*."""
    return [(r['method'], r['path'], r.get('cmdlet')) for r in m365.requests
            if (r['resource'] == 'graph' and r['method'] != 'GET'
                and not r['path'].endswith('/$batch'))
            or (r['resource'] == 'exo' and not str(r.get('cmdlet') or '').startswith('Get-'))]


def assert_nothing_changed(lab, zones_before, run):
    assert run.rc != 0
    assert tenant_domains(lab.m365) == [lab.m365.tenant_domain]
    assert tenant_writes(lab.m365) == []
    for domain, axfr in zones_before.items():
        assert lab.bind.axfr(domain) == axfr, domain
    assert lab.bind.update_messages() == 0
    ran = [r['task'] for r in run.results if r['task'].startswith(CHANGES)]
    assert ran == [], ran


def zones(lab):
    return dict((d, lab.bind.axfr(d)) for d in DOMAINS)


# -- DNS --------------------------------------------------------------------------------------
def test_a_wrong_tsig_secret_stops_migrate_before_the_tenant_is_touched(lab):
    before = zones(lab)
    dns = dict(lab.bind.module_args(), key_secret='c2VjcmV0LXRoYXQtaXMtd3Jvbmc=')
    inventory = lab.inventory({'contoso.test': {'exo_pattern': 'full'}}, exo_dns=dns)
    run = lab.run('migrate', inventory, verbosity=3)
    assert_nothing_changed(lab, before, run)
    assert lab.bind.updates_seen() == []  # not even the UPDATE that changes nothing
    msg = preflight_messages(run)['contoso.test']
    assert msg.startswith('Preflight of contoso.test: 1 problem(s), so nothing was changed for '
                          'any domain: (1) DNS: find zone: 127.0.0.1 port %d/tcp rejected the '
                          'TSIG signature of key exo-lab-key (BADSIG): the key_secret or '
                          'key_algorithm does not match the server\'s key.' % lab.bind.port), msg
    text = run.stdout + run.stderr
    assert 'c2VjcmV0LXRoYXQtaXMtd3Jvbmc=' not in text
    assert SECRET not in text


def test_a_domain_the_server_does_not_host_stops_migrate(lab):
    before = zones(lab)
    inventory = lab.inventory({'unhosted.test': {'exo_pattern': 'legacy_forward'}})
    run = lab.run('migrate', inventory)
    assert_nothing_changed(lab, before, run)
    assert lab.bind.updates_seen() == []
    msg = preflight_messages(run)['unhosted.test']
    assert ('(1) DNS: find zone: 127.0.0.1 port %d/tcp answered REFUSED for the SOA of '
            'unhosted.test.: it is not authoritative for that name. Set zone, or point server '
            'at the primary of the zone.' % lab.bind.port) in msg, msg


def test_one_broken_domain_stops_every_domain(lab):
    """contoso.test could go, fabrikam.test's DNS server name is wrong: neither changes."""
    before = zones(lab)
    inventory = lab.inventory({
        'contoso.test': {'exo_pattern': 'full'},
        'fabrikam.test': {'exo_pattern': 'partial',
                          'exo_dns': dict(lab.bind.module_args(), port=1)}})
    run = lab.run('migrate', inventory, forks=2)
    assert_nothing_changed(lab, before, run)
    messages = preflight_messages(run)
    assert messages['contoso.test'].startswith('Preflight of contoso.test passed: DNS: zone '
                                               'contoso.test. read (axfr) and updatable')
    assert 'connection refused by 127.0.0.1 port 1/tcp' in messages['fabrikam.test']
    # ... and the good domain's proof was an UPDATE that changed nothing.
    assert [line for line in lab.bind.updates_seen() if 'approved' not in line] == []


def test_a_key_that_may_not_update_fails_the_preflight_and_check_mode_says_not_proven(tmp_path):
    lab = start_lab(tmp_path, UpdatelessBind)
    try:
        before = zones(lab)
        inventory = lab.inventory({'contoso.test': {'exo_pattern': 'full',
                                                    'exo_use_tenant': False}})
        run = lab.run('migrate', inventory)
        assert_nothing_changed(lab, before, run)
        msg = preflight_messages(run)['contoso.test']
        assert ('(1) DNS: preflight: 127.0.0.1 port %d/tcp answered REFUSED to an UPDATE of zone '
                'contoso.test. that changes nothing (its only prerequisite: the SOA exists): the '
                'server does not take updates of contoso.test. from key exo-lab-key: allow them '
                'on the server (BIND: allow-update or update-policy; Knot DNS: an acl with '
                'action: update) and check key_name, key_secret and key_algorithm here. Nothing '
                'was changed.' % lab.bind.port) in msg, msg

        # Check mode sends no UPDATE, so it cannot see this: it says what is not proven.
        seen = len(lab.bind.updates_seen())
        assert seen == 1  # the refused one
        run = lab.run('migrate', inventory, check=True)
        assert run.rc == 0, output(run)
        msg = preflight_messages(run)['contoso.test']
        assert msg == ('Preflight of contoso.test passed: DNS: zone contoso.test. read (axfr). '
                       'Not proven before the change: the right to update contoso.test. (check '
                       'mode sends no UPDATE).')
        assert 'check mode sends no UPDATE, so the right of the key exo-lab-key to update ' \
               'contoso.test. is not proven' in run.stdout + run.stderr
        assert len(lab.bind.updates_seen()) == seen
    finally:
        lab.stop()


# -- Microsoft 365 ----------------------------------------------------------------------------
def test_a_missing_graph_permission_and_a_missing_exchange_role_are_reported_at_once(lab):
    """Three domains, each with its own app: one without Domain.ReadWrite.All, one whose
    service principal has no Exchange role (RBAC), one without SMTP.SendAsApp and
    Mail.ReadBasic.All for its test-send. One run names all four problems; nothing changes."""
    m365 = lab.m365
    smtp = m365.start_smtp()
    m365.add_user('adele@fabrikam.test')
    m365.add_user('scanner@contoso.test')
    read_only = m365.add_app(secret=SECRET + '-ro', roles=('Domain.Read.All', 'User.Read.All'))
    no_rbac = m365.add_app(secret=SECRET + '-rbac', roles=ROLES, exchange_cmdlets=())
    no_smtp = m365.add_app(secret=SECRET + '-smtp', roles=('Domain.ReadWrite.All',))
    before = zones(lab)

    def app(which):
        return {'exo_m365': dict(m365_options(lab), client_id=which['client_id'],
                                 client_secret=which['secret'])}
    inventory = lab.inventory({
        'contoso.test': dict(app(read_only), exo_pattern='full'),
        'fabrikam.test': dict(app(no_rbac), exo_pattern='partial',
                              exo_mailboxes=['adele@fabrikam.test'],
                              exo_protocols={'smtp_auth': 'enabled'}),
        'northwind.test': dict(app(no_smtp), exo_pattern='full',
                               exo_smtp_test={'sender': 'scanner@contoso.test',
                                              'host': '127.0.0.1', 'port': smtp.port})})
    run = lab.run('migrate', inventory, forks=3)
    assert_nothing_changed(lab, before, run)
    messages = preflight_messages(run)
    assert len(messages) == 3
    assert ('(1) Microsoft Graph: the app has the application permissions Domain.Read.All, '
            'User.Read.All, but not Domain.ReadWrite.All, which adding contoso.test to the tenant '
            'needs. Grant it with admin consent in the app registration\'s API permissions.'
            ) in messages['contoso.test'], messages['contoso.test']
    rbac = messages['fabrikam.test']
    # the mailboxes' read and the DKIM chain's read (on by default) both need an Exchange role
    assert '2 problem(s)' in rbac
    assert 'Exchange Online DKIM: ' in rbac and 'Get-DkimSigningConfig' in rbac, rbac
    assert 'Exchange Online: ' in rbac and 'answered 401 Unauthorized' in rbac, rbac
    assert 'User is not allowed to call Get-CASMailbox' in rbac, rbac
    assert 'has no Exchange Online role that holds this cmdlet' in rbac, rbac
    smtp_msg = messages['northwind.test']
    # ... and the DKIM chain's read, without Exchange.ManageAsApp
    assert '3 problem(s)' in smtp_msg, smtp_msg
    assert 'Exchange Online DKIM: ' in smtp_msg, smtp_msg
    assert ('SMTP: the app has the Microsoft Graph application permissions Domain.ReadWrite.All, '
            'but not Mail.ReadBasic.All, which finding the test message in scanner@contoso.test '
            'needs (exo_smtp_test.confirm_delivery).') in smtp_msg, smtp_msg
    assert ('SMTP: the app has the Office 365 Exchange Online application permissions none, but '
            'not SMTP.SendAsApp, which the XOAUTH2 test-send as scanner@contoso.test needs.'
            ) in smtp_msg, smtp_msg
    # Every preflight ran before the first stop: all three hosts reached the stopping task.
    assert sorted(r['host'] for r in run.results if r['task'] == PREFLIGHT_STOP) == sorted(
        ['contoso.test', 'fabrikam.test', 'northwind.test'])
    # No test message, no AUTH: the submission server saw only EHLO and STARTTLS.
    assert set(e['verb'] for e in smtp.log) <= {'EHLO', 'STARTTLS', 'QUIT'}
    text = run.stdout + run.stderr
    for secret in (SECRET + '-ro', SECRET + '-rbac', SECRET + '-smtp', lab.bind.key_secret):
        assert secret not in text


def m365_options(lab):
    from tests.integration.conftest import m365_args
    return m365_args(lab.m365, lab.app)


def test_the_preflight_passes_says_what_it_proved_and_the_run_goes_on(lab):
    """The README's inventory shape: exo_protocols {smtp_auth: enabled} and a test-send."""
    m365 = lab.m365
    smtp = m365.start_smtp()
    m365.add_user('scanner@contoso.test')
    inventory = lab.inventory({'contoso.test': {
        'exo_pattern': 'full', 'exo_mailboxes': ['scanner@contoso.test'],
        'exo_protocols': {'smtp_auth': 'enabled'},
        'exo_smtp_test': {'sender': 'scanner@contoso.test', 'host': '127.0.0.1',
                          'port': smtp.port, 'delivery_timeout': 20}}})
    run = lab.run('migrate', inventory)
    assert run.rc == 0, output(run)
    msg = preflight_messages(run)['contoso.test']
    assert msg == (
        'Preflight of contoso.test passed: DNS: zone contoso.test. read (axfr) and updatable; '
        'Microsoft Graph: token with Domain.ReadWrite.All, Mail.ReadBasic.All, User.Read.All; '
        'adding contoso.test to the tenant; '
        'Exchange Online: 1 mailbox(es) and the tenant read (Get-CASMailbox, '
        'Get-TransportConfig); Exchange Online: DKIM signing config of contoso.test read '
        '(none yet); SMTP: 127.0.0.1:%d reached, TLSv1.3. Not proven before the change: the '
        'Exchange role for New-/Set-DkimSigningConfig (Exchange Administrator).' % smtp.port), msg
    delivered = run.task('exchangeonline.mail.smtp_test : Send a test message via 127.0.0.1:%d'
                         % smtp.port)['result']
    assert delivered['delivered'] is True
    assert m365.cas_mailbox('scanner@contoso.test')['SmtpClientAuthenticationDisabled'] is False
