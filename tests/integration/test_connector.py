"""The connector module against the emulator's Exchange admin endpoint (real msal and requests):
the connectors a user sees in Get-*Connector, only the given properties sent, nothing sent in
check mode."""

from tests.integration.conftest import m365_args

ROLES = ('Exchange.ManageAsApp',)
SECRET = 'connector-secret'
OUTBOUND = {'direction': 'outbound', 'name': 'To the old server',
            'connector_type': 'on_premises', 'smart_hosts': ['Mail.Contoso.test.'],
            'recipient_domains': ['contoso.test'], 'tls_settings': 'domain_validation',
            'tls_domain': 'mail.contoso.test'}
INBOUND = {'direction': 'inbound', 'name': 'From the old server',
           'connector_type': 'on_premises', 'sender_ip_addresses': ['192.0.2.25'],
           'ef_skip_ips': ['192.0.2.25']}


def connector(m365, app, args, **more):
    return {'name': 'connector', 'exchangeonline.mail.connector':
            dict(m365_args(m365, app), **dict(args, **more)),
            'register': 'out', 'ignore_errors': True}


def changing(m365):
    return [(r['cmdlet'], r['parameters']) for r in m365.requests
            if str(r.get('cmdlet', '')).split('-', maxsplit=1)[0] in ('New', 'Set', 'Remove')]


def stored(m365, direction, name):
    return m365.exo.connectors[direction].get(name.lower())


def test_outbound_created_changed_removed_check_mode_diff_idempotent(emu, play):
    app = emu.add_app(secret=SECRET, roles=ROLES)
    run = play([connector(emu, app, OUTBOUND)], check=True, diff=True)
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['changed'] is True and result['before'] is None and result['exists'] is True
    assert '+smart_hosts: [mail.contoso.test]' in run.stdout, run.stdout
    assert changing(emu) == [] and stored(emu, 'outbound', OUTBOUND['name']) is None

    result = play([connector(emu, app, OUTBOUND)]).last['result']
    assert result['changed'] is True, result.get('msg')
    assert changing(emu) == [('New-OutboundConnector', {
        'Name': 'To the old server', 'ConnectorType': 'OnPremises',
        'SmartHosts': ['mail.contoso.test'], 'UseMXRecord': False,
        'RecipientDomains': ['contoso.test'], 'TlsSettings': 'DomainValidation',
        'TlsDomain': 'mail.contoso.test'})]
    obj = stored(emu, 'outbound', OUTBOUND['name'])
    assert obj['SmartHosts'] == ['mail.contoso.test'] and obj['UseMXRecord'] is False
    assert obj['TlsSettings'] == 'DomainValidation' and obj['Enabled'] is True
    assert result['connector']['use_mx_record'] is False
    assert result['sent'] == ['ConnectorType', 'RecipientDomains', 'SmartHosts', 'TlsDomain',
                              'TlsSettings', 'UseMXRecord']

    again = play([connector(emu, app, OUTBOUND)]).last['result']
    assert again['changed'] is False and len(changing(emu)) == 1

    # Only what the task gives is compared: a comment set by hand stays.
    obj['Comment'] = 'set in the admin centre'
    run = play([connector(emu, app, dict(OUTBOUND, smart_hosts=['192.0.2.25']))], diff=True)
    result = run.last['result']
    assert result['changed'] is True and changing(emu)[-1] == (
        'Set-OutboundConnector', {'Identity': 'To the old server', 'SmartHosts': ['192.0.2.25']})
    assert '-smart_hosts: [mail.contoso.test]' in run.stdout
    assert '+smart_hosts: [192.0.2.25]' in run.stdout
    assert stored(emu, 'outbound', OUTBOUND['name'])['Comment'] == 'set in the admin centre'

    gone = {'direction': 'outbound', 'name': 'to the OLD server', 'state': 'absent'}
    result = play([connector(emu, app, gone)], check=True).last['result']
    assert result['changed'] is True and result['exists'] is False
    assert stored(emu, 'outbound', OUTBOUND['name']) is not None
    result = play([connector(emu, app, gone)]).last['result']
    assert result['changed'] is True and stored(emu, 'outbound', OUTBOUND['name']) is None
    assert changing(emu)[-1] == ('Remove-OutboundConnector',
                                 {'Identity': 'to the OLD server', 'Confirm': False})
    assert play([connector(emu, app, gone)]).last['result']['changed'] is False


def test_inbound_from_the_old_server_with_enhanced_filtering(emu, play):
    app = emu.add_app(secret=SECRET, roles=ROLES)
    result = play([connector(emu, app, INBOUND)]).last['result']
    assert result['changed'] is True, result.get('msg')
    # New-InboundConnector requires SenderDomains: every domain when the task gives none
    assert changing(emu)[-1][1]['SenderDomains'] == ['*']
    obj = stored(emu, 'inbound', INBOUND['name'])
    assert obj['SenderDomains'] == ['smtp:*;1'] and obj['SenderIPAddresses'] == ['192.0.2.25']
    assert obj['EFSkipIPs'] == ['192.0.2.25'] and obj['ConnectorType'] == 'OnPremises'
    assert result['connector']['sender_domains'] == ['*']
    # read back as "smtp:*;1", the same as '*': nothing to change
    again = play([connector(emu, app, INBOUND, sender_domains=['*'])]).last['result']
    assert again['changed'] is False and len(changing(emu)) == 1

    result = play([connector(emu, app, INBOUND, ef_skip_ips=[], ef_skip_last_ip=True,
                             sender_ip_addresses=['192.0.2.0/24', '192.0.2.25'])]).last['result']
    assert result['changed'] is True
    assert changing(emu)[-1] == ('Set-InboundConnector', {
        'Identity': 'From the old server', 'EFSkipIPs': [], 'EFSkipLastIP': True,
        'SenderIPAddresses': ['192.0.2.0/24', '192.0.2.25']})


def test_bad_input_is_refused_before_any_change(emu, play):
    app = emu.add_app(secret=SECRET, roles=ROLES)
    cases = [
        (dict(INBOUND, smart_hosts=['mail.contoso.test']), 'input',
         'smart_hosts: only for an outbound connector; this task manages an inbound connector'),
        (dict(INBOUND, sender_ip_addresses=['2001:db8::25']), 'input',
         "sender_ip_addresses: '2001:db8::25' is not an IPv4 address"),
        (dict(INBOUND, sender_ip_addresses=['192.0.0.0/16']), 'input',
         'Exchange Online takes /24 to /32 here'),
        (dict(INBOUND, ef_skip_last_ip=True), 'plan',
         'ef_skip_ips names the addresses to skip instead'),
        (dict(INBOUND, sender_ip_addresses=[], ef_skip_ips=[]), 'plan',
         'an on_premises inbound connector recognises your server by sender_ip_addresses or '
         'tls_sender_certificate_name'),
        (dict(OUTBOUND, smart_hosts=['mail.contoso.test:2525']), 'input', 'has a port'),
        (dict(OUTBOUND, tls_domain=None), 'plan', 'tls_settings domain_validation needs '
                                                  'tls_domain'),
        (dict(OUTBOUND, smart_hosts=None), 'plan',
         'smart_hosts is needed to create an outbound connector'),
        (dict(OUTBOUND, recipient_domains=['contoso.*.test']), 'input',
         "recipient_domains: 'contoso.*.test' is not a domain"),
        ({'direction': 'outbound', 'name': 'x', 'state': 'absent', 'enabled': False}, 'input',
         'state absent removes the connector: give no properties (enabled)'),
    ]
    run = play([connector(emu, app, args) for args, _p, _m in cases])
    results = [r for r in run.results if r['task'] == 'connector']
    assert len(results) == len(cases)
    for (args, phase, text), task_result in zip(cases, results):
        result = task_result['result']
        assert task_result['status'] == 'failed' and result['phase'] == phase, (args, result)
        assert text in result['msg'], (text, result['msg'])
        assert 'Traceback' not in result['msg']
    assert changing(emu) == []


def test_a_test_mode_connector_a_lost_answer_and_a_reader_app(emu, play):
    app = emu.add_app(secret=SECRET, roles=ROLES)
    # A connector in test mode is visible only with IncludeTestModeConnectors: found, changed,
    # never created twice.
    emu.exo.new_connector('outbound', params({
        'Name': OUTBOUND['name'], 'SmartHosts': ['mail.contoso.test'], 'UseMXRecord': False,
        'TestMode': True}))
    result = play([connector(emu, app, OUTBOUND)]).last['result']
    assert result['changed'] is True and result['before']['test_mode'] is True, result
    assert [c for c, _p in changing(emu)] == ['Set-OutboundConnector']
    assert len(emu.exo.connectors['outbound']) == 1

    # New-InboundConnector carried out, its answer lost: read back, a warning, no second New.
    emu.inject('POST', r'/InvokeCommand$', lose_answer=True, count=50,
               cmdlet='New-InboundConnector')
    run = play([connector(emu, app, INBOUND, timeout=1.0)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert any('read back afterwards the connector is as asked' in w
               for w in result.get('warnings', []))
    assert len(emu.exo.connectors['inbound']) == 1

    reader = emu.add_app(secret=SECRET + '2', roles=ROLES, exchange_role='Global Reader')
    result = play([connector(emu, reader, INBOUND)]).last['result']
    assert result['changed'] is False
    run = play([connector(emu, reader, INBOUND, enabled=False)])
    result = run.last['result']
    assert result['phase'] == 'Set-InboundConnector'
    assert 'User is not allowed to call Set-InboundConnector' in result['msg']
    assert 'Exchange Administrator' in result['msg']
    assert stored(emu, 'inbound', INBOUND['name'])['Enabled'] is True


def params(raw):
    from tests.lab.m365.exo import Params
    return Params(raw)
