"""The dkim module against the emulator's Exchange admin endpoint (real msal and requests) and a
real BIND 9 that the emulator asks for the selector CNAMEs, as Exchange asks public DNS."""

from tests.integration.conftest import ZONE, dns_args, m365_args

ROLES = ('Exchange.ManageAsApp',)
SECRET = 'dkim-module-secret'
CHANGING = ('New-DkimSigningConfig', 'Set-DkimSigningConfig', 'Rotate-DkimSigningConfig')


def dkim(m365, app, name='dkim', **args):
    args = dict(m365_args(m365, app), domain=ZONE, **args)
    return {'name': name, 'exchangeonline.mail.dkim': args,
            'register': 'out', 'ignore_errors': True}


def changing(m365):
    return [r['cmdlet'] for r in m365.requests if r.get('cmdlet') in CHANGING]


def publish(bind, targets):
    """The CNAMEs into the lab BIND with mail_dns, as a user does."""
    return {'name': 'publish', 'exchangeonline.mail.mail_dns': dict(
        dns_args(bind), domain=ZONE, pattern='none', dkim=targets), 'register': 'pub'}


def test_enable_is_refused_naming_both_cnames_then_passes_once_they_are_served(bind, m365, play):
    m365.add_domain(ZONE, verified=True, services=['Email'])  # added today: the v1 targets
    app = m365.add_app(secret=SECRET, roles=ROLES)
    run = play([dkim(m365, app)])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['phase'] == 'enable'
    t1, t2 = result['selector1_cname'], result['selector2_cname']
    assert t1.startswith('selector1-contoso-test._domainkey.') and '-v1.dkim.mail.microsoft' in t1
    for line in ('selector1._domainkey.%s CNAME %s' % (ZONE, t1),
                 'selector2._domainkey.%s CNAME %s' % (ZONE, t2)):
        assert line in result['msg']
    assert 'Nothing else was changed' in result['msg']
    assert result['dkim'] == {'selector1': t1, 'selector2': t2}
    # created (disabled), the enable refused: the config is there, still off
    assert result['changed'] is True and result['enabled'] is False
    assert result['status'] == 'CnameMissing'
    assert changing(m365) == ['New-DkimSigningConfig', 'Set-DkimSigningConfig']

    run = play([publish(bind, result['dkim']), dkim(m365, app)])
    out = run.last['result']
    assert run.last['status'] == 'ok', out.get('msg')
    assert out['changed'] is True and out['actions'] == ['enable']
    assert out['enabled'] is True and out['status'] == 'Valid' and out['key_size'] == 2048

    m365.clear_log()
    run = play([dkim(m365, app)])
    assert run.last['result']['changed'] is False
    assert changing(m365) == []


def test_created_disabled_in_the_classic_form_check_mode_and_diff(bind, m365, play):
    m365.add_domain(ZONE, verified=True, services=['Email'], added='2024-01-01')
    app = m365.add_app(secret=SECRET, roles=ROLES)
    run = play([dkim(m365, app, enabled=False, key_size=1024)], check=True, diff=True)
    result = run.last['result']
    assert result['changed'] is True and result['actions'] == ['create disabled']
    assert result['before'] is None and result['dkim'] == {}
    assert changing(m365) == []

    run = play([dkim(m365, app, enabled=False, key_size=1024)], diff=True)
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['dkim']['selector1'] == ('selector1-contoso-test._domainkey.%s'
                                           % m365.tenant_domain)
    assert result['enabled'] is False and result['key_size'] == 1024
    assert '+selector1_cname: selector1-contoso-test._domainkey.' in run.stdout

    # check mode of the enable sends nothing and says what it would do
    m365.clear_log()
    run = play([publish(bind, result['dkim']), dkim(m365, app)], check=True)
    assert run.last['result']['actions'] == ['enable']
    assert changing(m365) == []


def test_state_absent_disables_and_rotate(bind, m365, play):
    m365.add_domain(ZONE, verified=True, services=['Email'])
    app = m365.add_app(secret=SECRET, roles=ROLES)
    created = play([dkim(m365, app, enabled=False)]).last['result']
    run = play([publish(bind, created['dkim']), dkim(m365, app, rotate=True)])
    out = run.last['result']
    assert run.last['status'] == 'ok', out.get('msg')
    assert out['actions'] == ['enable', 'rotate']
    assert out['after']['selector_after_rotate'] == 'selector2'
    run = play([dkim(m365, app, state='absent')])
    assert run.last['result']['actions'] == ['disable']
    assert run.last['result']['enabled'] is False
    again = play([dkim(m365, app, state='absent')])
    assert again.last['result']['changed'] is False


def test_a_global_reader_reads_but_may_not_enable(bind, m365, play):
    m365.add_domain(ZONE, verified=True, services=['Email'])
    reader = m365.add_app(secret=SECRET, roles=ROLES, exchange_role='Global Reader')
    run = play([dkim(m365, reader)], check=True)
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    run = play([dkim(m365, reader)])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['phase'] == 'New-DkimSigningConfig'
    assert 'User is not allowed to call New-DkimSigningConfig' in result['msg']
    assert 'Exchange Administrator' in result['msg']


def test_a_lost_answer_to_the_enable_is_read_back(bind, m365, play):
    m365.add_domain(ZONE, verified=True, services=['Email'])
    app = m365.add_app(secret=SECRET, roles=ROLES)
    created = play([dkim(m365, app, enabled=False)]).last['result']
    m365.inject('POST', r'/InvokeCommand$', lose_answer=True, count=50,
                cmdlet='Set-DkimSigningConfig')
    run = play([publish(bind, created['dkim']), dkim(m365, app, timeout=1.0)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['enabled'] is True and result['status'] == 'Valid'
    assert any('read back afterwards the signing config is as asked' in w
               for w in result.get('warnings', []))


def test_bad_input_is_a_clear_error(m365, play):
    app = m365.add_app(secret=SECRET, roles=ROLES)
    run = play([dkim(m365, app, key_size=4096),
                {'name': 'bad domain', 'exchangeonline.mail.dkim': dict(
                    m365_args(m365, app), domain='not a domain'), 'register': 'bad',
                 'ignore_errors': True}])
    size = run.task('dkim')['result']['msg']
    assert 'key_size' in size and '1024, 2048' in size
    bad = run.task('bad domain')['result']
    assert 'domain' in bad['msg'] and 'Traceback' not in bad['msg']
    assert m365.requests == [] or all(r.get('cmdlet') is None for r in m365.requests)
