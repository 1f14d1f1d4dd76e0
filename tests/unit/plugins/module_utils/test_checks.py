"""The checks of mail_dns_check without a network: SPF counting, DMARC syntax, MX per pattern.

The last section covers two pure helpers the checker uses: server parsing and the wait loop
(with a fake clock).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._checks import (
    Expectation,
    Observed,
    behind,
    check_cname,
    check_dkim,
    check_dmarc,
    check_mx,
    check_spf,
    check_verification,
    count_spf_lookups,
    evaluate,
    failure_message,
    judge_all,
    summary_line,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_policy import (
    Spec,
    dmarc_problems,
    parse_dmarc,
    spf_terms,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    split_host_port,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._poll import poll
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError
from tests.unit.plugins.module_utils.fake_clock import FakeClock

D = 'contoso.com.'
EXO = 'contoso-com.mail.protection.outlook.com.'
INC = 'spf.protection.outlook.com'


class FakeDns:
    """``lookup(name)``: TXT strings of a name; names not listed do not resolve (None)."""

    def __init__(self, zone):
        self.zone = zone
        self.asked = []

    def __call__(self, name):
        self.asked.append(name)
        return self.zone.get(name)


def no_dns(name):
    return None


# -- SPF: terms and the lookup count ----------------------------------------------------------
def test_spf_terms_drop_qualifiers_and_cidr_and_split_modifiers():
    assert spf_terms('v=spf1 -a:mail.example.com/24 ~mx//64 +include:X.example ip4:192.0.2.0/24 '
                     'redirect=_spf.example exp=explain.example -all') == [
        ('mechanism', 'a', 'mail.example.com'),
        ('mechanism', 'mx', None),
        ('mechanism', 'include', 'X.example'),
        ('mechanism', 'ip4', '192.0.2.0/24'),
        ('modifier', 'redirect', '_spf.example'),
        ('modifier', 'exp', 'explain.example'),
        ('mechanism', 'all', None),
    ]


def test_count_follows_nested_includes():
    dns = FakeDns({
        'a.example': ['v=spf1 include:b.example a mx -all'],      # 1 + 2 + b
        'b.example': ['v=spf1 exists:%{i}.x.example ptr ?all'],   # 2
        INC: ['v=spf1 ip4:40.92.0.0/15 -all'],                    # 0
    })
    count = count_spf_lookups('v=spf1 include:a.example include:%s mx ~all' % INC, dns, D)
    # top: include a, include INC, mx = 3; a: include b, a, mx = 3; b: exists, ptr = 2
    assert count.lookups == 8
    assert count.unresolved == []
    assert count.problems == []
    assert count.followed == ['a.example', 'b.example', INC]
    assert any('ptr is deprecated' in n for n in count.notes)


def test_count_asks_each_name_once_but_counts_every_path():
    dns = FakeDns({'a.example': ['v=spf1 include:c.example -all'],
                   'b.example': ['v=spf1 include:c.example -all'],
                   'c.example': ['v=spf1 a -all']})
    count = count_spf_lookups('v=spf1 include:a.example include:b.example -all', dns, D)
    assert count.lookups == 2 + 2 + 2  # a, b; c twice; c's "a" twice
    assert sorted(dns.asked) == ['a.example', 'b.example', 'c.example']


def test_unresolved_targets_count_once_and_are_reported():
    count = count_spf_lookups('v=spf1 include:%s include:_spf.legacy.example ~all' % INC,
                              no_dns, D)
    assert count.lookups == 2
    assert count.unresolved == [INC, '_spf.legacy.example']
    assert count.problems == []


def test_redirect_counts_and_is_followed_unless_there_is_an_all():
    dns = FakeDns({'_spf.example': ['v=spf1 a mx -all']})
    assert count_spf_lookups('v=spf1 redirect=_spf.example', dns).lookups == 3
    ignored = count_spf_lookups('v=spf1 ip4:192.0.2.1 redirect=_spf.example -all', dns)
    assert ignored.lookups == 0
    assert any('redirect=_spf.example is ignored' in n for n in ignored.notes)


def test_include_loop_and_missing_records_are_problems():
    dns = FakeDns({'a.example': ['v=spf1 include:b.example -all'],
                   'b.example': ['v=spf1 include:a.example -all'],
                   'nospf.example': ['some other text'],
                   'two.example': ['v=spf1 -all', 'v=spf1 a -all']})
    loop = count_spf_lookups('v=spf1 include:a.example -all', dns, D)
    assert loop.problems == ['include loop: contoso.com -> a.example -> b.example -> a.example']
    bad = count_spf_lookups('v=spf1 include:nospf.example include:two.example -all', dns, D)
    assert bad.problems == [
        'include:nospf.example has no SPF record, a permanent error at receivers',
        'include:two.example has 2 v=spf1 records, a permanent error at receivers']


def test_unknown_mechanism_is_a_problem_unknown_modifier_is_not():
    count = count_spf_lookups('v=spf1 ip4:192.0.2.1 foo:bar custom=1 -all', no_dns, D)
    assert count.problems == ["unknown mechanism 'foo' in contoso.com"]


# -- SPF: the check --------------------------------------------------------------------------
def test_spf_passes_with_one_record_and_the_include():
    out = check_spf(['google-site-verification=x', 'v=spf1 ip4:192.0.2.0/24 include:%s -all'
                     % INC], INC, no_dns, D)
    assert out.status == 'pass'
    assert out.found == ['v=spf1 ip4:192.0.2.0/24 include:%s -all' % INC]
    assert out.extra == {'lookups': 1, 'unresolved': [INC]}
    assert '1 of 10 DNS lookups' in out.message and 'not resolved from here' in out.message


def test_duplicate_spf_fails():
    out = check_spf(['v=spf1 include:%s -all' % INC, 'v=spf1 -all'], INC, no_dns, D)
    assert out.status == 'fail'
    assert out.message.startswith('2 v=spf1 records')
    assert 'merge them into one' in out.message


def test_missing_spf_or_include_fails():
    assert check_spf(['MS=ms123'], INC, no_dns, D).message == (
        'no v=spf1 record; expected one with include:%s' % INC)
    out = check_spf(['v=spf1 mx ~all'], INC, no_dns, D)
    assert out.status == 'fail'
    assert 'include:%s is missing' % INC in out.message


def test_spf_over_the_limit_fails_with_the_count():
    dns = FakeDns({'big.example': ['v=spf1 ' + ' '.join('a:h%d.example' % i for i in range(9))
                                   + ' -all']})
    out = check_spf(['v=spf1 include:%s include:big.example mx -all' % INC], INC, dns, D)
    assert out.status == 'fail'
    assert out.extra['lookups'] == 12
    assert '12 DNS-querying terms, over the limit of 10' in out.message
    exactly_ten = FakeDns({'big.example': ['v=spf1 ' + ' '.join(
        'a:h%d.example' % i for i in range(8)) + ' -all']})
    out = check_spf(['v=spf1 include:%s include:big.example ~all' % INC], INC, exactly_ten, D)
    assert out.status == 'pass' and out.extra['lookups'] == 10


def test_spf_plus_all_warns():
    out = check_spf(['v=spf1 include:%s +all' % INC], INC, no_dns, D)
    assert out.status == 'warn' and '+all' in out.message


# -- DMARC ----------------------------------------------------------------------------------
@pytest.mark.parametrize('record', [
    'v=DMARC1; p=none',
    'v=DMARC1; p=reject; sp=quarantine; pct=50; adkim=s; aspf=r; fo=0:d:s; ri=86400; rf=afrf',
    'v=DMARC1;p=quarantine;rua=mailto:dmarc@contoso.com,mailto:agg@report.example!10m;',
    ' v = DMARC1 ; p = none ; ruf=mailto:forensic@contoso.com ',
])
def test_good_dmarc(record):
    assert dmarc_problems(record) == ([], [])
    assert check_dmarc([record]).status == 'pass'


@pytest.mark.parametrize('record, problem', [
    ('v=dmarc1; p=none', 'it must start with v=DMARC1 (exactly so)'),
    ('v=DMARC1; rua=mailto:a@contoso.com', 'the p= tag (none, quarantine or reject) is missing'),
    ('v=DMARC1; pct=100; p=none', 'p= must come right after v=DMARC1'),
    ('v=DMARC1; p=block', 'p=block: must be none, quarantine or reject'),
    ('v=DMARC1; p=none; sp=all', 'sp=all: must be none, quarantine or reject'),
    ('v=DMARC1; p=none; pct=101', 'pct=101: must be a number from 0 to 100'),
    ('v=DMARC1; p=none; adkim=x', 'adkim=x: must be r (relaxed) or s (strict)'),
    ('v=DMARC1; p=none; rua=dmarc@contoso.com', 'rua=dmarc@contoso.com: not a mailto: address: '
                                                'dmarc@contoso.com'),
    ('v=DMARC1; p=none; fo=2', 'fo=2: options are 0, 1, d and s separated by colons'),
    ('v=DMARC1; p=none; ri=daily', 'ri=daily: must be a number of seconds'),
    ('v=DMARC1; p=none; p=reject', 'p= appears more than once'),
    ('v=DMARC1; p=none; quarantine', "'quarantine' is not a tag=value pair"),
])
def test_bad_dmarc(record, problem):
    problems = dmarc_problems(record)[0]
    assert problem in problems
    out = check_dmarc([record])
    assert out.status == 'fail' and problem in out.message


def test_dmarc_unknown_tag_warns_missing_record_warns_unless_expected():
    assert check_dmarc(['v=DMARC1; p=none; adkm=s']).status == 'warn'
    missing = check_dmarc(['unrelated'], name='_dmarc.contoso.com.')
    assert missing.status == 'warn' and missing.message.startswith(
        'no DMARC record at _dmarc.contoso.com.')
    assert check_dmarc([], expected='v=DMARC1; p=none').status == 'fail'


def test_dmarc_expected_value_compared_with_normalised_white_space_and_case_kept():
    assert parse_dmarc(' v=DMARC1;p = reject ;  rua=mailto:a@b.example; ').render() == \
        'v=DMARC1; p=reject; rua=mailto:a@b.example'
    assert check_dmarc(['v=DMARC1;p=reject'], expected='v=DMARC1; p=reject').status == 'pass'
    out = check_dmarc(['v=DMARC1; p=none'], expected='v=DMARC1; p=reject')
    assert out.status == 'fail'
    assert out.message == 'found v=DMARC1; p=none, expected v=DMARC1; p=reject'


def test_two_dmarc_records_fail():
    out = check_dmarc(['v=DMARC1; p=none', 'v=DMARC1; p=reject'])
    assert out.status == 'fail' and '2 DMARC records' in out.message


# -- MX per pattern -------------------------------------------------------------------------
LEGACY = '10 mail.contoso.com.'


@pytest.mark.parametrize('pattern, primary, found, status', [
    ('full', 'legacy', ['0 ' + EXO], 'pass'),
    ('full', 'legacy', ['0 ' + EXO, LEGACY], 'fail'),
    ('full', 'legacy', [LEGACY], 'fail'),
    ('full', 'legacy', [], 'fail'),
    ('partial', 'legacy', [LEGACY, '20 ' + EXO], 'pass'),
    ('partial', 'legacy', [LEGACY, '0 ' + EXO], 'fail'),
    ('partial', 'legacy', [LEGACY, '10 ' + EXO], 'fail'),
    ('partial', 'exo', [LEGACY, '0 ' + EXO], 'pass'),
    ('partial', 'exo', [LEGACY, '20 ' + EXO], 'fail'),
    ('partial', 'legacy', ['0 ' + EXO], 'fail'),
    ('partial', 'legacy', [LEGACY], 'fail'),
    ('legacy_forward', 'legacy', [LEGACY], 'pass'),
    ('legacy_forward', 'legacy', [LEGACY, '20 ' + EXO], 'warn'),
    ('legacy_forward', 'legacy', [], 'fail'),
    (None, 'legacy', [LEGACY, '20 ' + EXO], 'pass'),
    (None, 'legacy', [LEGACY], 'fail'),
])
def test_mx_expectations(pattern, primary, found, status):
    assert check_mx(found, EXO, pattern, primary).status == status


def test_mx_messages_name_found_and_expected():
    out = check_mx([LEGACY], EXO, 'full')
    assert out.message == 'found 10 mail.contoso.com.; the Exchange Online MX %s is missing' % EXO
    out = check_mx(['0 ' + EXO, LEGACY], EXO, 'full')
    assert out.message == ('found 0 %s, 10 mail.contoso.com.; expected only 0 %s (full: every '
                           'other MX removed)' % (EXO, EXO))
    out = check_mx(['5 ' + EXO], EXO, 'full', preference=0)
    assert out.status == 'fail' and 'with preference 0' in out.message


# -- CNAMEs and verification ----------------------------------------------------------------
def test_cname_and_dkim_and_verification():
    name = 'autodiscover.contoso.com.'
    assert check_cname(name, ['autodiscover.outlook.com.'], 'autodiscover.outlook.com.').status \
        == 'pass'
    assert check_cname(name, [], 'autodiscover.outlook.com.').message == \
        'no CNAME at autodiscover.contoso.com.; expected one to autodiscover.outlook.com.'
    assert 'is a CNAME to old.example.' in check_cname(name, ['old.example.'], 'x.example.').message
    expected = {'selector1._domainkey.contoso.com.': 't1.example.',
                'selector2._domainkey.contoso.com.': 't2.example.'}
    out = check_dkim({'selector1._domainkey.contoso.com.': 't1.example.'}, expected)
    assert out.status == 'fail'
    assert out.found == {'selector1': 't1.example.', 'selector2': None}
    assert out.message == 'selector2._domainkey.contoso.com. is missing, expected a CNAME to ' \
                          't2.example.'
    assert check_dkim(dict(expected), expected).status == 'pass'
    assert check_verification(['MS=ms1', 'v=spf1 -all'], 'MS=ms1').status == 'pass'
    out = check_verification(['MS=ms2'], 'MS=ms1')
    assert out.status == 'fail' and out.message == 'verification TXT MS=ms1 is missing; found MS=ms2'


# -- the whole evaluation -------------------------------------------------------------------
def answers(mx, txt, cname=('autodiscover.outlook.com.',), dmarc=()):
    return {(D, 'MX'): Observed(mx), (D, 'TXT'): Observed(txt),
            ('autodiscover.' + D, 'CNAME'): Observed(list(cname)),
            ('_dmarc.' + D, 'TXT'): Observed(list(dmarc))}


def test_evaluate_per_server_and_failure_message():
    expect = Expectation(Spec(D), 'full')
    assert expect.checks == ['mx', 'autodiscover', 'spf', 'dmarc']
    good = answers(['0 ' + EXO], ['v=spf1 include:%s -all' % INC])
    stale = answers([LEGACY], ['v=spf1 include:%s -all' % INC], cname=())
    down = dict((q, Observed(error='no answer from 192.0.2.2 port 53 within 1.0 s (2 tries)'))
                for q in good)
    checks = evaluate(expect, {'ns1': good, 'ns2': stale, 'ns3': down}, no_dns)
    by_name = dict((c['name'], c) for c in checks)
    assert by_name['mx']['status'] == 'fail'
    assert by_name['mx']['servers']['ns1']['status'] == 'pass'
    assert by_name['mx']['servers']['ns2']['found'] == [LEGACY]
    assert by_name['mx']['expected'] == 'only %s' % EXO
    assert by_name['spf']['servers']['ns1']['lookups'] == 1
    assert by_name['dmarc']['servers']['ns1']['status'] == 'warn'
    msg = failure_message(D, checks, 3, 10.04, 10)
    assert msg.startswith('contoso.com.: 4 check(s) failed after 3 round(s) in 10.0 s. ')
    once = failure_message(D, checks, 1, 0.01, 0)
    assert once.startswith('contoso.com.: 4 check(s) failed. mx failed on ns2: ')
    assert 'set wait_timeout, or repeat the task with until and retries' in once
    assert 'mx failed on ns2: found 10 mail.contoso.com.; the Exchange Online MX' in msg
    assert 'ns3: no answer from 192.0.2.2' in msg
    assert 'check nameservers, port and firewalls' in msg and 'raise wait_timeout' in msg
    ok = evaluate(expect, {'ns1': good}, no_dns)
    assert [c['status'] for c in ok] == ['pass', 'pass', 'pass', 'warn']


def test_behind_and_summary_name_what_each_failing_server_serves():
    """The one line a round of waiting prints: per server that fails, what it serves for each
    failing check; a server that did not answer, why, once."""
    spec = Spec(D, dkim={'selector1': 't1.example', 'selector2': 't2.example'},
                verification_txt='MS=ms1', dmarc='v=DMARC1; p=reject')
    expect = Expectation(spec, 'full')
    good = answers(['0 ' + EXO], ['v=spf1 include:%s -all' % INC, 'MS=ms1'],
                   dmarc=['v=DMARC1; p=reject'])
    good.update({('selector1._domainkey.' + D, 'CNAME'): Observed(['t1.example.']),
                 ('selector2._domainkey.' + D, 'CNAME'): Observed(['t2.example.'])})
    stale = dict(good)
    stale.update({(D, 'MX'): Observed([LEGACY]), (D, 'TXT'): Observed(['MS=ms0', 'x' * 300]),
                  ('autodiscover.' + D, 'CNAME'): Observed([]),
                  ('_dmarc.' + D, 'TXT'): Observed(['v=DMARC1; p=none']),
                  ('selector2._domainkey.' + D, 'CNAME'): Observed([])})
    down = dict((q, Observed(error='no answer from 192.0.2.2 port 53 within 1.0 s (2 tries)'))
                for q in good)
    judged = judge_all(expect, {'ns1': good, 'ns2': stale, 'ns3': down}, no_dns)
    assert behind(judged) == {
        'ns2': ['MX 10 mail.contoso.com.', 'no autodiscover CNAME', 'no SPF record',
                'DMARC "v=DMARC1; p=none"', 'DKIM selector1 CNAME t1.example., selector2 missing',
                'TXT MS=ms0'],
        'ns3': ['no answer from 192.0.2.2 port 53 within 1.0 s (2 tries)']}
    assert summary_line(judged) == (
        '2 of 3 servers behind: ns2 serves MX 10 mail.contoso.com., no autodiscover CNAME, no '
        'SPF record, DMARC "v=DMARC1; p=none", DKIM selector1 CNAME t1.example., selector2 '
        'missing, TXT MS=ms0; ns3: no answer from 192.0.2.2 port 53 within 1.0 s (2 tries)')
    # A long value is cut; every check passing is said so.
    long_spf = 'v=spf1 ' + ' '.join('ip4:192.0.2.%d' % i for i in range(40)) + ' -all'
    judged = judge_all(Expectation(Spec(D), 'full', ['spf']),
                       {'ns1': {(D, 'TXT'): Observed([long_spf])}}, no_dns)
    shown, = behind(judged)['ns1']
    assert len(shown) == len('SPF ""') + 100 and shown.endswith('..."')
    assert summary_line(judge_all(expect, {'ns1': good}, no_dns)) == \
        '1 of 1 server serves the expected records'


def test_unchecked_servers_are_skipped_not_failed():
    expect = Expectation(Spec(D), 'full', ['mx'])
    skipped = {(D, 'MX'): Observed(error='not checked: no route', unchecked=True)}
    checks = evaluate(expect, {'ns1': answers(['0 ' + EXO], []), 'v6': skipped}, no_dns)
    assert checks[0]['status'] == 'pass'
    assert checks[0]['servers']['v6']['status'] == 'skip'


def test_expectation_checks_and_inputs():
    spec = Spec(D, dkim={'selector1': 't1.example'}, verification_txt='MS=ms1')
    assert Expectation(spec).checks == ['mx', 'autodiscover', 'spf', 'dmarc', 'dkim',
                                        'verification']
    assert Expectation(spec, checks=['spf', 'mx']).questions() == [(D, 'MX'), (D, 'TXT')]
    with pytest.raises(RecordError, match='checks has dkim, but there is no expected value'):
        Expectation(Spec(D), checks=['dkim'])
    with pytest.raises(RecordError, match='is not a valid DMARC record'):
        Expectation(Spec(D, dmarc='v=DMARC1; pct=5'))


# -- _dns_transport: server parsing, and the wait loop (_poll) ----------------------------
@pytest.mark.parametrize('text, expected', [
    ('ns1.contoso.com', ('ns1.contoso.com', 53)),
    ('ns1.contoso.com:5353', ('ns1.contoso.com', 5353)),
    ('192.0.2.1', ('192.0.2.1', 53)),
    ('192.0.2.1:54', ('192.0.2.1', 54)),
    ('2001:db8::53', ('2001:db8::53', 53)),
    ('[2001:db8::53]', ('2001:db8::53', 53)),
    ('[2001:db8::53]:5300', ('2001:db8::53', 5300)),
])
def test_split_host_port(text, expected):
    assert split_host_port(text, 53) == expected


@pytest.mark.parametrize('text', ['', 'host:port', 'host:70000', '[ns1]:53', '[2001:db8::1',
                                  'ns1:zz:1'])
def test_split_host_port_rejects(text):
    with pytest.raises(RecordError):
        split_host_port(text, 53)


def test_poll_backs_off_capped_with_jitter_and_stops_at_the_deadline():
    fake = FakeClock()
    value, rounds, elapsed = poll(lambda: (False, 'v'), 20, 1, 4, clock=fake.clock,
                                  sleep=fake.sleep)
    assert value == 'v'
    for got, nominal in zip(fake.slept, [1, 2, 4, 4, 4]):
        assert 0.9 * nominal <= got <= 1.1 * nominal
    assert len(set(fake.slept[2:5])) == 3  # jittered: not the same 4 s pause every time
    assert sum(fake.slept) == pytest.approx(20) and elapsed == pytest.approx(20)
    assert rounds == len(fake.slept) + 1


def test_poll_stops_when_done_and_zero_timeout_is_one_round():
    fake = FakeClock()
    results = iter([(False, 1), (False, 2), (True, 3)])
    value, rounds, elapsed = poll(lambda: next(results), 60, 0.5, 10, clock=fake.clock,
                                  sleep=fake.sleep)
    assert (value, rounds) == (3, 3) and 1.35 <= elapsed <= 1.65
    assert poll(lambda: (False, 0), 0, clock=fake.clock, sleep=fake.sleep) == (0, 1, 0)


def test_poll_pauses_first_when_asked_within_the_deadline():
    fake = FakeClock()
    results = iter([(False, 1), (True, 2)])
    value, rounds, elapsed = poll(lambda: next(results), 3, 1, 1, clock=fake.clock,
                                  sleep=fake.sleep, first=0.2)
    assert (value, rounds) == (2, 2) and fake.slept[0] == 0.2 and 1.1 <= elapsed <= 1.3
    fake = FakeClock()
    assert poll(lambda: (False, 0), 0.1, clock=fake.clock, sleep=fake.sleep, first=5)[1] == 1
    assert fake.slept == [0.1]
