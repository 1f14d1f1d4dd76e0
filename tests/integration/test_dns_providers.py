"""mail_dns on hosted DNS providers: a real PowerDNS 4.7 (HTTP API, SQLite backend), Route 53
(moto in server mode behind the lab's strict front, tests/lab/route53.py), Azure DNS (Resource
Manager on the lab's Microsoft 365 emulator, real msal tokens, tests/lab/azure_dns.py) and
Cloudflare (tests/lab/cloudflare.py), driven by real ansible-playbook runs and, for the races, by
the engine itself.

The cases are those of RFC 2136 (tests/integration/test_mail_dns.py): the records of SPEC
section 2 on the server, nothing else touched, a second run unchanged, check mode without a
write, an exact rollback, a concurrent change caught; and per provider its own failures (wrong
credentials, a lost answer, a refused batch).
"""

import json
import os
import stat

import pytest

from tests.integration.conftest import ZONE, lab_zones
from tests.integration.test_mail_dns import (
    EXO_MX,
    EXPECTED,
    GOOGLE,
    LEGACY_MX,
    SPF_AFTER,
    SPF_BEFORE,
    TOUCHED,
    mail_dns,
    served,
    txt_values,
    untouched,
)
from tests.lab.azure_dns import AzureDnsLab
from tests.lab.cloudflare import CloudflareLab
from tests.lab.powerdns import PowerDnsServer
from tests.lab.route53 import ACCESS_KEY, Route53Lab

APEX = ZONE + '.'
GUARANTEE = {'powerdns': 'transaction', 'route53': 'atomic', 'azure': 'rrset_cas',
             'cloudflare': 'transaction'}
KINDS = ['powerdns', 'route53', 'azure', 'cloudflare']


@pytest.fixture
def powerdns(tmp_path):
    server = PowerDnsServer(lab_zones(), workdir=str(tmp_path / 'pdns'))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def route53(tmp_path):
    lab = Route53Lab(lab_zones(), workdir=str(tmp_path / 'route53'))
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture
def azure(tmp_path):
    lab = AzureDnsLab(lab_zones(), workdir=str(tmp_path / 'azure'))
    lab.start()
    lab.kind = 'azure'
    yield lab
    lab.stop()


@pytest.fixture
def cloudflare(tmp_path):
    lab = CloudflareLab(lab_zones(), workdir=str(tmp_path / 'cloudflare'))
    lab.start()
    lab.kind = 'cloudflare'
    yield lab
    lab.stop()


@pytest.fixture(params=KINDS)
def hosted(request):
    server = request.getfixturevalue(request.param)
    server.kind = request.param
    return server


@pytest.fixture(params=['powerdns', 'route53', 'cloudflare'])
def whole(request):
    """A provider that applies a change set whole or not at all."""
    server = request.getfixturevalue(request.param)
    server.kind = request.param
    return server


def writes(server, plan):
    """The writes one applied run makes: one per rrset on Azure DNS, else one."""
    return len(plan) if server.kind == 'azure' else 1


def add_txt(server, value):
    """Another administrator adds a TXT value at the apex, with the provider's own API."""
    ttl, values = server.rrset(ZONE, 'TXT')
    quoted = '"%s"' % value
    if server.kind == 'powerdns':
        assert server.patch(ZONE, [{'name': APEX, 'type': 'TXT', 'ttl': ttl, 'changetype':
                                    'REPLACE', 'records': [{'content': v, 'disabled': False}
                                                           for v in values + [quoted]]}]) == 204
    elif server.kind == 'azure':
        import dns.rdata
        strings = [[s.decode() for s in dns.rdata.from_text('IN', 'TXT', v).strings]
                   for v in values + [quoted]]
        server.api.put_set(ZONE, '@', 'TXT', ttl, {'TXTRecords': [{'value': v}
                                                                  for v in strings]})
    elif server.kind == 'cloudflare':
        server.change(ZONE, posts=[{'name': ZONE, 'type': 'TXT', 'ttl': ttl,
                                    'content': quoted}])
    else:
        server.change(ZONE, [{'Action': 'UPSERT', 'ResourceRecordSet': {
            'Name': APEX, 'Type': 'TXT', 'TTL': ttl,
            'ResourceRecords': [{'Value': v} for v in values + [quoted]]}}])


def engine_params(server, **extra):
    """The module's parameters with its defaults, as AnsibleModule hands them to the engine."""
    from ansible_collections.exchangeonline.mail.plugins.modules.mail_dns import module_kwargs
    spec = module_kwargs()['argument_spec']
    params = dict((k, v.get('default')) for k, v in spec.items())
    params.update(server.module_args(), timeout=5.0)
    params.update(extra)
    return params


@pytest.mark.parametrize('pattern', ['full', 'partial', 'legacy_forward'])
def test_pattern_apply_idempotent_rollback(hosted, play, tmp_path, pattern):
    backup = str(tmp_path / 'backup.json')
    zone_before = hosted.axfr(ZONE)

    run = play([mail_dns(hosted, domain=ZONE, pattern=pattern, backup_path=backup)], diff=True)
    first = run.last['result']
    assert run.last['status'] == 'ok', first.get('msg')
    assert first['changed'] is True
    assert first['provider'] == hosted.kind and first['guarantee'] == GUARANTEE[hosted.kind]
    assert first['read_method'] == 'api'
    # The records of SPEC section 2, in one write ...
    assert served(hosted) == EXPECTED[pattern]
    count = writes(hosted, first['plan'])
    assert hosted.update_messages(ZONE) == count
    # ... and nothing else in the zone changed.
    rest_before, rest_after = untouched(zone_before, hosted.axfr(ZONE), TOUCHED)
    assert rest_before == rest_after
    assert '+autodiscover.contoso.test. 3600 IN CNAME autodiscover.outlook.com.' in run.stdout
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    with open(backup, encoding='utf-8') as f:
        assert json.load(f)['provider'] == hosted.kind

    run = play([mail_dns(hosted, domain=ZONE, pattern=pattern, backup_path=backup)])
    assert run.last['status'] == 'ok' and run.last['result']['changed'] is False
    assert run.last['result']['plan'] == []
    assert hosted.update_messages(ZONE) == count

    run = play([mail_dns(hosted, state='rollback', backup_path=backup)])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert run.last['result']['changed'] is True
    assert hosted.axfr(ZONE) == zone_before
    assert hosted.update_messages(ZONE) == 2 * count
    run = play([mail_dns(hosted, state='rollback', backup_path=backup)])
    assert run.last['result']['changed'] is False and hosted.update_messages(ZONE) == 2 * count


def test_check_mode_sends_no_write(hosted, play):
    zone_before = hosted.axfr(ZONE)
    run = play([mail_dns(hosted, domain=ZONE, pattern='full')], check=True, diff=True)
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['changed'] is True and result['plan']
    assert '-contoso.test. 3600 IN MX 10 mail.contoso.test.' in run.stdout
    assert hosted.update_messages(ZONE) == 0
    assert hosted.axfr(ZONE) == zone_before
    run = play([mail_dns(hosted, domain=ZONE, state='preflight')], check=True)
    assert run.last['status'] == 'ok' and run.last['result']['update_proven'] is False
    assert hosted.update_messages(ZONE) == 0


def test_preflight_proves_the_write_and_changes_nothing(hosted, play):
    zone_before = hosted.axfr(ZONE)
    run = play([mail_dns(hosted, domain=ZONE, state='preflight')])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert run.last['result']['update_proven'] is True
    assert hosted.axfr(ZONE) == zone_before and hosted.update_messages(ZONE) == 0
    # Where the zone is hosted, from its apex NS: moto's are Route 53's own names.
    hosting = run.last['result']['hosting']
    if hosted.kind == 'route53':
        assert hosting['service'] == 'Amazon Route 53' and hosting['provider'] == 'route53'
    elif hosted.kind == 'azure':
        assert hosting['service'] == 'Azure DNS' and hosting['provider'] == 'azure'
    elif hosted.kind == 'cloudflare':
        assert hosting['service'] == 'Cloudflare' and hosting['provider'] == 'cloudflare'
    else:
        assert hosting == {'service': None, 'provider': None, 'nameservers': ['ns1.contoso.test']}
    assert 'are not what the Internet sees' not in run.stdout + run.stderr


def test_preflight_names_the_provider_the_delegation_says(bind, play):
    """The zone on the in-house server names Cloudflare's name servers: the registrar
    delegates there, so updating this server changes nothing the Internet sees."""
    assert bind.update(ZONE, lambda u: u.replace(APEX, 3600, 'NS', 'ada.ns.cloudflare.com.',
                                                 'bob.ns.cloudflare.com.')) == 'NOERROR'
    run = play([mail_dns(bind, domain=ZONE, state='preflight')])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert run.last['result']['hosting']['service'] == 'Cloudflare'
    warned = ' '.join((run.stdout + run.stderr).split())
    assert "are Cloudflare's: changes through provider rfc2136 are not what the Internet sees" \
        in warned and 'use provider cloudflare' in warned


def test_concurrent_change_is_replanned_not_overwritten(hosted):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns import (
        MailDnsEngine,
    )

    def someone_else(attempt, plan):
        if attempt == 1:  # between our read and our write, another admin adds a TXT value
            add_txt(hosted, 'other-team=keep-me')

    result = MailDnsEngine(engine_params(hosted, domain=ZONE, pattern='full'),
                           on_planned=someone_else).result()
    assert result['attempts'] == 2
    assert any('re-planned' in w for w in result['warnings'])
    assert txt_values(hosted, ZONE) == sorted([GOOGLE, SPF_AFTER, 'other-team=keep-me'])
    assert served(hosted)['mx'] == [EXO_MX]
    if hosted.kind == 'azure':
        # each rrset compared and swapped, in (name, type) order with the apex TXT last: the
        # ones before it went in, the TXT was refused (412), they were put back, and the second
        # plan wrote them all
        warned = ' '.join(result['warnings'])
        assert 'HTTP 412 PreconditionFailed' in warned and 'put back' in warned
        n = len(result['plan'])
        assert hosted.update_messages(ZONE) == 2 * (n - 1) + n
    else:
        assert hosted.update_messages(ZONE) == 1


def test_zone_that_keeps_changing_fails_with_nothing_changed(hosted):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
        DnsError,
    )
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns import (
        MailDnsEngine,
    )

    def busy_zone(attempt, plan):
        add_txt(hosted, 'busy-%d' % attempt)

    with pytest.raises(DnsError) as err:
        MailDnsEngine(engine_params(hosted, domain=ZONE, pattern='full'),
                      on_planned=busy_zone).result()
    assert 'changed again' in str(err.value) and 'Nothing was changed' in str(err.value)
    assert served(hosted)['mx'] == [LEGACY_MX]
    assert txt_values(hosted, ZONE) == sorted([GOOGLE, SPF_BEFORE, 'busy-1', 'busy-2'])
    assert served(hosted)['autodiscover'] is None
    if hosted.kind == 'azure':
        # twice: the autodiscover CNAME and the MX written before the refused TXT, then put
        # back (deletions first: the CNAME deleted, then the MX as it was)
        assert [w[0] + ' ' + w[2] for w in hosted.api.writes] == [
            'PUT CNAME', 'PUT MX', 'DELETE CNAME', 'PUT MX'] * 2
    else:
        assert hosted.update_messages(ZONE) == 0


def test_route53_catches_the_change_its_delete_no_longer_matches(route53):
    """No re-read before the batch: Route 53 itself refuses a DELETE whose values changed."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns import (
        MailDnsEngine,
    )
    route53.kind = 'route53'

    def someone_else(attempt, plan):
        if attempt == 1:
            add_txt(route53, 'other-team=keep-me')

    result = MailDnsEngine(engine_params(route53, domain=ZONE, pattern='full'),
                           on_planned=someone_else).result()
    assert result['attempts'] == 2
    assert 'values provided do not match the current values' in ' '.join(result['warnings'])
    assert route53.calls['ChangeResourceRecordSets'] == 2 and route53.update_messages() == 1
    assert txt_values(route53, ZONE) == sorted([GOOGLE, SPF_AFTER, 'other-team=keep-me'])


def test_wrong_credentials_are_named_and_nothing_changes(hosted, play):
    zone_before = hosted.axfr(ZONE)
    if hosted.kind == 'powerdns':
        wrong = dict(api_key='not-the-key-0123456789')
        said = 'refused the API key (HTTP 401'
    elif hosted.kind == 'azure':
        wrong = dict(client_secret='not-the-secret-0123456789')
        said = 'provider azure could not get a token for Azure Resource Manager'
    elif hosted.kind == 'cloudflare':
        wrong = dict(api_token='notTheTokenOfThisAccount0123456789abcdef')
        said = 'refused the API token'
    else:
        wrong = dict(aws_secret_access_key='not/the/secret/0123456789')
        said = 'refused the AWS credentials'
    run = play([mail_dns(hosted, domain=ZONE, pattern='full', **wrong)])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert said in result['msg'], result['msg']
    assert list(wrong.values())[0] not in run.stdout
    assert hosted.axfr(ZONE) == zone_before and hosted.update_messages(ZONE) == 0


def test_route53_unknown_access_key(route53, play):
    run = play([mail_dns(route53, domain=ZONE, pattern='full',
                         aws_access_key_id='AKIAUNKNOWN000000000')])
    msg = run.last['result']['msg']
    assert run.last['status'] == 'failed'
    assert 'InvalidClientTokenId' in msg and 'The security token included in the request is ' \
        'invalid' in msg and 'aws_access_key_id' in msg
    assert ACCESS_KEY not in run.stdout


def test_route53_lost_answer_is_settled_by_reading(route53, play, tmp_path):
    backup = str(tmp_path / 'b.json')
    route53.lose_next_change = True
    run = play([mail_dns(route53, domain=ZONE, pattern='full', backup_path=backup, timeout=3)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['update_reply'] == 'lost' and result['outcome'] == 'applied'
    assert served(route53) == EXPECTED['full']
    assert route53.update_messages() == 1 and os.path.exists(backup)


def test_refused_batch_changes_nothing(whole, play, tmp_path):
    """A change the provider refuses as a whole: a CNAME where another admin put a TXT in the
    meantime is refused by the provider (not the plan), and nothing else of the run is in."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
        DnsError,
    )
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns import (
        MailDnsEngine,
    )
    from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import Change
    from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RRset
    zone_before = whole.axfr(ZONE)
    params = engine_params(whole, domain=ZONE, pattern='full')
    engine = MailDnsEngine(params)
    provider = engine.zone_provider()
    provider.read_rrsets(APEX, [APEX, 'www.' + APEX])
    # www holds a CNAME; a TXT next to it is what every provider refuses, with an MX change
    # before it in the same write.
    bad = [Change(RRset(APEX, 'MX', 3600, ['10 mail.contoso.test.']),
                  RRset(APEX, 'MX', 3600, ['0 other.example.']), 'update'),
           Change(None, RRset('www.' + APEX, 'TXT', 3600, ['"next-to-cname"']), 'create')]
    with pytest.raises(DnsError) as err:
        provider.apply_changes(APEX, bad)
    assert 'Nothing was changed' in str(err.value)
    assert whole.axfr(ZONE) == zone_before


def test_rollback_refuses_a_backup_of_another_provider(hosted, bind, play, tmp_path):
    backup = str(tmp_path / 'b.json')
    run = play([mail_dns(bind, domain=ZONE, pattern='full', backup_path=backup)])
    assert run.last['status'] == 'ok'
    zone_before = hosted.axfr(ZONE)
    run = play([mail_dns(hosted, state='rollback', backup_path=backup)])
    assert run.last['status'] == 'failed'
    assert 'written with provider rfc2136' in run.last['result']['msg']
    assert hosted.axfr(ZONE) == zone_before


def test_powerdns_keeps_disabled_records(powerdns, play):
    """A disabled record is not served, so not planned; the PATCH that replaces its rrset keeps
    it, disabled."""
    assert powerdns.patch(ZONE, [{'name': APEX, 'type': 'MX', 'ttl': 3600, 'changetype':
                                  'REPLACE', 'records': [
                                      {'content': '10 mail.contoso.test.', 'disabled': False},
                                      {'content': '30 old-backup.contoso.test.',
                                       'disabled': True}]}]) == 204
    run = play([mail_dns(powerdns, domain=ZONE, pattern='full')])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert served(powerdns)['mx'] == [EXO_MX]
    zone = powerdns.api('GET', '/api/v1/servers/localhost/zones/%s' % APEX)[1]
    mx = [r for r in zone['rrsets'] if r['name'] == APEX and r['type'] == 'MX'][0]
    assert {'content': '30 old-backup.contoso.test.', 'disabled': True} in mx['records']


def test_powerdns_enables_a_disabled_record_the_plan_wants(powerdns, play):
    """The very MX the plan adds is there, disabled: it is enabled, not sent twice (PowerDNS
    refuses the same content twice in an rrset)."""
    assert powerdns.patch(ZONE, [{'name': APEX, 'type': 'MX', 'ttl': 3600, 'changetype':
                                  'REPLACE', 'records': [
                                      {'content': '10 mail.contoso.test.', 'disabled': False},
                                      {'content': EXO_MX, 'disabled': True}]}]) == 204
    run = play([mail_dns(powerdns, domain=ZONE, pattern='full')])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert served(powerdns)['mx'] == [EXO_MX]


def test_powerdns_plain_http_to_another_host_is_warned(powerdns):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._powerdns import (
        PowerDnsProvider,
    )
    assert PowerDnsProvider('http://192.0.2.8:8081', 'k').warnings
    assert not PowerDnsProvider(powerdns.api_url, 'k').warnings
    assert not PowerDnsProvider('https://192.0.2.8:8081', 'k').warnings


# -- manual: a registrar without an API -------------------------------------------------------
def manual_task(bind, **args):
    """mail_dns with provider manual, reading the lab BIND as a registrar's server (no key)."""
    return {'name': 'mail_dns', 'exchangeonline.mail.mail_dns': dict(
        provider='manual', server='127.0.0.1', port=bind.port, **args),
        'register': 'out', 'ignore_errors': True}


def enter(bind, manual):
    """What the administrator does at the registrar: the deletions, then the additions."""
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    def build(u):
        for r in manual['delete']:
            u.delete(r['name'], dns.rdata.from_text(dns.rdataclass.IN,
                                                    dns.rdatatype.from_text(r['type']),
                                                    r['value']))
        for r in manual['add']:
            u.add(r['name'], r['ttl'], r['type'], r['value'])
    assert bind.update(ZONE, build) == 'NOERROR'


def test_manual_prints_the_records_then_the_check_waits_and_rollback_lists_the_undo(
        bind, play, tmp_path):
    backup = str(tmp_path / 'manual.json')
    zone_before = bind.axfr(ZONE)
    serial = bind.soa_serial(ZONE)
    run = play([manual_task(bind, domain=ZONE, pattern='full', backup_path=backup)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['changed'] is False and result['pending'] is True
    assert result['guarantee'] == 'manual' and result['provider'] == 'manual'
    manual = result['manual']
    assert {'name': APEX, 'host': '@', 'type': 'MX', 'ttl': 3600,
            'value': '10 mail.contoso.test.'} in manual['delete']
    assert {'name': 'autodiscover.' + APEX, 'host': 'autodiscover', 'type': 'CNAME',
            'ttl': 3600, 'value': 'autodiscover.outlook.com.'} in manual['add']
    assert '; delete: contoso.test. 3600 IN MX 10 mail.contoso.test.' in manual['zone_lines']
    assert manual['table'][0].split() == ['action', 'host', 'type', 'TTL', 'value']
    assert 'provider manual: nothing was changed' in run.stdout + run.stderr
    # Nothing was sent to the server: the zone, its serial and named's log show no UPDATE.
    assert bind.axfr(ZONE) == zone_before and bind.soa_serial(ZONE) == serial
    assert bind.update_messages(ZONE) == 0

    # The administrator enters them; mail_dns_check waits for them, and mail_dns has no more.
    enter(bind, manual)
    assert served(bind) == EXPECTED['full']
    run = play([{'name': 'check', 'exchangeonline.mail.mail_dns_check': dict(
        server='127.0.0.1', port=bind.port, domain=ZONE, pattern='full', wait_timeout=5),
        'register': 'out', 'ignore_errors': True}])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    run = play([manual_task(bind, domain=ZONE, pattern='full', backup_path=backup)])
    assert run.last['result']['pending'] is False and 'manual' not in run.last['result']

    # The rollback is a list of records to enter as well; entered, the zone is as it was.
    run = play([manual_task(bind, state='rollback', backup_path=backup)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['pending'] is True
    assert {'name': APEX, 'host': '@', 'type': 'MX', 'ttl': 3600,
            'value': '10 mail.contoso.test.'} in result['manual']['add']
    enter(bind, result['manual'])
    assert bind.axfr(ZONE) == zone_before


def test_one_module_defaults_serves_mail_dns_and_mail_dns_check(powerdns, tmp_path):
    """The provider's options in group/exchangeonline.mail.dns (exo_dns in the playbooks):
    mail_dns writes through the API, mail_dns_check takes the same defaults and asks PowerDNS's
    own DNS port."""
    from tests.lab.ansible_runner import run_playbook
    play = [{'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
             'module_defaults': {'group/exchangeonline.mail.dns': dict(
                 powerdns.module_args(), server='127.0.0.1', port=powerdns.port)},
             'tasks': [{'exchangeonline.mail.mail_dns': {'domain': ZONE, 'pattern': 'full'}},
                       {'exchangeonline.mail.mail_dns_check': {
                           'domain': ZONE, 'pattern': 'full', 'wait_timeout': 10,
                           'nameservers': ['127.0.0.1:%d' % powerdns.port]},
                        'register': 'checked'},
                       {'ansible.builtin.assert': {'that': [
                           'checked.ok', "checked.hosting.service is none"]}}]}]
    path = str(tmp_path / 'play.yml')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(play, f)
    run = run_playbook(playbook=path, workdir=str(tmp_path / 'ansible'))
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert served(powerdns) == EXPECTED['full'] and powerdns.update_messages(ZONE) == 1


# -- Azure DNS and Cloudflare -----------------------------------------------------------------
def test_azure_failure_midway_puts_back_what_was_written(azure, play, tmp_path):
    """Azure DNS writes one record set at a time: when the last one is refused, the ones
    written before it are put back with their own etags, and the failure says so."""
    backup = str(tmp_path / 'b.json')
    zone_before = azure.axfr(ZONE)
    azure.api.fail_next = ('TXT', 400, 'BadRequest', 'The TXT record set is not valid here.')
    run = play([mail_dns(azure, domain=ZONE, pattern='full', backup_path=backup)])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    msg = ' '.join(result['msg'].split())
    assert 'HTTP 400 BadRequest: The TXT record set is not valid here.' in msg, msg
    assert 'had already written autodiscover.contoso.test. CNAME, contoso.test. MX' in msg
    assert 'put back as they were, so the zone is as it was' in msg
    assert result['restored'] == ['autodiscover.contoso.test. CNAME', 'contoso.test. MX']
    assert result['changed'] is False
    assert azure.axfr(ZONE) == zone_before
    assert [w[0] + ' ' + w[2] for w in azure.api.writes] == [
        'PUT CNAME', 'PUT MX', 'DELETE CNAME', 'PUT MX']
    # nothing of the run stayed, so neither did its backup; the next run applies it all
    assert not os.path.exists(backup)
    run = play([mail_dns(azure, domain=ZONE, pattern='full', backup_path=backup)])
    assert run.last['status'] == 'ok' and served(azure) == EXPECTED['full']


def test_azure_undo_refused_too_says_what_stayed(azure, play, tmp_path):
    """When putting back fails as well (someone changed the MX meanwhile), the task fails
    naming what stayed in, and keeps the backup for state: rollback."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
        DnsError,
    )
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns import (
        MailDnsEngine,
    )
    backup = str(tmp_path / 'b.json')
    api = azure.api
    original = api._record_set

    def meddle(method, zname, rdtype, rel, body, headers):
        answer = original(method, zname, rdtype, rel, body, headers)
        if rdtype == 'TXT' and method == 'PUT':
            # another admin edits the MX between our MX write and its undo; our TXT refused
            api.put_set(ZONE, '@', 'MX', 3600, {'MXRecords': [
                {'preference': 5, 'exchange': 'other.example'}]})
            return azure_error(400)
        return answer
    api._record_set = meddle
    with pytest.raises(DnsError) as err:
        MailDnsEngine(engine_params(azure, domain=ZONE, pattern='full',
                                    backup_path=backup)).result()
    msg = str(err.value)
    assert 'undoing them failed' in msg and 'is now partly changed' in msg, msg
    assert 'HTTP 412 PreconditionFailed' in msg
    assert os.path.exists(backup) and 'state: rollback' in msg
    assert err.value.fields['changed'] is True


def azure_error(status):
    from tests.lab.m365.azure_dns import arm_error
    return arm_error(status, 'BadRequest', 'Refused by the test.')


@pytest.mark.parametrize('kind', ['azure', 'cloudflare'])
def test_lost_answer_is_settled_by_reading(kind, request, play, tmp_path):
    server = request.getfixturevalue(kind)
    backup = str(tmp_path / 'b.json')
    if kind == 'azure':
        server.api.lose_next_write = True
    else:
        server.lose_next_change = True
    run = play([mail_dns(server, domain=ZONE, pattern='full', backup_path=backup, timeout=3)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert served(server) == EXPECTED['full'] and os.path.exists(backup)
    if kind == 'cloudflare':  # one batch: the engine reads the zone and finds all of it in
        assert result['update_reply'] == 'lost' and result['outcome'] == 'applied'
    else:  # one record set at a time: that one is read again, the others written after it
        assert 'but no answer came' in ' '.join(result['warnings'])
        assert 'a read of the record set shows it applied' in ' '.join(result['warnings'])
        assert server.update_messages() == len(result['plan'])


@pytest.mark.parametrize('kind', ['route53', 'azure', 'cloudflare'])
def test_mail_dns_check_waits_on_the_providers_name_servers(kind, request, tmp_path):
    """What the API holds is what the provider's name servers answer: mail_dns writes,
    mail_dns_check asks those servers (on loopback) until they serve the records."""
    from tests.lab.ansible_runner import run_playbook
    server = request.getfixturevalue(kind)
    play = [{'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
             'module_defaults': {'group/exchangeonline.mail.dns': server.module_args()},
             'tasks': [{'exchangeonline.mail.mail_dns': {'domain': ZONE, 'pattern': 'full'}},
                       {'exchangeonline.mail.mail_dns_check': {
                           'domain': ZONE, 'pattern': 'full', 'wait_timeout': 10,
                           'nameservers': ['127.0.0.1:%d' % server.dns_port]},
                        'register': 'checked'},
                       {'ansible.builtin.assert': {'that': ['checked.ok']}}]}]
    path = str(tmp_path / 'play.yml')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(play, f)
    run = run_playbook(playbook=path, workdir=str(tmp_path / 'ansible'))
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert 'are not what the Internet sees' not in run.stdout + run.stderr


def test_preflight_refuses_rights_that_only_read(azure, cloudflare, play):
    from tests.lab.cloudflare import READ_TOKEN
    reader = azure.emu.add_app(roles=())
    azure.api.grant(reader['client_id'], 'reader')
    run = play([mail_dns(azure, domain=ZONE, state='preflight', **azure.module_args(reader))])
    msg = ' '.join(run.last['result']['msg'].split())
    assert run.last['status'] == 'failed'
    assert 'AuthorizationFailed' in msg and "Microsoft.Network/dnszones/TXT/delete" in msg
    assert 'role DNS Zone Contributor' in msg and reader['secret'] not in run.stdout
    run = play([mail_dns(cloudflare, domain=ZONE, state='preflight', api_token=READ_TOKEN)])
    msg = ' '.join(run.last['result']['msg'].split())
    assert run.last['status'] == 'failed'
    assert '10000 Authentication error' in msg and 'Zone DNS Edit' in msg
    assert READ_TOKEN not in run.stdout
    assert azure.update_messages() == 0 and cloudflare.update_messages() == 0


def test_cloudflare_proxied_record_is_warned_and_written_dns_only(cloudflare, play):
    cloudflare.change(ZONE, posts=[{'name': 'autodiscover.' + ZONE, 'type': 'CNAME', 'ttl': 1,
                                    'content': 'old-autodiscover.example', 'proxied': True}])
    assert cloudflare.rrset('autodiscover.' + ZONE, 'A') is None  # the API shows the CNAME
    assert served_a(cloudflare, 'autodiscover.' + ZONE) == ['104.16.0.1']  # DNS: Cloudflare's
    run = play([mail_dns(cloudflare, domain=ZONE, pattern='full', on_conflict='replace')])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    warned = ' '.join((run.stdout + run.stderr).split())
    assert 'autodiscover.contoso.test. CNAME is proxied by Cloudflare' in warned
    _batch_zone, batch = cloudflare.batches[-1]
    cname = [p for p in batch['posts'] if p['type'] == 'CNAME']
    assert cname == [{'name': 'autodiscover.' + ZONE, 'type': 'CNAME', 'ttl': 300,
                      'proxied': False, 'content': 'autodiscover.outlook.com'}]
    assert served(cloudflare)['autodiscover'] == ['autodiscover.outlook.com.']
    assert served_a(cloudflare, 'autodiscover.' + ZONE) is None


def served_a(server, name):
    """The A answer of the provider's name servers for ``name`` (None: no A record)."""
    import dns.message
    import dns.query
    import dns.rdatatype
    answer = dns.query.udp(dns.message.make_query(name, 'A'), '127.0.0.1', timeout=3,
                           port=server.dns_port)
    found = [r for r in answer.answer if r.rdtype == dns.rdatatype.A]
    return sorted(rd.to_text() for rd in found[0]) if found else None


@pytest.mark.parametrize('kind', ['cloudflare', 'azure'])
def test_migrate_and_rollback_playbooks_on_a_hosted_provider(kind, request, tmp_path):
    """The migrate playbook end to end with the zone on a hosted provider: exo_dns names the
    provider (and its name servers for the checks), the tenant verifies the domain against
    those name servers, the records are written through the API; rollback.yml gives the zone
    back exactly."""
    from tests.integration.test_playbooks import ROLES, SECRET, Lab, exo_mx, output
    from tests.lab.m365.emulator import M365Emulator
    server = request.getfixturevalue(kind)
    m365 = M365Emulator(workdir=str(tmp_path / 'm365'), dns_server=('127.0.0.1',
                                                                    server.dns_port))
    m365.start()
    try:
        workdir = tmp_path / 'run'
        workdir.mkdir()
        lab = Lab(server, m365, m365.add_app(secret=SECRET, roles=ROLES), str(workdir))
        before = server.axfr(ZONE)
        inventory = lab.inventory({ZONE: {'exo_pattern': 'full'}}, exo_dns=dict(
            server.module_args(), server='127.0.0.1', port=server.dns_port))
        run = lab.run('migrate', inventory)
        assert run.rc == 0, output(run)
        assert m365.domains[ZONE]['isVerified'] is True
        assert served(server)['mx'] == [exo_mx(m365, ZONE)]
        assert served(server)['autodiscover'] == ['autodiscover.outlook.com.']
        dns_tasks = [r for r in run.results if r['task'].startswith(
            'exchangeonline.mail.dns_migration') and 'provider' in r['result']]
        assert dns_tasks and all(r['result']['provider'] == kind for r in dns_tasks)
        assert 'are not what the Internet sees' not in run.stdout + run.stderr
        assert SECRET not in run.stdout + run.stderr
        run = lab.run('rollback', inventory)
        assert run.rc == 0, output(run)
        assert server.axfr(ZONE) == before
    finally:
        m365.stop()


def test_azure_role_on_the_resource_group_needs_azure_resource_group(azure, play):
    app = azure.emu.add_app(roles=())
    azure.api.grant(app['client_id'], 'contributor', scope='resource group')
    args = azure.module_args(app)
    run = play([mail_dns(azure, domain=ZONE, pattern='full', **args)])
    msg = ' '.join(run.last['result']['msg'].split())
    assert run.last['status'] == 'failed'
    assert 'AuthorizationFailed' in msg and 'give azure_resource_group' in msg, msg
    run = play([mail_dns(azure, domain=ZONE, pattern='full',
                         **dict(args, azure_resource_group=azure.api.resource_group))])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert served(azure) == EXPECTED['full']


def test_cloudflare_keeps_the_records_it_does_not_change(cloudflare, play, tmp_path):
    """Records from before Cloudflare quoted TXT content (unquoted, longer than 255 bytes) and
    records with a comment stay as they are, with their ids: only the SPF value is replaced."""
    long_value = 'site-verification=' + 'x' * 300
    cloudflare.change(ZONE, posts=[{'name': ZONE, 'type': 'TXT', 'ttl': 3600,
                                    'content': long_value, 'comment': 'keep me'}])
    kept = dict((i, r) for i, r in cloudflare.records[cloudflare.zone_id(ZONE)].items()
                if r['type'] == 'TXT' and 'v=spf1' not in r['content'])
    backup = str(tmp_path / 'b.json')
    run = play([mail_dns(cloudflare, domain=ZONE, pattern='full', backup_path=backup)])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    records = cloudflare.records[cloudflare.zone_id(ZONE)]
    for record_id, record in kept.items():
        assert records[record_id] == record
    assert long_value in txt_values(cloudflare, ZONE) and SPF_AFTER in txt_values(cloudflare, ZONE)
    _zone, batch = cloudflare.batches[-1]
    assert not set(d['id'] for d in batch['deletes']) & set(kept)
    run = play([mail_dns(cloudflare, state='rollback', backup_path=backup)])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert SPF_BEFORE in txt_values(cloudflare, ZONE)
    assert all(records_now == record for records_now, record in (
        (cloudflare.records[cloudflare.zone_id(ZONE)][i], r) for i, r in kept.items()))


def test_azure_keeps_metadata_and_writes_into_an_empty_record_set(azure, play):
    """A PUT replaces the whole record set: its metadata (tags) is sent back as read. An empty
    record set (Azure DNS allows them) is written with its etag as precondition."""
    ttl, values = azure.rrset(ZONE, 'TXT')
    import dns.rdata
    azure.api.put_set(ZONE, '@', 'TXT', ttl, {'TXTRecords': [
        {'value': [s.decode() for s in dns.rdata.from_text('IN', 'TXT', v).strings]}
        for v in values]}, metadata={'owner': 'mail-team'})
    azure.api.put_set(ZONE, 'autodiscover', 'CNAME', 3600, {'CNAMERecord': None})
    azure.api.zones[ZONE][('autodiscover', 'CNAME')]['records'] = {}
    run = play([mail_dns(azure, domain=ZONE, pattern='full')])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert served(azure) == EXPECTED['full']
    assert azure.api.record_set(ZONE, '@', 'TXT')['metadata'] == {'owner': 'mail-team'}


def test_azure_write_lost_before_it_arrived_is_sent_again(azure, play):
    azure.api.drop_next_write = True
    run = play([mail_dns(azure, domain=ZONE, pattern='full', timeout=3)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert 'shows it not applied, so it was sent once more' in ' '.join(result['warnings'])
    assert served(azure) == EXPECTED['full']
    assert azure.update_messages() == len(result['plan'])
