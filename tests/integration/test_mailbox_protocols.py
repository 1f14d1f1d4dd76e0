"""mailbox_protocols against the emulator's Exchange admin endpoint, with real msal and requests."""

from tests.integration.conftest import m365_args

ROLES = ('User.Read.All', 'Exchange.ManageAsApp')
SECRET = 'mailbox-protocols-secret'


def protocols(m365, app, name='protocols', **args):
    return {'name': name, 'exchangeonline.mail.mailbox_protocols': dict(m365_args(m365, app), **args),
            'register': 'out', 'ignore_errors': True}


def sets(m365):
    return [r for r in m365.requests if r.get('cmdlet') in ('Set-CASMailbox', 'Set-TransportConfig')]


def test_pop_on_for_one_user_idempotent_and_check_mode(m365, play):
    m365.add_user('adele@contoso.test', licensed=True, mailbox=True)
    m365.cas_mailbox('adele@contoso.test')['PopEnabled'] = False
    app = m365.add_app(secret=SECRET, roles=ROLES)
    task = protocols(m365, app, mailboxes=['adele@contoso.test'], pop=True)

    run = play([task], check=True, diff=True)
    assert run.last['result']['changed'] is True
    assert sets(m365) == []
    assert m365.cas_mailbox('adele@contoso.test')['PopEnabled'] is False
    assert '+adele@contoso.test: pop=True' in run.stdout

    run = play([task, {'name': 'confirm', 'exchangeonline.mail.mailbox_info': dict(
        m365_args(m365, app), mailboxes=['adele@contoso.test'], include=['protocols']),
        'register': 'info'}])
    assert run.task('protocols')['result']['changed'] is True
    assert run.task('confirm')['result']['mailboxes'][0]['protocols']['pop'] is True
    assert len(sets(m365)) == 1

    m365.clear_log()
    run = play([task])
    assert run.last['result']['changed'] is False
    assert sets(m365) == []


def test_smtp_auth_inherit_and_tenant_default(m365, play):
    m365.add_user('scanner@contoso.test', licensed=True, mailbox=True)
    m365.cas_mailbox('scanner@contoso.test')['SmtpClientAuthenticationDisabled'] = False
    app = m365.add_app(secret=SECRET, roles=ROLES)
    run = play([protocols(m365, app, mailboxes=['scanner@contoso.test'], smtp_auth='inherit',
                          tenant_smtp_auth='enabled')])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert m365.cas_mailbox('scanner@contoso.test')['SmtpClientAuthenticationDisabled'] is None
    assert m365.transport_config['SmtpClientAuthenticationDisabled'] is False
    assert result['tenant']['changed'] is True
    assert result['mailboxes'][0]['after']['smtp_auth'] == 'inherit'


def test_partial_failure_reports_each_mailbox(m365, play):
    for upn in ('a@contoso.test', 'b@contoso.test'):
        m365.add_user(upn, licensed=True, mailbox=True)
        m365.cas_mailbox(upn)['ImapEnabled'] = True
    m365.add_user('nobox@contoso.test', licensed=False, mailbox=False)
    app = m365.add_app(secret=SECRET, roles=ROLES)
    run = play([protocols(m365, app, mailboxes=['a@contoso.test', 'nobox@contoso.test',
                                                'b@contoso.test'], imap=False)])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['msg'] == ('1 of 3 mailboxes failed; the other 2 are set as asked (2 changed '
                             'now): nobox@contoso.test: no Exchange Online mailbox '
                             'nobox@contoso.test')
    entries = dict((e['mailbox'], e) for e in result['mailboxes'])
    assert entries['a@contoso.test']['changed'] and entries['b@contoso.test']['changed']
    assert entries['nobox@contoso.test']['failed']
    assert m365.cas_mailbox('a@contoso.test')['ImapEnabled'] is False
    assert m365.cas_mailbox('b@contoso.test')['ImapEnabled'] is False


def test_failure_messages_fit_one_all_and_check_mode(m365, play):
    """The message says what failed and what became of the others, in words that fit the
    count: one mailbox, every mailbox, some of them (and what check mode would do)."""
    m365.add_user('a@contoso.test', licensed=True, mailbox=True)
    m365.cas_mailbox('a@contoso.test')['ImapEnabled'] = True
    for upn in ('nobox@contoso.test', 'gone@contoso.test'):
        m365.add_user(upn, licensed=False, mailbox=False)
    app = m365.add_app(secret=SECRET, roles=ROLES)
    run = play([
        protocols(m365, app, 'one of one', mailboxes=['nobox@contoso.test'], imap=False),
        protocols(m365, app, 'two of two', mailboxes=['nobox@contoso.test', 'gone@contoso.test'],
                  imap=False),
        dict(protocols(m365, app, 'one of two in check mode',
                       mailboxes=['a@contoso.test', 'nobox@contoso.test'], imap=False),
             check_mode=True),
    ])
    messages = dict((r['task'], r['result']['msg']) for r in run.results)
    assert [r['result']['phase'] for r in run.results] == ['Get-CASMailbox'] * 3
    assert messages['one of one'] == ('nobox@contoso.test failed: no Exchange Online mailbox '
                                      'nobox@contoso.test')
    assert messages['two of two'] == (
        'all 2 mailboxes failed: nobox@contoso.test: no Exchange Online mailbox '
        'nobox@contoso.test; gone@contoso.test: no Exchange Online mailbox gone@contoso.test')
    assert messages['one of two in check mode'] == (
        '1 of 2 mailboxes failed; the other one would be set as asked (1 would change): '
        'nobox@contoso.test: no Exchange Online mailbox nobox@contoso.test')
    assert m365.cas_mailbox('a@contoso.test')['ImapEnabled'] is True
    assert sets(m365) == []


def test_enable_pop_example_playbook(m365, play, tmp_path):
    """playbooks/enable_pop.yml, run by its FQCN: POP3 on, confirmed."""
    from tests.lab.ansible_runner import run_playbook
    m365.add_user('adele@contoso.test', licensed=True, mailbox=True)
    m365.cas_mailbox('adele@contoso.test')['PopEnabled'] = False
    app = m365.add_app(secret=SECRET, roles=ROLES)
    env = {'AZURE_TENANT_ID': m365.tenant_id, 'AZURE_CLIENT_ID': app['client_id'],
           'AZURE_CLIENT_SECRET': SECRET}
    endpoints = dict((k, v) for k, v in m365_args(m365, app).items()
                     if k in ('authority_host', 'graph_endpoint', 'exo_endpoint', 'ca_path'))
    run = run_playbook(playbook='exchangeonline.mail.enable_pop', workdir=str(tmp_path / 'pb'),
                       extra_vars={'user': 'adele@contoso.test', 'exo_m365': endpoints},
                       env=env)
    assert run.rc == 0, run.stdout[-3000:]
    assert 'POP3 is on for adele@contoso.test' in run.stdout
    assert m365.cas_mailbox('adele@contoso.test')['PopEnabled'] is True
    assert SECRET not in run.stdout + run.stderr
