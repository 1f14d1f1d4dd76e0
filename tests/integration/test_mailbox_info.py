"""mailbox_info with real msal and requests against the emulator's Graph and Exchange endpoints."""

import json
import re

import pytest

from tests.integration.conftest import m365_args

ROLES = ('User.Read.All', 'Exchange.ManageAsApp')


def info(m365, app, **args):
    return {'name': 'info', 'exchangeonline.mail.mailbox_info': dict(m365_args(m365, app), **args),
            'register': 'out', 'ignore_errors': True}


@pytest.fixture
def tenant(m365):
    d = m365.tenant_domain
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    m365.add_user('licensed@contoso.test', licensed=True, mailbox=True)
    m365.add_user('unlicensed@contoso.test', licensed=False, mailbox=False)
    m365.add_user('nomailbox@contoso.test', licensed=True, mailbox=False)
    m365.add_user('alias.only@contoso.test', mail='shared.name@contoso.test', licensed=True,
                  mailbox=True)
    # the UPN stays alias@tenant.onmicrosoft.com, the primary address is first.last@contoso.test
    m365.add_user('adelev@' + d, mail='adele.vance@contoso.test')
    m365.add_user('alexw@' + d, mail='alex.wilber@contoso.test')
    # licences whose only Exchange plan is kiosk for government; Exchange Foundation; an archive
    m365.add_user('kiosk.gov@contoso.test', licensed='M365_F1_GOV', mailbox=True)
    m365.add_user('foundation@contoso.test', licensed='POWER_BI_STANDARD', mailbox=False)
    m365.add_user('archive@contoso.test', licensed='EXCHANGEARCHIVE_ADDON', mailbox=False)
    return d


def by_upn(result):
    return dict((m['upn'], m) for m in result['mailboxes'])


def test_info_for_each_kind_of_user(m365, tenant, play):
    app = m365.add_app(secret='mailbox-info-secret', roles=ROLES)
    run = play([info(m365, app, mailboxes=['licensed@contoso.test', 'unlicensed@contoso.test',
                                           'nomailbox@contoso.test', 'ghost@contoso.test',
                                           'shared.name@contoso.test', 'adelev@' + tenant,
                                           'alex.wilber@contoso.test', 'kiosk.gov@contoso.test',
                                           'foundation@contoso.test', 'archive@contoso.test'])])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    boxes = by_upn(result)
    lic = boxes['licensed@contoso.test']
    assert lic['exists'] and lic['exchange_licensed'] and lic['has_mailbox']
    assert lic['routing_address'].endswith('.mail.onmicrosoft.com')
    assert lic['routing_address'] in lic['proxy_addresses']
    assert set(lic['protocols']) == {'pop', 'imap', 'smtp_auth', 'smtp_auth_source',
                                     'smtp_auth_setting'}
    un = boxes['unlicensed@contoso.test']
    assert un['exists'] and not un['exchange_licensed'] and not un['has_mailbox']
    assert 'protocols' not in un
    nm = boxes['nomailbox@contoso.test']
    assert nm['exchange_licensed'] and not nm['has_mailbox']
    assert boxes['ghost@contoso.test'] == {'upn': 'ghost@contoso.test', 'exists': False}
    # found by its mail address, reported by its UPN
    assert boxes['alias.only@contoso.test']['has_mailbox']
    # asked by UPN and by primary address: both matched to their Exchange mailbox
    for upn, mail in (('adelev@' + tenant, 'adele.vance@contoso.test'),
                      ('alexw@' + tenant, 'alex.wilber@contoso.test')):
        assert boxes[upn]['mail'] == mail and boxes[upn]['has_mailbox'], boxes[upn]
        assert boxes[upn]['protocols']['pop'] is True
    # EXCHANGE_S_DESKLESS_GOV gives a mailbox; EXCHANGE_S_FOUNDATION and the archive add-on do not
    assert [(boxes[u]['exchange_licensed'], boxes[u]['licenses']) for u in (
        'kiosk.gov@contoso.test', 'foundation@contoso.test', 'archive@contoso.test')] == [
        (True, ['M365_F1_GOV']), (False, ['POWER_BI_STANDARD']),
        (False, ['EXCHANGEARCHIVE_ADDON'])]
    assert result['count'] == 10


@pytest.mark.parametrize('mailbox, tenant_disabled, effective, source', [
    (None, True, False, 'tenant'), (None, False, True, 'tenant'),
    (False, True, True, 'mailbox'), (True, False, False, 'mailbox'),
    (False, False, True, 'mailbox'), (True, True, False, 'mailbox'),
])
def test_effective_smtp_auth(m365, tenant, play, mailbox, tenant_disabled, effective, source):
    app = m365.add_app(secret='mailbox-info-secret', roles=ROLES)
    m365.cas_mailbox('licensed@contoso.test')['SmtpClientAuthenticationDisabled'] = mailbox
    m365.transport_config['SmtpClientAuthenticationDisabled'] = tenant_disabled
    run = play([info(m365, app, mailboxes=['licensed@contoso.test'], include=['protocols'])])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    protocols = result['mailboxes'][0]['protocols']
    assert (protocols['smtp_auth'], protocols['smtp_auth_source']) == (effective, source)
    assert result['tenant'] == {'smtp_auth': not tenant_disabled}


def test_all_mailboxes_read_in_partitions_under_faults(m365, play):
    """5,000 users under 429, 500 and 503: every mailbox reported, each as the tenant has it;
    tenant_id is a verified domain (the Exchange pages go by the tenant GUID, or the emulator
    refuses them as Exchange does), the UPNs are user00001@<tenant>.onmicrosoft.com, the
    primary addresses first.last00001@contoso.test, and Get-CASMailbox carries no
    ExternalDirectoryObjectId: the mailboxes are matched by their SMTP addresses. Exchange is
    read in partitions by Name (the mailboxes are named by their directory ids); the app may not
    read /subscribedSkus, so the licences come per user, with a warning."""
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    m365.generate_users(5000, domain=m365.tenant_domain, mail_domain='contoso.test')
    m365.exo.cas_directory_id = False
    app = m365.add_app(secret='mailbox-info-secret', roles=ROLES)
    m365.inject('POST', r'/InvokeCommand$', 429, count=2, retry_after=1)
    m365.inject('POST', r'/InvokeCommand$', 500, count=1)
    m365.inject('GET', r'/v1\.0/users$', 503, count=1, retry_after=1)
    m365.inject('GET', r'/licenseDetails$', 429, count=5, retry_after=1)  # inside $batch
    run = play([info(m365, app, all=True, tenant_id='contoso.test', detail='full')])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['count'] == len(result['mailboxes']) >= 5000
    for entry in result['mailboxes']:
        cas = m365.cas_mailbox(entry['upn'])
        assert entry['has_mailbox'] is (cas is not None), entry['upn']
        if cas is not None:
            assert entry['protocols']['pop'] is cas['PopEnabled']
            assert entry['routing_address'].endswith('.mail.onmicrosoft.com')
        assert entry['exchange_licensed'] is bool(entry['licenses'])
    cas_reads = [r for r in m365.requests if r.get('cmdlet') == 'Get-CASMailbox'
                 and r['status'] == 200]
    filters = [r['parameters'].get('Filter') for r in cas_reads]
    assert filters[0] is None  # one page unfiltered: more than one page, so partitions follow
    assert "Name -like 'a*'" in filters and "Name -like '0*'" in filters
    assert any(f and f.startswith('-not (') for f in filters)  # the rest of the Names
    assert result['license_source'] == 'licenseDetails'
    assert any('Organization.Read.All' in w for w in result.get('warnings', [])), result
    assert not [r for r in m365.requests if r['resource'] == 'graph'
                and '/mailboxSettings' in r['path']]
    statuses = [r['status'] for r in m365.requests]
    assert statuses.count(503) == 1 and statuses.count(429) >= 2 and statuses.count(500) == 1
    assert all(r['path'] == '/adminapi/beta/%s/InvokeCommand' % m365.tenant_id
               for r in m365.requests if r['resource'] == 'exo')


def name_prefix(text):
    """'ab' of the partition filter "Name -like 'ab*'", else None."""
    found = re.fullmatch(r"Name -like '([^']*)\*'", text or '')
    return found.group(1) if found else None


@pytest.mark.parametrize('named_by_id, limit', [(True, 3), (False, None)])
def test_partitions_never_miss_or_double_a_mailbox(m365, play, named_by_id, limit):
    """Names that crowd one prefix (user00001..., as aliases of older mailboxes are), Names
    that start with no letter or digit, and a tenant whose Exchange allows 3 requests at once
    while the task asks for 8: every mailbox once, the refusals waited out, and never more than
    3 in flight. A crowded partition whose first page comes back when the others are done is
    split."""
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    m365.generate_users(2600, domain=m365.tenant_domain, named_by_id=named_by_id)
    for name in ('_svc.scanner', '\u00e9milie.dupont', '#ops', 'Zo\u00eb', '9lives'):
        m365.add_user(name + '@contoso.test')
    m365.exo.max_concurrent = limit
    # pages take 1-2 s per 1,000 mailboxes: the empty partitions end first (so the crowded
    # one is split), and the 16 partitions of ~160 mailboxes each stay in flight long enough
    # (about 0.3 s) that 8 workers overlap at Exchange even on a loaded machine
    m365.exo.page_latency = 2.0 if named_by_id else 1.0
    app = m365.add_app(secret='mailbox-info-secret',
                       roles=ROLES + ('Organization.Read.All',))
    run = play([info(m365, app, all=True, include=['mailbox'], concurrency=8)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    have = sorted(m['upn'] for m in result['mailboxes'] if m['has_mailbox'])
    assert have == sorted(u['userPrincipalName'] for u in m365.users if u['_mailbox'])
    refused = [r for r in m365.requests if r.get('concurrency_refused')]
    if limit:  # tried more than 3 at once, was refused, and came down (one per size)
        assert m365.exo.peak_attempted > limit and 1 <= len(refused) <= 8 * (8 - limit)
        assert any(re.search(r'refused %d requests? .* with [1-7] requests? in flight instead '
                             r'of 8' % len(refused), w) for w in result.get('warnings', [])), \
            result
    else:
        assert not refused
    answered = [r for r in m365.requests if r.get('cmdlet') == 'Get-CASMailbox'
                and r['status'] == 200]
    filters = [r['parameters'].get('Filter') for r in answered]
    # the objects Exchange sent in the partitions that were not split (the first, unfiltered
    # page neither) hold each mailbox once
    prefixes = set(name_prefix(f) for f in filters) - {None}
    split = set(p for p in prefixes
                if any(q.startswith(p) and len(q) == len(p) + 1 for q in prefixes))
    leaves = [r for r in answered[1:] if name_prefix(r['parameters']['Filter']) not in split]
    assert filters[0] is None and sum(r['objects'] for r in leaves) == len(have)
    if not named_by_id:  # 'u' holds 2,600 of them: split, down to 'user' (SPLIT_DEPTH)
        assert "Name -like 'us*'" in filters and "Name -like 'user*'" in filters, filters


def test_licences_from_the_user_list_and_subscribed_skus(m365, tenant, play):
    """With Organization.Read.All: no request per user; a plan a licence disables gives no
    mailbox."""
    m365.add_user('e3.noexchange@contoso.test', licensed='SPE_E3', mailbox=False,
                  disabled_plans=['EXCHANGE_S_ENTERPRISE'])
    app = m365.add_app(secret='mailbox-info-secret', roles=ROLES + ('Organization.Read.All',))
    run = play([info(m365, app, all=True, detail='full')])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    boxes = by_upn(result)
    assert [(boxes[u]['exchange_licensed'], boxes[u]['licenses']) for u in (
        'kiosk.gov@contoso.test', 'foundation@contoso.test', 'archive@contoso.test',
        'e3.noexchange@contoso.test', 'licensed@contoso.test', 'unlicensed@contoso.test')] == [
        (True, ['M365_F1_GOV']), (False, ['POWER_BI_STANDARD']),
        (False, ['EXCHANGEARCHIVE_ADDON']), (False, ['SPE_E3']), (True, ['EXCHANGESTANDARD']),
        (False, [])]
    assert result['license_source'] == 'assignedPlans' and not result.get('warnings')
    assert not [r for r in m365.requests if 'licenseDetails' in (r['path'] or '')
                or any('licenseDetails' in i['url'] for i in r.get('batch_items') or [])]
    assert len([r for r in m365.requests if r['path'].endswith('/subscribedSkus')]) == 1


def test_all_returns_a_summary_or_writes_the_whole_entries_to_a_file(m365, tenant, play,
                                                                     tmp_path):
    app = m365.add_app(secret='mailbox-info-secret', roles=ROLES + ('Organization.Read.All',))
    out = tmp_path / 'mailboxes.json'
    run = play([info(m365, app, all=True),
                dict(info(m365, app, all=True, output_path=str(out)), register='file')])
    summary = run.results[0]['result']
    assert run.results[0]['status'] == 'ok', summary.get('msg')
    assert summary['detail'] == 'summary'
    lic = by_upn(summary)['licensed@contoso.test']
    assert set(lic) == {'upn', 'has_mailbox', 'exchange_licensed', 'licenses', 'protocols',
                        'routing_address', 'proxy_addresses'}
    assert set(lic['protocols']) == {'pop', 'imap', 'smtp_auth'}
    written = run.results[1]['result']
    assert 'mailboxes' not in written and written['output_path'] == str(out)
    entries = json.loads(out.read_text())
    assert len(entries) == written['count'] == summary['count']
    assert by_upn({'mailboxes': entries})['licensed@contoso.test']['id']  # whole entries
    assert written['summary']['mailboxes'] == sum(1 for e in entries if e.get('has_mailbox'))
    assert oct(out.stat().st_mode & 0o777) == '0o600'
    out.unlink()
    checked = play([info(m365, app, all=True, output_path=str(out))], check=True)
    result = checked.last['result']
    assert checked.last['status'] == 'ok' and not out.exists()
    assert len(result['mailboxes']) == result['count'] == summary['count']
    assert any('check mode writes no file' in w for w in result.get('warnings', [])), result


def test_missing_exchange_permission_is_named(m365, tenant, play):
    app = m365.add_app(secret='mailbox-info-secret', roles=('User.Read.All',))
    run = play([info(m365, app, mailboxes=['licensed@contoso.test'])])
    assert run.last['status'] == 'failed'
    assert 'Exchange.ManageAsApp' in run.last['result']['msg']


@pytest.mark.parametrize('directory_id', [True, False])
def test_a_mailbox_is_never_given_to_a_user_who_only_shares_its_address(m365, directory_id):
    """a@ has no mailbox but the mail attribute of b@'s mailbox (Entra does not stop that for a
    user without proxyAddresses). Over 50 names the tenant is paged once: b@'s CAS object must
    not count as a@'s, whether b@ is listed or not, and whether the objects carry
    ExternalDirectoryObjectId or not (then an address two listed users share decides
    nothing)."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mailboxes import (
        Mailboxes)
    m365.exo.cas_directory_id = directory_id
    d = m365.tenant_domain
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    m365.add_user('a@' + d, mail='shared@contoso.test', mailbox=False, proxy_addresses=[])
    m365.add_user('b@' + d, mail='shared@contoso.test')
    others = [u['userPrincipalName'] for u in m365.generate_users(
        55, domain=d, licensed_ratio=1, mailbox_ratio=1)]
    app = m365.add_app(secret='mailbox-info-secret', roles=ROLES)
    lists = [['a@' + d, 'b@' + d] + others]
    if directory_id:  # without the id, an address of an unlisted mailbox cannot be told apart
        lists.append(['a@' + d] + others)
    for names in lists:
        result = Mailboxes(dict(m365_args(m365, app), mailboxes=names,
                                include=['mailbox'])).info()
        found = by_upn(result)
        assert found['a@' + d]['has_mailbox'] is False, len(names)
        assert all(found[n]['has_mailbox'] for n in names[1:]), len(names)


def test_an_address_two_users_carry_is_resolved_by_proxy_addresses_or_refused(m365):
    """Asked by an address that Graph finds on two users: the one whose proxyAddresses hold it
    (Exchange's own address) is the mailbox, not the one with only the mail attribute; when
    both hold it the task names them instead of picking one."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mailboxes import (
        Mailboxes)
    from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import InputError
    d = m365.tenant_domain
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    m365.add_user('a@' + d, mail='shared@contoso.test', mailbox=False, proxy_addresses=[])
    m365.add_user('b@' + d, mail='shared@contoso.test')
    app = m365.add_app(secret='mailbox-info-secret', roles=ROLES)
    params = dict(m365_args(m365, app), mailboxes=['Shared@contoso.test'], include=['mailbox'])
    [entry] = Mailboxes(params).info()['mailboxes']
    assert (entry['upn'], entry['has_mailbox']) == ('b@' + d, True)
    m365.add_user('c@' + d, mail='other@contoso.test',
                  proxy_addresses=['SMTP:other@contoso.test', 'smtp:shared@contoso.test'])
    with pytest.raises(InputError) as err:
        Mailboxes(params).info()
    assert str(err.value) == ('input: mailboxes: Shared@contoso.test is an address of 2 users '
                              '(b@%s, c@%s): give the user principal name' % (d, d))


def test_a_long_list_is_read_by_address_filters_not_the_whole_tenant(m365, play):
    """60 of 3,000 users by UPN (the primary addresses are first.last@contoso.test): Graph per
    user in $batch, Exchange by EmailAddresses filters of 20 addresses (never the whole tenant),
    the licences from the user list with /subscribedSkus (more than 50 names); a user whose
    primary address is neither its UPN nor its mail is found by that address."""
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    m365.generate_users(3000, domain=m365.tenant_domain, mail_domain='contoso.test')
    users = [u for u in m365.users if u['_mailbox']][:59]
    odd = m365.add_user('odd@contoso.test', proxy_addresses=['SMTP:odd.one@contoso.test'])
    names = [u['userPrincipalName'] for u in users] + [odd['userPrincipalName']]
    m365.exo.cas_directory_id = True
    app = m365.add_app(secret='mailbox-info-secret', roles=ROLES + ('Organization.Read.All',))
    m365.clear_log()
    run = play([info(m365, app, mailboxes=names, include=['mailbox', 'license'])])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert [m['upn'] for m in result['mailboxes']] == names
    assert all(m['has_mailbox'] and m['exchange_licensed'] for m in result['mailboxes'])
    assert result['license_source'] == 'assignedPlans'
    reads = [r for r in m365.requests if r.get('cmdlet') == 'Get-CASMailbox']
    filters = [r['parameters'].get('Filter') for r in reads if r['parameters'].get('Filter')]
    assert len(filters) == 3 and all(f.startswith('EmailAddresses -eq ') for f in filters)
    assert not [r for r in reads if r['parameters'].get('ResultSize') and
                not r['parameters'].get('Filter')]
    assert not [r for r in reads if r['identity']]  # each found by its primary address
