"""mail_dns against a real BIND 9, driven by real ansible-playbook runs.

Every assertion is about what a user sees: the records the server serves, the zone's serial,
named's log, the task's message.
"""

import json
import os
import socket
import stat

import pytest

from tests.integration.conftest import IDN_ZONE, ZONE, dns_args

APEX = ZONE + '.'  # names in UPDATE messages built by tests must be absolute
EXO_MX = '0 contoso-test.mail.protection.outlook.com.'
LEGACY_MX = '10 mail.contoso.test.'
SPF_BEFORE = 'v=spf1 ip4:192.0.2.0/24 include:_spf.mailhost.test ~all'
SPF_AFTER = 'v=spf1 ip4:192.0.2.0/24 include:_spf.mailhost.test include:spf.protection.outlook.com ~all'
GOOGLE = 'google-site-verification=Yq3nH2kQJk0_Tb9xW1cD8eP5rL7sM4aV6uZ2iO3gE'
DKIM_TARGETS = {
    'selector1': 'selector1-contoso-test._domainkey.contosolab.onmicrosoft.com',
    'selector2': 'selector2-contoso-test._domainkey.contosolab.onmicrosoft.com',
}


def mail_dns(bind, name='mail_dns', **args):
    return {'name': name, 'exchangeonline.mail.mail_dns': dns_args(bind, **args),
            'register': 'out', 'ignore_errors': True}


def txt_values(bind, name):
    found = bind.rrset(name, 'TXT')
    if found is None:
        return None
    # dig-style presentation: join the quoted strings of each record
    return sorted(''.join(part for part in _split_quoted(v)) for v in found[1])


def _split_quoted(text):
    out, cur, inside, esc = [], '', False, False
    for ch in text:
        if esc:
            cur += ch
            esc = False
        elif ch == '\\':
            esc = True
        elif ch == '"':
            if inside:
                out.append(cur)
                cur = ''
            inside = not inside
        elif inside:
            cur += ch
    return out


def served(bind):
    """What a user checks with dig after a migration."""
    mx = bind.rrset(ZONE, 'MX')
    cname = bind.rrset('autodiscover.' + ZONE, 'CNAME')
    return {
        'mx': mx[1] if mx else None,
        'autodiscover': cname[1] if cname else None,
        'txt': txt_values(bind, ZONE),
    }


def untouched(before, after, touched):
    """AXFR rows outside the touched (name, type) keys, before and after."""
    def rest(rows):
        return [r for r in rows if (r[0], r[2]) not in touched]
    return rest(before), rest(after)


EXPECTED = {
    'full': {'mx': [EXO_MX], 'autodiscover': ['autodiscover.outlook.com.'],
             'txt': sorted([GOOGLE, SPF_AFTER])},
    'partial': {'mx': sorted([LEGACY_MX, '20 contoso-test.mail.protection.outlook.com.']),
                'autodiscover': ['autodiscover.outlook.com.'], 'txt': sorted([GOOGLE, SPF_AFTER])},
    'legacy_forward': {'mx': [LEGACY_MX], 'autodiscover': ['autodiscover.outlook.com.'],
                       'txt': sorted([GOOGLE, SPF_AFTER])},
}
TOUCHED = {('contoso.test.', 'MX'), ('contoso.test.', 'TXT'), ('autodiscover.contoso.test.', 'CNAME')}


@pytest.mark.parametrize('pattern', ['full', 'partial', 'legacy_forward'])
def test_pattern_apply_idempotent_rollback(server, play, tmp_path, pattern):
    backup = str(tmp_path / 'backup.json')
    zone_before = server.axfr(ZONE)
    serial0 = server.soa_serial(ZONE)

    run = play([mail_dns(server, domain=ZONE, pattern=pattern, backup_path=backup)], diff=True)
    first = run.last['result']
    assert run.last['status'] == 'ok', first.get('msg')
    assert first['changed'] is True
    # The records on the server are those of SPEC section 2 ...
    assert served(server) == EXPECTED[pattern]
    # ... applied in exactly one UPDATE message, one serial bump.
    assert server.update_messages(ZONE) == 1
    assert server.soa_serial(ZONE) == serial0 + 1
    assert first['serial_before'] == serial0 and first['serial_after'] == serial0 + 1
    # Nothing else in the zone changed: the long DKIM TXT, www CNAME, NS, A records.
    rest_before, rest_after = untouched(zone_before, server.axfr(ZONE), TOUCHED)
    assert rest_before == rest_after
    # --diff shows zone-file lines.
    assert '+autodiscover.contoso.test. 3600 IN CNAME autodiscover.outlook.com.' in run.stdout
    if pattern == 'full':
        assert '-contoso.test. 3600 IN MX 10 mail.contoso.test.' in run.stdout
        assert '+contoso.test. 3600 IN MX 0 contoso-test.mail.protection.outlook.com.' in run.stdout
    # The backup is private.
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600

    # Second run: nothing to do, nothing sent.
    run = play([mail_dns(server, domain=ZONE, pattern=pattern, backup_path=backup)])
    assert run.last['result']['changed'] is False
    assert run.last['result']['plan'] == []
    assert server.update_messages(ZONE) == 1

    # Rollback gives back the zone exactly (SOA aside); a second rollback changes nothing.
    run = play([mail_dns(server, state='rollback', backup_path=backup)], diff=True)
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert run.last['result']['changed'] is True
    assert server.axfr(ZONE) == zone_before
    run = play([mail_dns(server, state='rollback', backup_path=backup)])
    assert run.last['result']['changed'] is False


def test_check_mode_sends_no_update(server, play):
    serial0 = server.soa_serial(ZONE)
    zone_before = server.axfr(ZONE)
    run = play([mail_dns(server, domain=ZONE, pattern='full')], check=True, diff=True)
    result = run.last['result']
    assert result['changed'] is True
    assert [(c['action'], c['type']) for c in result['plan']] == [
        ('create', 'CNAME'), ('update', 'MX'), ('update', 'TXT')]
    assert '+contoso.test. 3600 IN MX 0 contoso-test.mail.protection.outlook.com.' in run.stdout
    assert server.soa_serial(ZONE) == serial0
    assert server.axfr(ZONE) == zone_before
    # The server logged the reads, but no UPDATE of any kind reached it.
    assert server.reads_seen()
    assert server.updates_seen() == []


def test_idn_domain_and_key_file(server, play):
    args = dns_args(server, domain='bücher.test', pattern='full', key_file=server.key_file)
    del args['key_secret']
    del args['key_algorithm']
    run = play([{'exchangeonline.mail.mail_dns': args, 'register': 'out'}])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['domain'] == IDN_ZONE + '.'
    assert server.rrset(IDN_ZONE, 'MX')[1] == ['0 xn--bcher-kva-test.mail.protection.outlook.com.']
    assert server.rrset('autodiscover.' + IDN_ZONE, 'CNAME')[1] == ['autodiscover.outlook.com.']


def test_partial_primary_exo_dkim_dmarc_verification(bind, play):
    run = play([mail_dns(bind, domain=ZONE, pattern='partial', primary='exo',
                         mx_host='contoso-test.x-v1.mx.microsoft', dkim=DKIM_TARGETS,
                         dmarc='v=DMARC1; p=quarantine; rua=mailto:dmarc@contoso.test',
                         verification_txt='MS=ms12345678', ttl=600)])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert bind.rrset(ZONE, 'MX') == (600, sorted(['0 contoso-test.x-v1.mx.microsoft.', LEGACY_MX]))
    for selector, target in DKIM_TARGETS.items():
        assert bind.rrset('%s._domainkey.%s' % (selector, ZONE), 'CNAME') == (600, [target + '.'])
    assert txt_values(bind, '_dmarc.' + ZONE) == ['v=DMARC1; p=quarantine; rua=mailto:dmarc@contoso.test']
    assert 'MS=ms12345678' in txt_values(bind, ZONE)
    # A TTL-only difference is a change; the values stay.
    run = play([mail_dns(bind, domain=ZONE, pattern='partial', primary='exo',
                         mx_host='contoso-test.x-v1.mx.microsoft', dkim=DKIM_TARGETS,
                         dmarc='v=DMARC1; p=quarantine; rua=mailto:dmarc@contoso.test',
                         verification_txt='MS=ms12345678', ttl=300)])
    assert run.last['result']['changed'] is True
    assert bind.rrset(ZONE, 'MX') == (300, sorted(['0 contoso-test.x-v1.mx.microsoft.', LEGACY_MX]))


def test_absent_removes_what_exo_added(server, play, tmp_path):
    before = server.axfr(ZONE)
    play([mail_dns(server, domain=ZONE, pattern='partial', dkim=DKIM_TARGETS)])
    run = play([mail_dns(server, domain=ZONE, state='absent', dkim=DKIM_TARGETS)])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert run.last['result']['changed'] is True
    assert server.axfr(ZONE) == before
    run = play([mail_dns(server, domain=ZONE, state='absent', dkim=DKIM_TARGETS)])
    assert run.last['result']['changed'] is False


def test_long_spf_is_split_into_255_byte_strings(bind, play):
    long_spf = 'v=spf1 ' + ' '.join('ip4:198.51.100.%d' % i for i in range(1, 20)) + ' ~all'
    bind.update(ZONE, lambda u: (u.delete(APEX, 'TXT', '"%s"' % SPF_BEFORE),
                                 u.add(APEX, 3600, 'TXT', '"%s" "%s"' % (long_spf[:200], long_spf[200:]))))
    run = play([mail_dns(bind, domain=ZONE, pattern='full')])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    merged = long_spf.replace(' ~all', ' include:spf.protection.outlook.com ~all')
    assert len(merged) > 255
    raw = [v for v in bind.rrset(ZONE, 'TXT')[1] if 'spf1' in v][0]
    parts = _split_quoted(raw)
    assert len(parts) == 2 and len(parts[0]) == 255
    assert ''.join(parts) == merged
    run = play([mail_dns(bind, domain=ZONE, pattern='full')])
    assert run.last['result']['changed'] is False


# -- conflicts and concurrent changes ----------------------------------------------------------
def test_cname_conflict_at_autodiscover(server, play, tmp_path):
    assert server.update(ZONE, lambda u: u.add('autodiscover', 3600, 'A', '192.0.2.44')) \
        == 'NOERROR'
    zone_before = server.axfr(ZONE)
    run = play([mail_dns(server, domain=ZONE, pattern='full')])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['phase'] == 'plan'
    assert 'autodiscover.contoso.test.: has A 192.0.2.44' in result['msg']
    assert 'on_conflict: replace' in result['msg']
    assert server.axfr(ZONE) == zone_before

    backup = str(tmp_path / 'b.json')
    run = play([mail_dns(server, domain=ZONE, pattern='full', on_conflict='replace',
                         backup_path=backup)])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert server.rrset('autodiscover.' + ZONE, 'A') is None
    assert server.rrset('autodiscover.' + ZONE, 'CNAME')[1] == ['autodiscover.outlook.com.']
    with open(backup) as f:
        saved = json.load(f)
    assert {'name': 'autodiscover.contoso.test.', 'type': 'A'} in [
        {'name': e['name'], 'type': e['type']} for e in saved['entries']]
    play([mail_dns(server, state='rollback', backup_path=backup)])
    assert server.axfr(ZONE) == zone_before


@pytest.mark.parametrize('published', ['v=DMARC1; p=reject', 'v = DMARC1 ;p=reject'])
def test_dmarc_with_white_space_is_the_same_policy(bind, play, published):
    """RFC 7489 6.4 allows white space around '=' and ';': both spellings are one DMARC record.
    The same policy is adopted (no second record), another policy is a conflict, and
    mail_dns_check reads the published spelling as the DMARC record."""
    assert bind.update(ZONE, lambda u: u.add('_dmarc', 3600, 'TXT', '"%s"' % published)) \
        == 'NOERROR'
    run = play([
        mail_dns(bind, name='same', domain=ZONE, pattern='none', dmarc='v=DMARC1; p=reject'),
        mail_dns(bind, name='other', domain=ZONE, pattern='none', dmarc='v=DMARC1; p=none'),
        {'name': 'check', 'register': 'out', 'ignore_errors': True,
         'exchangeonline.mail.mail_dns_check': dns_args(bind, domain=ZONE, checks=['dmarc'],
                                                        dmarc='v=DMARC1; p=reject')}])
    same, other, checked = run.task('same'), run.task('other'), run.task('check')
    assert same['status'] == 'ok', same['result'].get('msg')
    assert same['result']['changed'] is False and same['result']['plan'] == []
    assert other['status'] == 'failed'
    assert other['result']['phase'] == 'plan'
    assert ('_dmarc.contoso.test.: has the DMARC record %s, not v=DMARC1; p=none' % published) \
        in other['result']['msg']
    assert checked['status'] == 'ok', checked['result'].get('msg')
    dmarc, = checked['result']['checks']
    assert dmarc['status'] == 'pass' and dmarc['servers']['ns1.contoso.test']['found'] == [published]
    assert txt_values(bind, '_dmarc.' + ZONE) == [published]


def test_rollback_refuses_when_changed_since(bind, play, tmp_path):
    backup = str(tmp_path / 'b.json')
    play([mail_dns(bind, domain=ZONE, pattern='full', backup_path=backup)])
    bind.update(ZONE, lambda u: u.add(APEX, 3600, 'MX', '5 mail.contoso.test.')) == 'NOERROR'
    after_edit = bind.axfr(ZONE)
    run = play([mail_dns(bind, state='rollback', backup_path=backup)])
    assert run.last['status'] == 'failed'
    assert 'contoso.test. MX is now' in run.last['result']['msg']
    assert 'force: true' in run.last['result']['msg']
    assert bind.axfr(ZONE) == after_edit
    run = play([mail_dns(bind, state='rollback', backup_path=backup, force=True)])
    assert run.last['status'] == 'ok'
    assert bind.rrset(ZONE, 'MX')[1] == [LEGACY_MX]


def _engine_params(bind, **extra):
    params = dict(dns_args(bind), zone=None, key_file=None, protocol='tcp', timeout=5.0,
                  state='present', force=False, backup_path=None)
    params.update(extra)
    return params


def test_concurrent_change_is_replanned_not_overwritten(bind):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns import (
        MailDnsEngine,
    )

    def someone_else(attempt, plan):
        if attempt == 1:  # between our read and our update, another admin adds a TXT value
            assert bind.update(ZONE, lambda u: u.add(APEX, 3600, 'TXT', '"other-team=keep-me"')) \
                == 'NOERROR'

    result = MailDnsEngine(_engine_params(bind, domain=ZONE, pattern='full'),
                           on_planned=someone_else).result()
    assert result['attempts'] == 2
    assert any('re-planned' in w for w in result['warnings'])
    assert txt_values(bind, ZONE) == sorted([GOOGLE, SPF_AFTER, 'other-team=keep-me'])
    assert bind.rrset(ZONE, 'MX')[1] == [EXO_MX]


def test_zone_that_keeps_changing_fails_cleanly(bind):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns import (
        MailDnsEngine,
    )
    from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import DnsError
    edits = []

    def busy_zone(attempt, plan):
        value = '"busy-%d"' % attempt
        bind.update(ZONE, lambda u: u.add(APEX, 3600, 'TXT', value))
        edits.append(value)

    with pytest.raises(DnsError) as err:
        MailDnsEngine(_engine_params(bind, domain=ZONE, pattern='full'),
                      on_planned=busy_zone).result()
    assert 'changed again' in str(err.value) and 'Nothing was changed' in str(err.value)
    # Only the other writer's edits are there: none of ours.
    assert bind.rrset(ZONE, 'MX')[1] == [LEGACY_MX]
    assert txt_values(bind, ZONE) == sorted([GOOGLE, SPF_BEFORE, 'busy-1', 'busy-2'])


# -- failures: clear message, zone unchanged --------------------------------------------------
def test_wrong_tsig_secret(server, play):
    zone_before = server.axfr(ZONE)
    wrong = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='
    run = play([mail_dns(server, domain=ZONE, pattern='full', key_secret=wrong)])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert 'BADSIG' in result['msg'] and 'key_secret' in result['msg']
    assert wrong not in run.stdout
    assert server.axfr(ZONE) == zone_before


def test_unknown_tsig_key(server, play):
    """Unknown to the server, for queries and transfers alike: said so, whether the zone is
    found by a query (find zone) or given (read: the transfer, then the queries)."""
    zone_before = server.axfr(ZONE)
    run = play([mail_dns(server, name='found', domain=ZONE, pattern='full', key_name='nobody'),
                mail_dns(server, name='given', domain=ZONE, zone=ZONE, pattern='full',
                         key_name='nobody')])
    for name, phase in (('found', 'find zone'), ('given', 'read')):
        task = run.task(name)
        assert task['status'] == 'failed'
        assert task['result']['phase'] == phase
        msg = task['result']['msg']
        assert 'does not know the TSIG key nobody' in msg and 'BADKEY' in msg, msg
        assert 'the key is unknown to it' in msg and 'Check key_name' in msg
        assert 'not allowed to transfer' not in msg
    given = run.task('given')['result']['msg']
    assert 'for the zone transfer of contoso.test. and for queries' in given
    assert server.axfr(ZONE) == zone_before
    assert server.updates_seen() == []


def test_unsigned_update_is_refused(bind, play):
    zone_before = bind.axfr(ZONE)
    args = dns_args(bind, domain=ZONE, pattern='full')
    for k in ('key_name', 'key_secret', 'key_algorithm'):
        args.pop(k)
    run = play([{'exchangeonline.mail.mail_dns': args, 'register': 'out', 'ignore_errors': True}])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['phase'] == 'apply' and result['rcode'] == 'REFUSED'
    assert 'allow-update' in result['msg'] and 'Nothing was changed' in result['msg']
    assert bind.axfr(ZONE) == zone_before


def test_server_down(bind, play):
    closed = socket.socket()
    closed.bind(('127.0.0.1', 0))
    port = closed.getsockname()[1]
    closed.close()
    run = play([mail_dns(bind, domain=ZONE, pattern='full', port=port)])
    assert run.last['status'] == 'failed'
    assert 'connection refused' in run.last['result']['msg']
    assert 'Check server and port' in run.last['result']['msg']


def test_timeout(bind, play):
    silent = socket.socket()
    silent.bind(('127.0.0.1', 0))
    silent.listen(5)  # accepts connections into the backlog, never answers
    try:
        run = play([mail_dns(bind, domain=ZONE, pattern='full', port=silent.getsockname()[1],
                             timeout=1)])
    finally:
        silent.close()
    assert run.last['status'] == 'failed'
    assert 'no answer from 127.0.0.1' in run.last['result']['msg']
    assert 'raise timeout' in run.last['result']['msg']


@pytest.mark.parametrize('args, message', [
    ({'domain': 'contoso..test', 'pattern': 'full'}, 'empty label'),
    ({'domain': 'a' * 64 + '.contoso.test', 'pattern': 'full'}, 'longer than 63 octets'),
    ({'domain': ZONE, 'pattern': 'everything'}, 'value of pattern must be one of'),
    ({'domain': ZONE, 'pattern': 'full', 'verification_txt': '"MS=ms1234"'}, 'double quote'),
    ({'domain': ZONE, 'pattern': 'full', 'dmarc': 'v=DMARC1; p="reject"'}, 'double quote'),
    ({'domain': ZONE, 'pattern': 'full', 'mx_host': 'bad host'}, 'white space'),
    ({'domain': ZONE, 'pattern': 'partial', 'primary': 'legacy', 'mx_preference': 5},
     'higher preference number'),
    ({'domain': 'other.test', 'pattern': 'full', 'zone': ZONE}, 'is not inside zone'),
    ({'pattern': 'full'}, 'missing: domain'),
])
def test_bad_input(bind, play, args, message):
    zone_before = bind.axfr(ZONE)
    run = play([mail_dns(bind, **args)])
    assert run.last['status'] == 'failed'
    assert message in run.last['result']['msg']
    assert 'Traceback' not in run.stdout + run.stderr
    assert bind.axfr(ZONE) == zone_before
    assert bind.updates_seen() == []


def test_secret_never_in_verbose_output(bind, play, tmp_path):
    run = play([mail_dns(bind, domain=ZONE, pattern='full', backup_path=str(tmp_path / 'b'))],
               verbosity=3, diff=True)
    assert run.last['status'] == 'ok'
    assert bind.key_secret not in run.stdout + run.stderr
    with open(str(tmp_path / 'b')) as f:
        assert bind.key_secret not in f.read()


def conflict_replaced_and_kept(bind, play, read_method):
    """A TXT in the way at autodiscover: seen (the task fails), replaced with on_conflict, the
    partial pattern's records served, then a second run changes nothing; each read by
    ``read_method``."""
    assert bind.update(ZONE, lambda u: u.add('autodiscover', 3600, 'TXT', '"old"')) == 'NOERROR'
    run = play([mail_dns(bind, domain=ZONE, pattern='partial')])
    assert run.last['status'] == 'failed'
    assert 'autodiscover.contoso.test.: has TXT old' in run.last['result']['msg']
    run = play([mail_dns(bind, domain=ZONE, pattern='partial', on_conflict='replace')])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['read_method'] == read_method
    assert served(bind) == EXPECTED['partial']
    assert bind.rrset('autodiscover.' + ZONE, 'TXT') is None
    run = play([mail_dns(bind, domain=ZONE, pattern='partial')])
    assert run.last['result']['changed'] is False
    assert run.last['result']['read_method'] == read_method


def test_transfer_refused_falls_back_to_signed_queries(tmp_path, play):
    """The conflict is seen without a zone transfer."""
    from tests.lab.bind import BindServer, zone_template
    with BindServer({ZONE: zone_template('contoso.test.zone')}, workdir=str(tmp_path / 'nb'),
                    lock_transfer='none') as bind:
        conflict_replaced_and_kept(bind, play, 'query')


def test_a_large_zone_is_read_by_queries_and_written_as_a_small_one(tmp_path, play):
    """A zone of 1,500 host records besides contoso.test's: the transfer stops after 1,000
    records and the plan's names are read by signed queries (read_method query-large-zone); the
    records land as on a small zone, a conflict is still seen, a second run changes nothing,
    and the other 1,500 records are untouched."""
    from tests.lab.bind import BindServer, zone_template
    hosts = ''.join('host%04d IN A 198.51.100.%d\n' % (i, i % 250 + 1) for i in range(1500))
    with BindServer({ZONE: zone_template('contoso.test.zone') + hosts},
                    workdir=str(tmp_path / 'big')) as bind:
        before = [r for r in bind.axfr(ZONE) if r[0].startswith('host')]
        conflict_replaced_and_kept(bind, play, 'query-large-zone')
        assert len(before) == 1500
        assert [r for r in bind.axfr(ZONE) if r[0].startswith('host')] == before


def test_in_process_and_module_paths_agree(bind, play):
    """connection: local runs work() in the worker; the module process must give the same."""
    task = [mail_dns(bind, domain=ZONE, pattern='partial', spf='replace', ttl=900),
            mail_dns(bind, name='bad', domain=ZONE, pattern='full', mx_preference=-1),
            mail_dns(bind, name='unknown option', domain=ZONE, pattern='full', colour='blue')]
    inproc = play(task, check=True, diff=True, env={'EXO_MAIL_INPROCESS': '1'})
    module = play(task, check=True, diff=True, env={'EXO_MAIL_INPROCESS': '0'})

    def comparable(run, name):
        r = dict(run.task(name)['result'])
        for k in ('invocation', '_ansible_no_log', 'warnings', 'deprecations'):
            r.pop(k, None)
        return r

    for name in ('mail_dns', 'bad', 'unknown option'):
        assert comparable(inproc, name) == comparable(module, name), name
    assert 'Unsupported parameters' in module.task('unknown option')['result']['msg']
    assert 'must be from 0 to 65535' in inproc.task('bad')['result']['msg']
    for run in (inproc, module):
        assert "[WARNING]: contoso.test. had no SPF record" not in run.stdout
        assert '+contoso.test. 900 IN MX 20 contoso-test.mail.protection.outlook.com.' in run.stdout
    assert bind.updates_seen() == []


def test_warnings_reach_the_user(bind, play):
    assert bind.update(ZONE, lambda u: u.delete(APEX, 'TXT', '"%s"' % SPF_BEFORE)) == 'NOERROR'
    for mode in ('0', '1'):
        run = play([mail_dns(bind, domain=ZONE, pattern='partial')], check=True,
                   env={'EXO_MAIL_INPROCESS': mode})
        assert 'contoso.test. had no SPF record' in run.stdout + run.stderr, (mode, run.stderr)
        # A plan writes nothing, and the apply after it may give a backup_path: no warning.
        assert 'no backup_path was given' not in run.stdout + run.stderr, mode
    applied = play([mail_dns(bind, domain=ZONE, pattern='partial')])
    assert applied.last['result']['changed'] is True
    # as printed, whatever the line breaks (ansible-core 2.16 wraps warnings, 2.19 does not)
    shown = ' '.join((applied.stdout + applied.stderr).split())
    assert ('no backup_path was given, so state: rollback cannot undo this change; the prior '
            'records are in the before return value') in shown


def test_subdomain_zone_found_from_soa_over_udp(bind, play):
    run = play([mail_dns(bind, domain='eu.' + ZONE, pattern='full', protocol='udp')])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['zone'] == APEX
    assert bind.rrset('eu.' + ZONE, 'MX')[1] == ['0 eu-contoso-test.mail.protection.outlook.com.']
    assert bind.rrset('autodiscover.eu.' + ZONE, 'CNAME')[1] == ['autodiscover.outlook.com.']
    assert txt_values(bind, 'eu.' + ZONE) == ['v=spf1 include:spf.protection.outlook.com -all']
    assert served(bind)['mx'] == [LEGACY_MX]


def test_refused_update_leaves_the_backup_as_it_was(bind, play, tmp_path):
    backup = str(tmp_path / 'b.json')
    zone_before = bind.axfr(ZONE)
    play([mail_dns(bind, domain=ZONE, pattern='full', backup_path=backup)])
    with open(backup) as f:
        saved = f.read()
    # BIND's integrity check refuses an in-zone MX target without address records
    run = play([mail_dns(bind, domain=ZONE, pattern='full', mx_host='nohost.contoso.test',
                         backup_path=backup)])
    assert run.last['status'] == 'failed' and run.last['result']['rcode'] == 'REFUSED'
    with open(backup) as f:
        assert f.read() == saved
    run = play([mail_dns(bind, state='rollback', backup_path=backup)])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert bind.axfr(ZONE) == zone_before


def test_delegated_child_is_refused(bind, play):
    assert bind.update(ZONE, lambda u: (u.add('sub', 3600, 'NS', 'ns.elsewhere.example.'))) \
        == 'NOERROR'
    zone_before = bind.axfr(ZONE)
    run = play([mail_dns(bind, domain='sub.' + ZONE, pattern='full', name='found'),
                mail_dns(bind, domain='sub.' + ZONE, pattern='full', zone=ZONE, name='given')])
    found = run.task('found')['result']
    assert found['phase'] == 'find zone' and 'delegates to ns.elsewhere.example.' in found['msg']
    given = run.task('given')['result']
    assert given['phase'] == 'plan' and 'is delegated to another zone' in given['msg']
    assert bind.axfr(ZONE) == zone_before


def test_duplicate_txt_values_are_reported_not_looped(bind, play):
    assert bind.update(ZONE, lambda u: u.add(APEX, 3600, 'TXT', '"v=spf1 ip4:192.0.2.0/24 '
                                             'include:_spf.mailhost.test" " ~all"')) == 'NOERROR'
    run = play([mail_dns(bind, domain=ZONE, pattern='full')])
    assert run.last['status'] == 'failed'
    assert 'two TXT records' in run.last['result']['msg']


def test_udp_only_path_falls_back_from_transfer_to_queries(bind, play):
    """A firewall that lets only UDP through: the transfer (TCP) is refused, queries and the
    update go over UDP. A real UDP relay on loopback stands in for that firewall."""
    from tests.lab.dns_relay import DnsRelay
    with DnsRelay(bind.port, tcp=False) as relay:
        run = play([mail_dns(bind, domain=ZONE, pattern='full', protocol='udp',
                             port=relay.port)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['read_method'] == 'query'
    assert served(bind) == EXPECTED['full']
