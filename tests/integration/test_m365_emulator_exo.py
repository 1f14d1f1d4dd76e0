"""The emulator's Exchange Online admin endpoint (InvokeCommand), driven by real msal and
requests."""

import concurrent.futures
import time

import jwt
import pytest

from tests.lab.m365.client import app_token, session_for

EXO_SCOPE = ['https://outlook.office365.com/.default']
GRAPH_SCOPE = ['https://graph.microsoft.com/.default']
ODATA_ERROR = 'Microsoft.Exchange.Admin.OData.Core.ODataServiceException'
ANCHOR = 'APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@%s'


def token(emu, roles=('Exchange.ManageAsApp',), scope=None):
    return app_token(emu, roles, scope or EXO_SCOPE)


class Exo:
    """InvokeCommand the way the ExchangeOnlineManagement module sends it."""

    def __init__(self, emu, access_token=None, anchor=True, page_size=None):
        self.emu = emu
        self.session = session_for(emu)
        self.session.headers['Authorization'] = 'Bearer ' + (access_token or token(emu))
        if anchor:
            self.session.headers['X-AnchorMailbox'] = ANCHOR % emu.tenant_id
        if page_size:
            self.session.headers['Prefer'] = 'odata.maxpagesize=%d' % page_size
        self.url = '%s/adminapi/beta/%s/InvokeCommand' % (emu.url, emu.tenant_id)

    def post(self, cmdlet, url=None, **params):
        return self.session.post(url or self.url, timeout=10, json={
            'CmdletInput': {'CmdletName': cmdlet, 'Parameters': params}})

    def call(self, cmdlet, **params):
        """(objects, pages, warnings) after following @odata.nextLink."""
        items, pages, warnings, url = [], 0, [], None
        while True:
            r = self.post(cmdlet, url, **params)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body['@odata.context'].endswith(
                '/$metadata#Collection(Exchange.GenericHashTable)')
            assert body['adminapi.warnings@odata.type'] == '#Collection(String)'
            items.extend(body['value'])
            warnings.extend(body['@adminapi.warnings'])
            pages += 1
            url = body.get('@odata.nextLink')
            if not url:
                return items, pages, warnings


def cmdlet_error(r, status):
    """The adminapi cmdlet error: generic error.message, the text in details / innererror."""
    assert r.status_code == status, r.text
    err = r.json()['error']
    assert err['innererror']['type'] == 'Microsoft.Exchange.Admin.OData.Core.ODataServiceException'
    return err


def test_token_audience_and_role_via_msal(emu):
    claims = jwt.decode(token(emu), options={'verify_signature': False})
    assert claims['aud'] == 'https://outlook.office365.com'
    assert 'Exchange.ManageAsApp' in claims['roles']
    # The emulator-URL form (what the collection asks for when exo_endpoint is the lab) works.
    own = token(emu, scope=[emu.url + '/.default'])
    assert jwt.decode(own, options={'verify_signature': False})['aud'] == emu.url
    items, dummy, dummy = Exo(emu, own).call('Get-TransportConfig')
    assert items[0]['SmtpClientAuthenticationDisabled'] is True


def test_get_casmailbox_all_pages_and_skips_users_without_mailbox(emu):
    for i in range(2500):
        emu.add_user('m%04d@%s' % (i, emu.tenant_domain))
    emu.add_user('nomailbox@' + emu.tenant_domain, mailbox=False)
    exo = Exo(emu, page_size=1000)
    emu.clear_log()
    started = time.monotonic()
    items, pages, warnings = exo.call('Get-CASMailbox', ResultSize='Unlimited')
    assert time.monotonic() - started < 3
    assert (len(items), pages, warnings) == (2500, 3, [])
    assert len({i['ExternalDirectoryObjectId'] for i in items}) == 2500
    assert 'nomailbox@' + emu.tenant_domain not in {i['PrimarySmtpAddress'] for i in items}
    first = items[0]
    for name in ('Identity', 'Name', 'PrimarySmtpAddress', 'ExternalDirectoryObjectId', 'Guid',
                 'PopEnabled', 'ImapEnabled', 'SmtpClientAuthenticationDisabled', 'EwsEnabled',
                 'ActiveSyncEnabled', 'OWAEnabled', 'MAPIEnabled'):
        assert name in first, name
    assert (first['PopEnabled'], first['ImapEnabled'],
            first['SmtpClientAuthenticationDisabled']) == (True, True, None)
    assert first['Guid@odata.type'] == '#Guid'
    log = [e for e in emu.requests if e['resource'] == 'exo']
    assert [(e['cmdlet'], e['status']) for e in log] == [('Get-CASMailbox', 200)] * 3
    # Without -ResultSize: the first 1000 and Exchange's warning; a number: that many.
    items, pages, warnings = exo.call('Get-CASMailbox')
    assert len(items) == 1000 and pages == 1 and 'first 1000 items' in warnings[0]
    items, pages, warnings = Exo(emu, page_size=10).call('get-casmailbox', ResultSize=25)
    assert (len(items), pages) == (25, 3) and 'more results available' in warnings[0]
    # The default page is 1000 and a larger Prefer is capped at 1000.
    r = Exo(emu, page_size=5000).post('Get-CASMailbox', ResultSize='Unlimited')
    assert len(r.json()['value']) == 1000 and '@odata.nextLink' in r.json()


def test_5000_mailboxes_page_fast(emu):
    emu.generate_users(5000)
    exo = Exo(emu, page_size=1000)
    emu.clear_log()
    started = time.monotonic()
    items, pages, dummy = exo.call('Get-CASMailbox', ResultSize='Unlimited')
    elapsed = time.monotonic() - started
    assert len(items) == sum(1 for u in emu.users if u['_mailbox']) and pages == 5
    assert elapsed < 2, elapsed  # server side is well under 1 s; this includes TLS and JSON


def test_set_get_round_trip_with_null(emu):
    upn = 'ann.lee@' + emu.tenant_domain
    emu.add_user(upn)
    exo = Exo(emu)
    r = exo.post('Set-CASMailbox', Identity=upn, PopEnabled=False, ImapEnabled=False,
                 SmtpClientAuthenticationDisabled=False)
    assert r.status_code == 200 and r.json()['value'] == [], r.text
    stored = emu.cas_mailbox(upn)
    assert (stored['PopEnabled'], stored['ImapEnabled'],
            stored['SmtpClientAuthenticationDisabled']) == (False, False, False)
    # Identity by alias and by primary SMTP address; null puts SMTP AUTH back on the tenant.
    items, dummy, dummy = exo.call('Get-CASMailbox', Identity='ann.lee')
    assert (items[0]['PopEnabled'], items[0]['SmtpClientAuthenticationDisabled']) == (False,
                                                                                      False)
    r = exo.post('Set-CASMailbox', Identity=upn, SmtpClientAuthenticationDisabled=None)
    assert r.status_code == 200, r.text
    items, dummy, dummy = exo.call('Get-CASMailbox', Identity=upn)
    assert items[0]['SmtpClientAuthenticationDisabled'] is None
    assert emu.cas_mailbox(upn)['SmtpClientAuthenticationDisabled'] is None
    # Setting what is already there: success with Exchange's "no settings modified" warning.
    r = exo.post('Set-CASMailbox', Identity=upn, PopEnabled=False)
    assert 'no settings' in r.json()['@adminapi.warnings'][0]
    # null is only valid for the nullable switch.
    err = cmdlet_error(exo.post('Set-CASMailbox', Identity=upn, PopEnabled=None), 400)
    assert 'ParameterTransformationException' in err['details'][0]['message']
    err = cmdlet_error(exo.post('Set-CASMailbox', Identity=upn, Bogus=True), 400)
    assert err['innererror']['internalexception']['message'].endswith('Bogus')
    # Get-Mailbox shares the users with Graph.
    items, dummy, dummy = exo.call('Get-Mailbox', Identity=upn)
    mbx = items[0]
    assert mbx['UserPrincipalName'] == upn and mbx['RecipientTypeDetails'] == 'UserMailbox'
    assert mbx['EmailAddresses'] == ['SMTP:' + upn,
                                     'smtp:ann.lee@contosolab.mail.onmicrosoft.com']
    assert mbx['ExternalDirectoryObjectId'] == emu.find_user(upn)['id']
    log = [(e['cmdlet'], e['identity']) for e in emu.requests if e['resource'] == 'exo']
    assert ('Set-CASMailbox', upn) in log and ('Get-CASMailbox', 'ann.lee') in log


def test_transport_config(emu):
    exo = Exo(emu)
    items, dummy, dummy = exo.call('Get-TransportConfig')
    assert items[0]['SmtpClientAuthenticationDisabled'] is True
    assert exo.post('Set-TransportConfig',
                    SmtpClientAuthenticationDisabled=False).status_code == 200
    assert emu.transport_config['SmtpClientAuthenticationDisabled'] is False
    items, dummy, dummy = exo.call('Get-TransportConfig')
    assert items[0]['SmtpClientAuthenticationDisabled'] is False


def test_auth_role_and_anchor_errors(emu):
    emu.add_user('bob@' + emu.tenant_domain)
    r = Exo(emu, token(emu, roles=('User.Read.All',))).post('Get-CASMailbox')
    assert r.status_code == 403 and r.json()['error']['code'] == 'Forbidden'
    assert 'Exchange.ManageAsApp' in r.json()['error']['message']
    r = Exo(emu, token(emu, scope=GRAPH_SCOPE)).post('Get-CASMailbox')
    assert r.status_code == 401 and r.json()['error']['code'] == 'InvalidAudienceForResource'
    assert 'error="invalid_token"' in r.headers['WWW-Authenticate']
    exo = Exo(emu)
    emu.expire_tokens()
    assert exo.post('Get-TransportConfig').status_code == 401
    r = Exo(emu, anchor=False).post('Get-CASMailbox')
    assert r.status_code == 400 and r.json()['error']['code'] == 'ErrorIncorrectRoutingHint'
    exo = Exo(emu)
    exo.session.headers['X-AnchorMailbox'] = ANCHOR % 'other.onmicrosoft.com'
    assert exo.post('Get-CASMailbox').status_code == 400
    exo.session.headers['X-AnchorMailbox'] = 'UPN:bob@' + emu.tenant_domain
    assert exo.post('Get-TransportConfig').status_code == 200


def test_unknown_identity_and_cmdlet(emu):
    emu.add_user('nomailbox@' + emu.tenant_domain, mailbox=False)
    exo = Exo(emu)
    emu.clear_log()
    for cmdlet in ('Get-CASMailbox', 'Set-CASMailbox', 'Get-Mailbox'):
        for who in ('ghost@example.com', 'nomailbox@' + emu.tenant_domain):
            err = cmdlet_error(exo.post(cmdlet, Identity=who, **(
                {'PopEnabled': False} if cmdlet.startswith('Set') else {})), 404)
            assert (err['code'], err['message']) == ('NotFound', 'Error executing cmdlet')
            text = err['details'][0]['message']
            assert 'ManagementObjectNotFoundException' in text
            assert "The operation couldn't be performed because object '%s' couldn't be found " \
                   "on '" % who in text
    assert all(e['status'] == 404 for e in emu.requests)
    err = cmdlet_error(exo.post('Set-CASMailbox', PopEnabled=False), 400)
    assert 'mandatory parameters: Identity' in err['details'][0]['message']
    err = cmdlet_error(exo.post('Get-Nothing'), 400)
    assert 'CommandNotFoundException' in err['details'][0]['message']


def test_injected_429_and_log(emu):
    upn = 'carl@' + emu.tenant_domain
    emu.add_user(upn)
    exo = Exo(emu)
    emu.clear_log()
    emu.inject('POST', r'/adminapi/beta/[^/]+/InvokeCommand$', 429, count=1, retry_after=2)
    r = exo.post('Get-CASMailbox', Identity=upn)
    assert r.status_code == 429 and r.headers['Retry-After'] == '2'
    assert r.json()['error']['code'] == 'TooManyRequests'
    assert exo.post('Get-CASMailbox', Identity=upn).status_code == 200
    log = [(e['resource'], e['cmdlet'], e['identity'], e['status']) for e in emu.requests]
    assert log == [('exo', 'Get-CASMailbox', upn, 429), ('exo', 'Get-CASMailbox', upn, 200)]
    assert not any(e.get('cmdlet') == 'Set-CASMailbox' for e in emu.requests)
    assert emu.cas_mailbox('nobody@example.com') is None


def test_follow_up_pages_need_the_tenant_guid_and_expire_after_30_minutes(emu):
    """Microsoft Q&A 1023619: a follow-up page asked with a domain instead of the tenant GUID
    (URL or anchor), or after the cursor's 30 minutes, answers 400 "Expired or Invalid
    pagination request"; the first page works with the domain."""
    emu.generate_users(5, domain=emu.tenant_domain, licensed_ratio=1, mailbox_ratio=1)
    exo = Exo(emu, page_size=2)
    expired = 'Expired or Invalid pagination request. Default Expiry time is 00:30:00'

    def refused(r):
        err = r.json()['error']
        assert r.status_code == 400 and err['code'] == 'BadRequest', r.text
        assert err['message'] == 'Invalid Operation'
        assert err['innererror']['internalexception'] == {
            'message': expired, 'type': 'System.Exception', 'stacktrace': ''}
        return True

    for segment, anchor in ((emu.tenant_domain, emu.tenant_id), (emu.tenant_id, emu.tenant_domain)):
        exo.session.headers['X-AnchorMailbox'] = ANCHOR % anchor
        first = exo.post('Get-CASMailbox', url='%s/adminapi/beta/%s/InvokeCommand'
                         % (emu.url, segment))
        assert first.status_code == 200 and len(first.json()['value']) == 2
        link = first.json()['@odata.nextLink'].replace('/%s/' % emu.tenant_domain,
                                                       '/%s/' % segment)
        assert refused(exo.post('Get-CASMailbox', url=link))
    exo.session.headers['X-AnchorMailbox'] = ANCHOR % emu.tenant_id
    first = exo.post('Get-CASMailbox').json()
    second = exo.post('Get-CASMailbox', url=first['@odata.nextLink'])
    assert second.status_code == 200 and len(second.json()['value']) == 2
    emu.clock_offset = 1801  # the cursor of the first page is older than 30 minutes now
    assert refused(exo.post('Get-CASMailbox', url=second.json()['@odata.nextLink']))


@pytest.mark.parametrize('role, allowed, refused', [
    ('Global Reader', ('Get-CASMailbox', 'Get-TransportConfig'), ('Set-CASMailbox',)),
    ('Exchange Recipient Administrator', ('Get-CASMailbox', 'Set-CASMailbox'),
     ('Set-TransportConfig',)),
    ('none', (), ('Get-CASMailbox', 'Get-Mailbox', 'Set-CASMailbox')),
    ('Exchange Administrator', ('Get-CASMailbox', 'Set-CASMailbox', 'Set-TransportConfig'), ()),
])
def test_exchange_role_of_the_service_principal(emu, role, allowed, refused):
    """A cmdlet the app's Exchange role does not hold: 401 with the body of
    office-docs-powershell#7970 and no invalid_token challenge."""
    upn = 'dana@' + emu.tenant_domain
    emu.add_user(upn)
    access_token = token(emu)
    emu.set_exchange_role(jwt.decode(access_token, options={'verify_signature': False})['appid'],
                          role)
    exo = Exo(emu, access_token)
    params = {'Get-CASMailbox': {'Identity': upn}, 'Get-Mailbox': {'Identity': upn},
              'Get-TransportConfig': {}, 'Set-CASMailbox': {'Identity': upn, 'PopEnabled': True},
              'Set-TransportConfig': {'SmtpClientAuthenticationDisabled': True}}
    for cmdlet in allowed:
        assert exo.post(cmdlet, **params[cmdlet]).status_code == 200, cmdlet
    for cmdlet in refused:
        r = exo.post(cmdlet, **params[cmdlet])
        message = 'User is not allowed to call %s' % cmdlet
        assert r.status_code == 401 and 'WWW-Authenticate' not in r.headers
        assert r.json() == {'error': {'code': 'Unauthorized', 'message': message, 'innererror': {
            'message': message, 'type': ODATA_ERROR}}}


def test_dkim_new_disabled_both_target_forms_and_refused_enable(emu):
    """New-DkimSigningConfig -Enabled $false gives Status CnameMissing and the CNAME targets:
    the v1 form for a domain added since May 2025, the onmicrosoft.com form for an older one;
    Set- -Enabled $true without the CNAMEs in DNS is refused with Exchange's text."""
    emu.add_domain('contoso.com', verified=True)
    emu.add_domain('old.example', verified=True, added='2024-01-01')
    exo = Exo(emu)
    prefix = emu.tenant_domain.split('.')[0]
    items, dummy, dummy = exo.call('New-DkimSigningConfig', DomainName='contoso.com',
                                   Enabled=False, KeySize=2048)
    new = items[0]
    assert (new['Enabled'], new['Status'], new['Selector1KeySize']) == (False, 'CnameMissing',
                                                                        2048)
    assert new['Selector1CNAME'] in (
        'selector1-contoso-com._domainkey.%s.%s-v1.dkim.mail.microsoft' % (prefix, c)
        for c in 'nr')
    assert new['Selector2CNAME'] == new['Selector1CNAME'].replace('selector1-', 'selector2-')
    items, dummy, dummy = exo.call('New-DkimSigningConfig', DomainName='old.example',
                                   Enabled=False)
    assert items[0]['Selector1CNAME'] == (
        'selector1-old-example._domainkey.' + emu.tenant_domain)
    r = exo.post('Set-DkimSigningConfig', Identity='contoso.com', Enabled=True)
    err = cmdlet_error(r, 400)
    text = str(err)
    assert 'CNAME record does not exist for this config.' in text
    assert 'Points To Address : %s' % new['Selector1CNAME'] in text
    assert 'Points To Address : %s' % new['Selector2CNAME'] in text
    items, dummy, dummy = exo.call('Get-DkimSigningConfig', Identity='contoso.com')
    assert (items[0]['Enabled'], items[0]['Status']) == (False, 'CnameMissing')
    assert 'already exists' in str(cmdlet_error(
        exo.post('New-DkimSigningConfig', DomainName='contoso.com', Enabled=False), 400))
    assert 'not an accepted domain' in str(cmdlet_error(
        exo.post('New-DkimSigningConfig', DomainName='nope.example', Enabled=False), 400))
    items, dummy, dummy = exo.call('Get-DkimSigningConfig')
    assert sorted(i['Domain'] for i in items) == ['contoso.com', 'old.example']


def test_dkim_global_reader_reads_but_cannot_set(emu):
    emu.add_domain('contoso.com', verified=True)
    Exo(emu).call('New-DkimSigningConfig', DomainName='contoso.com', Enabled=False)
    access_token = token(emu)
    emu.set_exchange_role(jwt.decode(access_token, options={'verify_signature': False})['appid'],
                          'Global Reader')
    exo = Exo(emu, access_token)
    assert exo.post('Get-DkimSigningConfig', Identity='contoso.com').status_code == 200
    r = exo.post('Set-DkimSigningConfig', Identity='contoso.com', Enabled=False)
    assert r.status_code == 401
    assert 'User is not allowed to call Set-DkimSigningConfig' in r.text


def test_filters_as_exchange_documents_them(emu):
    """The OPATH subset of filter-properties.md / recipient-filters.md: Name with a trailing
    wildcard, -not and -or, EmailAddresses with or without its prefix, a quote doubled; refused:
    a property Get-CASMailbox cannot filter (Alias, ExternalDirectoryObjectId), a wildcard that
    is not a suffix, -lt on a string, Filter with Identity."""
    emu.add_user("o'brien@contoso.test")
    emu.add_user('olga@contoso.test', named_by_id=True)
    emu.generate_users(30, named_by_id=False)
    exo = Exo(emu)

    def names(objects):
        return sorted(o['Name'] for o in objects)
    assert len(exo.call('Get-CASMailbox', Filter="Name -like 'user0001*'")[0]) == 10
    rest, dummy, dummy2 = exo.call('Get-CASMailbox', Filter="-not (Name -like 'u*' -or "
                                                            "Name -like 'o*')")
    olga = emu.find_user('olga@contoso.test')
    assert names(rest) == [olga['id']]  # named by its directory id
    found = exo.call('Get-CASMailbox', Filter="EmailAddresses -eq 'o''brien@contoso.test' -or "
                                              "EmailAddresses -eq 'smtp:olga@contoso.test'")[0]
    assert sorted(o['PrimarySmtpAddress'] for o in found) == [
        "o'brien@contoso.test", 'olga@contoso.test']
    for text, words in (("Alias -eq 'olga'", "'Alias' is not a recognized filterable property"),
                        ("ExternalDirectoryObjectId -eq '%s'" % olga['id'],
                         "'ExternalDirectoryObjectId' is not a recognized filterable"),
                        ("Name -like '*ga'", 'supported only as a suffix'),
                        ("Name -lt 'm'", 'Invalid filter syntax'),
                        ("Name -like 'a*' -or", 'Invalid filter syntax')):
        r = exo.post('Get-CASMailbox', Filter=text)
        assert r.status_code == 400 and words in r.text, (text, r.text)
    # Get-Mailbox has ExternalDirectoryObjectId
    assert names(exo.call('Get-Mailbox', Filter="ExternalDirectoryObjectId -eq '%s'"
                          % olga['id'])[0]) == [olga['id']]
    assert exo.post('Get-CASMailbox', Identity='olga@contoso.test',
                    Filter="Name -like 'o*'").status_code == 400


def test_concurrency_limit_and_page_latency(emu):
    """More InvokeCommand requests at once than max_concurrent: the extra ones get 429 with
    Exchange's words; page_latency is per 1,000 objects of a page."""
    emu.generate_users(200)
    emu.exo.max_concurrent = 2
    emu.exo.page_latency = 1.0  # 190 mailboxes: about 0.19 s a page
    exo = Exo(emu)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda i: exo.post('Get-CASMailbox', ResultSize='Unlimited'),
                                range(6)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) >= 2 and 429 in statuses, statuses
    refused = [r for r in answers if r.status_code == 429][0]
    assert refused.json()['error']['message'].startswith(
        'You have reached the maximum number of concurrent requests per tenant.')
    assert emu.exo.peak_in_flight == 2 and emu.exo.peak_attempted > 2
    emu.exo.max_concurrent = None
    started = time.monotonic()
    exo.call('Get-CASMailbox', ResultSize='Unlimited')
    assert time.monotonic() - started >= 0.15


def test_subscribed_skus_and_assigned_plans(emu):
    """GET /subscribedSkus (Organization.Read.All) names the plans a user's assignedPlans hold;
    a disabled plan is Deleted there and Disabled in licenseDetails."""
    emu.add_user('e3@contoso.test', licensed='SPE_E3', disabled_plans=['EXCHANGE_S_ENTERPRISE'])
    graph = session_for(emu)
    graph.headers['Authorization'] = 'Bearer ' + app_token(emu, ('User.Read.All',),
                                                           GRAPH_SCOPE)
    r = graph.get(emu.url + '/v1.0/subscribedSkus', timeout=10)
    assert r.status_code == 403 and r.json()['error']['code'] == 'Authorization_RequestDenied'
    graph.headers['Authorization'] = 'Bearer ' + app_token(
        emu, ('User.Read.All', 'Organization.Read.All'), GRAPH_SCOPE)
    skus = dict((s['skuPartNumber'], s) for s in graph.get(
        emu.url + '/v1.0/subscribedSkus', timeout=10).json()['value'])
    assert skus['SPE_E3']['consumedUnits'] == 1 and skus['SPE_E3']['capabilityStatus'] == 'Enabled'
    user = graph.get(emu.url + '/v1.0/users/e3@contoso.test', timeout=10,
                     params={'$select': 'assignedLicenses,assignedPlans'}).json()
    plan_id = next(p['servicePlanId'] for p in skus['SPE_E3']['servicePlans']
                   if p['servicePlanName'] == 'EXCHANGE_S_ENTERPRISE')
    assert user['assignedLicenses'] == [{'disabledPlans': [plan_id],
                                         'skuId': skus['SPE_E3']['skuId']}]
    exchange = [p for p in user['assignedPlans'] if p['servicePlanId'] == plan_id]
    assert exchange[0]['capabilityStatus'] == 'Deleted' and exchange[0]['service'] == 'exchange'
    details = graph.get(emu.url + '/v1.0/users/e3@contoso.test/licenseDetails',
                        timeout=10).json()['value'][0]['servicePlans']
    assert [p['provisioningStatus'] for p in details
            if p['servicePlanId'] == plan_id] == ['Disabled']
    default = graph.get(emu.url + '/v1.0/users/e3@contoso.test', timeout=10).json()
    assert 'assignedPlans' not in default  # returned only on $select
