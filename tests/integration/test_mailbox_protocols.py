"""mailbox_protocols against the emulator's Exchange admin endpoint, with real msal and requests."""

import threading
import time

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


def test_names_resolve_by_upn_or_address_and_a_missing_exchange_role_is_named(m365, play):
    """UPN alias@<tenant>.onmicrosoft.com, primary address first.last@contoso.test: a short list
    (one Get-CASMailbox per name) and a long one (the tenant paged once; Get-CASMailbox has no
    UPN, so a UPN is asked by -Identity) find each mailbox by either name. An app whose service
    principal lacks the Exchange role for a cmdlet gets Exchange's 401 "User is not allowed to
    call ..." (office-docs-powershell#7970): the task names the cmdlet and the role to assign,
    and no second token is asked for."""
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    users = m365.generate_users(60, domain=m365.tenant_domain, licensed_ratio=1,
                                mailbox_ratio=1, mail_domain='contoso.test')
    names = [u['userPrincipalName'] for u in users[:30]] + [u['mail'] for u in users[30:]]
    assert users[0]['mail'] == 'first.last00001@contoso.test'
    app = m365.add_app(secret=SECRET, roles=ROLES)
    reader = m365.add_app(secret=SECRET + '-reader', roles=ROLES, exchange_role='Global Reader')
    no_role = m365.add_app(secret=SECRET + '-none', roles=ROLES, exchange_role='none')
    run = play([
        protocols(m365, app, 'short', mailboxes=[names[0], names[-1]], pop=False),
        protocols(m365, app, 'long', mailboxes=names, imap=False),
        protocols(m365, reader, 'reader', mailboxes=[names[1]], smtp_auth='enabled'),
        {'name': 'no role', 'exchangeonline.mail.mailbox_info': dict(
            m365_args(m365, no_role), mailboxes=[names[2]], include=['protocols']),
         'register': 'out', 'ignore_errors': True},
    ])
    for task in ('short', 'long'):
        result = run.task(task)['result']
        assert run.task(task)['status'] == 'ok' and result['changed'], result.get('msg')
        assert result['changed_count'] == (2 if task == 'short' else 60)
    assert [m365.cas_mailbox(u['userPrincipalName'])['PopEnabled'] for u in users] == \
        [False] + [True] * 58 + [False]
    assert not any(m365.cas_mailbox(u['userPrincipalName'])['ImapEnabled'] for u in users)
    link = 'https://learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2'
    reader_msg = run.task('reader')['result']['msg']
    assert run.task('reader')['status'] == 'failed'
    assert ('Set-CASMailbox: Exchange Online answered 401 Unauthorized to POST ' in reader_msg
            and 'User is not allowed to call Set-CASMailbox' in reader_msg), reader_msg
    assert ("has no Exchange Online role that holds this cmdlet (Set-CASMailbox): assign the "
            "app the Microsoft Entra role Exchange Recipient Administrator or Exchange "
            "Administrator") in reader_msg and link in reader_msg, reader_msg
    assert m365.cas_mailbox(users[1]['userPrincipalName'])['SmtpClientAuthenticationDisabled'] \
        is None
    info_msg = run.task('no role')['result']['msg']
    assert run.task('no role')['status'] == 'failed'
    assert info_msg.startswith('Get-CASMailbox: Exchange Online answered 401 Unauthorized'), \
        info_msg
    assert ('(Get-CASMailbox): assign the app the Microsoft Entra role Global Reader (enough '
            'for Get-* cmdlets) or Exchange Administrator') in info_msg and link in info_msg
    for who in (reader, no_role):
        scopes = [r['scope'] for r in m365.requests
                  if r['resource'] == 'token' and r['client_id'] == who['client_id']]
        assert scopes and len(scopes) == len(set(scopes)), scopes  # no refresh after the 401


def test_a_set_whose_answers_are_lost_is_read_back_not_taken_as_not_applied(m365):
    """Set-CASMailbox is carried out but every answer is lost on the way back (retried: the same
    absolute values, so nothing changes twice). The outcome is read back from Exchange: adele's
    switch is off as asked (changed, with a warning); bob's read-back fails too, so his result
    says the outcome is unknown instead of "unchanged"."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mailboxes import (
        ProtocolChange)
    m365.add_user('adele@contoso.test')
    m365.add_user('bob@contoso.test')
    app = m365.add_app(secret=SECRET, roles=ROLES)
    params = dict(m365_args(m365, app), timeout=1.0, mailboxes=['adele@contoso.test'], pop=False)
    m365.inject('POST', r'/InvokeCommand$', lose_answer=True, count=50, cmdlet='Set-CASMailbox')
    result = ProtocolChange(params).run()
    entry = result['mailboxes'][0]
    assert m365.cas_mailbox('adele@contoso.test')['PopEnabled'] is False
    assert len(sets(m365)) >= 2  # retried
    assert not result.get('failed') and result['changed'] and entry['changed'], result
    assert entry['after'] == {'pop': False, 'imap': True, 'smtp_auth': 'inherit'}
    [warning] = result['warnings']
    assert warning.startswith('adele@contoso.test: Set-CASMailbox failed (Set-CASMailbox: '
                              'Exchange Online answered no answer NetworkError '), warning
    assert warning.endswith('), but read back afterwards the mailbox is as asked'), warning
    m365.clear_log()
    m365.inject('POST', r'/InvokeCommand$', lose_answer=True, count=50, cmdlet='Set-CASMailbox')

    def refuse_reads_once_a_set_came():  # after the first read, before the read-back
        deadline = time.monotonic() + 20
        while not sets(m365) and time.monotonic() < deadline:
            time.sleep(0.05)
        m365.inject('POST', r'/InvokeCommand$', 400, count=50, cmdlet='Get-CASMailbox')
    watcher = threading.Thread(target=refuse_reads_once_a_set_came, daemon=True)
    watcher.start()
    result = ProtocolChange(dict(params, mailboxes=['bob@contoso.test']), diff_mode=True).run()
    watcher.join(25)
    entry = result['mailboxes'][0]
    assert result['failed'] and entry['failed'] and entry['after'] is None, result
    assert entry['changed'] == 'unknown' and result['changed'] == 'unknown', result
    assert result['unknown_count'] == 1 and result['changed_count'] == 0
    assert result['diff']['after'] == ('bob@contoso.test: unknown (Set-CASMailbox failed and '
                                       'reading the mailbox back failed)\n')
    assert result['diff']['before'] == 'bob@contoso.test: pop=True imap=True smtp_auth=inherit\n'

    assert entry['msg'].startswith('Set-CASMailbox: Exchange Online answered no answer '), entry
    assert ('; the outcome is unknown (reading the mailbox back failed: Get-CASMailbox: '
            'Exchange Online answered 400 ') in entry['msg'], entry['msg']


def test_a_failed_tenant_default_keeps_what_the_mailboxes_got(m365):
    """Set-TransportConfig comes after the mailboxes: when Exchange refuses it, the result still
    says that the mailbox changed (changed, its entry) and fails naming the tenant step; when
    its answer is lost but the change was made, reading it back settles it."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mailboxes import (
        ProtocolChange)
    m365.add_user('adele@contoso.test')
    app = m365.add_app(secret=SECRET, roles=ROLES)
    params = dict(m365_args(m365, app), timeout=1.0, mailboxes=['adele@contoso.test'],
                  pop=False, tenant_smtp_auth='enabled')
    m365.inject('POST', r'/InvokeCommand$', 400, count=1, cmdlet='Set-TransportConfig')
    result = ProtocolChange(params).run()
    assert m365.cas_mailbox('adele@contoso.test')['PopEnabled'] is False
    assert result['failed'] and result['changed'] and result['changed_count'] == 1, result
    assert result['mailboxes'][0]['changed'] and result['phase'] == 'Set-TransportConfig'
    assert result['msg'].startswith('Set-TransportConfig: Exchange Online answered 400 '), result
    assert result['msg'].endswith('; the mailboxes before it: 1 set as asked (1 changed now)')
    assert result['tenant'] == {'before': {'smtp_auth': False}, 'after': {'smtp_auth': False},
                                'changed': False}
    m365.inject('POST', r'/InvokeCommand$', lose_answer=True, count=50,
                cmdlet='Set-TransportConfig')
    result = ProtocolChange(params).run()
    assert m365.transport_config['SmtpClientAuthenticationDisabled'] is False
    assert not result.get('failed') and result['changed'], result
    assert result['tenant'] == {'before': {'smtp_auth': False}, 'after': {'smtp_auth': True},
                                'changed': True}
    assert result['warnings'][0].startswith('tenant: Set-TransportConfig failed (')


def test_a_long_list_reads_only_its_mailboxes_and_sets_as_they_arrive(m365, play):
    """60 names of a 3,000-mailbox tenant (more than 50: read by EmailAddresses filters, never
    the whole tenant), one of them a UPN that is no address (asked by -Identity) and one that
    does not exist: the others set, each once, and the run again changes nothing."""
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    m365.generate_users(3000, domain=m365.tenant_domain, mail_domain='contoso.test')
    boxes = [u for u in m365.users if u['_mailbox']]
    names = [u['mail'] for u in boxes[:58]] + [boxes[58]['userPrincipalName'],
                                               'ghost@contoso.test']
    app = m365.add_app(secret='protocols-secret', roles=('Exchange.ManageAsApp',))
    run = play([{'name': 'imap off', 'exchangeonline.mail.mailbox_protocols': dict(
        m365_args(m365, app), mailboxes=names, imap=False), 'register': 'out',
        'ignore_errors': True}])
    result = run.last['result']
    entries = dict((e['mailbox'], e) for e in result['mailboxes'])
    assert entries['ghost@contoso.test']['failed'] and result['changed_count'] == 59, result
    assert all(m365.cas_mailbox(u['userPrincipalName'])['ImapEnabled'] is False
               for u in boxes[:59])
    assert m365.cas_mailbox(boxes[59]['userPrincipalName'])['ImapEnabled'] is True
    reads = [r for r in m365.requests if r.get('cmdlet') == 'Get-CASMailbox']
    assert all(r['parameters'].get('Filter', '').startswith('EmailAddresses -eq ')
               or r['identity'] for r in reads), reads
    assert len([r for r in reads if r['parameters'].get('Filter')]) == 3  # 59 addresses / 20
    assert len(sets(m365)) == 59
    m365.clear_log()
    again = play([{'name': 'imap off', 'exchangeonline.mail.mailbox_protocols': dict(
        m365_args(m365, app), mailboxes=names[:-1], imap=False), 'register': 'out'}])
    assert again.last['status'] == 'ok' and again.last['result']['changed'] is False
    assert sets(m365) == []


def test_a_read_that_fails_midway_reports_the_sets_it_already_sent(m365, play):
    """60 addresses, one request at a time: the first filter of 20 is read and its Sets go out,
    then Exchange refuses the second read. The task fails naming the read, and says which
    mailboxes were changed (exactly the first 20, as the tenant shows) and which were not read."""
    from tests.lab.m365 import exo as exo_lab
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    m365.generate_users(200, domain=m365.tenant_domain, mail_domain='contoso.test')
    boxes = [u for u in m365.users if u['_mailbox']][:60]
    name, read = m365.exo.cmdlets['get-casmailbox']
    filtered = []

    def refuse_the_second_filter(params):
        if params.get('filter') is not None:
            filtered.append(params['filter'])
            if len(filtered) == 2:
                raise exo_lab.CmdletError(400, 'BadRequest', 'System.InvalidOperationException',
                                          'The lab refuses this read.')
        return read(params)
    m365.exo.cmdlets['get-casmailbox'] = (name, refuse_the_second_filter)
    app = m365.add_app(secret='protocols-secret', roles=('Exchange.ManageAsApp',))
    run = play([{'name': 'imap off', 'exchangeonline.mail.mailbox_protocols': dict(
        m365_args(m365, app), mailboxes=[u['mail'] for u in boxes], imap=False,
        concurrency=1), 'register': 'out', 'ignore_errors': True}])
    result = run.last['result']
    assert run.last['status'] == 'failed' and result['phase'] == 'Get-CASMailbox', result
    assert 'The lab refuses this read' in result['msg']
    assert 'before it failed, 20 of 60 mailboxes were read and 20 of them changed' in result['msg']
    changed = sorted(e['mailbox'] for e in result['mailboxes'] if e['changed'])
    now_off = sorted(u['mail'] for u in boxes
                     if m365.cas_mailbox(u['userPrincipalName'])['ImapEnabled'] is False)
    assert changed == now_off and len(changed) == 20 and result['changed'] is True
    unread = [e for e in result['mailboxes'] if e.get('msg', '').startswith('not read')]
    assert len(unread) == 40 and len(sets(m365)) == 20


def test_a_refused_set_stops_the_others_and_a_wildcard_is_refused(m365, play):
    """An app with Global Reader reads but may not set: the first Set-CASMailbox gets 401 "User
    is not allowed to call Set-CASMailbox", no other Set is sent, and every mailbox fails
    unchanged (no read-back: it surely was not carried out). A name with * is refused before
    anything is sent."""
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    m365.generate_users(100, domain=m365.tenant_domain, mail_domain='contoso.test')
    boxes = [u for u in m365.users if u['_mailbox']][:60]
    app = m365.add_app(secret='protocols-secret', roles=('Exchange.ManageAsApp',),
                       exchange_role='Global Reader')
    run = play([{'name': 'imap off', 'exchangeonline.mail.mailbox_protocols': dict(
        m365_args(m365, app), mailboxes=[u['mail'] for u in boxes], imap=False,
        concurrency=1), 'register': 'out', 'ignore_errors': True}])
    result = run.last['result']
    assert run.last['status'] == 'failed' and result['phase'] == 'Set-CASMailbox', result
    assert len(sets(m365)) == 1 and result['changed'] is False and result['changed_count'] == 0
    assert 'Exchange Recipient Administrator or Exchange Administrator' in result['msg']
    assert sum(1 for e in result['mailboxes'] if e['msg'].startswith('not sent: ')) == 59
    assert result['msg'].startswith('all 60 mailboxes failed: ')
    assert result['msg'].endswith('; and 50 more (see mailboxes)'), result['msg'][-300:]
    assert all(m365.cas_mailbox(u['userPrincipalName'])['ImapEnabled'] for u in boxes)
    reads = [r for r in m365.requests if r.get('cmdlet') == 'Get-CASMailbox']
    assert len(reads) == 3  # the three address filters; no read-back
    m365.clear_log()
    run = play([{'name': 'wild', 'exchangeonline.mail.mailbox_protocols': dict(
        m365_args(m365, app), mailboxes=['user*', boxes[0]['mail']], pop=False),
        'register': 'out', 'ignore_errors': True}])
    assert run.last['status'] == 'failed'
    assert 'mailboxes: user* holds a wildcard (*)' in run.last['result']['msg']
    assert not [r for r in m365.requests if r['resource'] == 'exo']
