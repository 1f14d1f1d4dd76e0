"""The accepted_domain module against the emulator's Exchange admin endpoint (real msal and
requests): the DomainType a user sees in Get-AcceptedDomain, and nothing sent in check mode."""

from tests.integration.conftest import ZONE, m365_args

ROLES = ('Exchange.ManageAsApp',)
SECRET = 'accepted-domain-secret'


def accepted(m365, app, name='accepted_domain', **args):
    args = dict(m365_args(m365, app), **dict({'domain': ZONE}, **args))
    return {'name': name, 'exchangeonline.mail.accepted_domain': args,
            'register': 'out', 'ignore_errors': True}


def sets(m365):
    return [r for r in m365.requests if r.get('cmdlet') == 'Set-AcceptedDomain']


def domain_type(m365):
    return m365.exo.domain_types.get(ZONE, 'Authoritative')


def test_internal_relay_and_back_check_mode_diff_idempotent(emu, play):
    emu.add_domain(ZONE, verified=True, services=['Email'])
    app = emu.add_app(secret=SECRET, roles=ROLES)
    read = play([accepted(emu, app)]).last['result']
    assert read['changed'] is False and read['domain_type'] == 'authoritative'
    assert read['exchange_domain_type'] == 'Authoritative' and read['initial'] is False

    run = play([accepted(emu, app, domain_type='internal_relay')], check=True, diff=True)
    result = run.last['result']
    assert result['changed'] is True and result['domain_type'] == 'internal_relay'
    assert '-domain_type: authoritative' in run.stdout and '+domain_type: internal_relay' in \
        run.stdout
    assert sets(emu) == [] and domain_type(emu) == 'Authoritative'

    run = play([accepted(emu, app, domain_type='internal_relay')])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['changed'] is True and result['after']['exchange_domain_type'] == 'InternalRelay'
    assert domain_type(emu) == 'InternalRelay'
    assert sets(emu)[-1]['parameters'] == {'Identity': ZONE, 'DomainType': 'InternalRelay'}

    again = play([accepted(emu, app, domain_type='internal_relay')]).last['result']
    assert again['changed'] is False and len(sets(emu)) == 1

    back = play([accepted(emu, app, domain_type='authoritative')]).last['result']
    assert back['changed'] is True and domain_type(emu) == 'Authoritative'


def test_a_domain_that_is_not_accepted_and_a_lost_answer(emu, play):
    app = emu.add_app(secret=SECRET, roles=ROLES)
    run = play([accepted(emu, app, domain_type='internal_relay')])
    result = run.last['result']
    assert run.last['status'] == 'failed' and result['phase'] == 'Get-AcceptedDomain'
    assert '%s is not an accepted domain of the tenant' % ZONE in result['msg']
    assert 'Nothing was changed' in result['msg']

    emu.add_domain(ZONE, verified=True, services=['Email'])
    emu.inject('POST', r'/InvokeCommand$', lose_answer=True, count=50,
               cmdlet='Set-AcceptedDomain')
    run = play([accepted(emu, app, domain_type='internal_relay', timeout=1.0)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['domain_type'] == 'internal_relay'
    assert any('read back afterwards the accepted domain is as asked' in w
               for w in result.get('warnings', []))


def test_the_initial_domain_and_a_reader_app_are_refused(emu, play):
    app = emu.add_app(secret=SECRET, roles=ROLES)
    initial = emu.tenant_domain
    run = play([accepted(emu, app, domain=initial, domain_type='internal_relay')])
    result = run.last['result']
    assert run.last['status'] == 'failed' and result['phase'] == 'plan'
    assert "%s is the tenant's initial domain: it stays authoritative" % initial in result['msg']
    assert sets(emu) == []
    # An app that only reads: Exchange's RBAC refusal names the role it needs.
    emu.add_domain(ZONE, verified=True, services=['Email'])
    reader = emu.add_app(secret=SECRET + '2', roles=ROLES, exchange_role='Global Reader')
    assert play([accepted(emu, reader)]).last['status'] == 'ok'
    run = play([accepted(emu, reader, domain_type='internal_relay')])
    result = run.last['result']
    assert result['phase'] == 'Set-AcceptedDomain'
    assert 'User is not allowed to call Set-AcceptedDomain' in result['msg']
    assert 'Exchange Administrator' in result['msg']
    assert emu.exo.domain_types.get(ZONE, 'Authoritative') == 'Authoritative'
