"""The pure parts of MTA-STS (RFC 8461) and TLS-RPT (RFC 8460): matching, the policy and its id,
the records, the planner's changes and the check's verdict."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._checks import (
    FAIL,
    PASS,
    WARN,
    check_mta_sts,
    check_tls_rpt,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_policy import Spec
from ansible_collections.exchangeonline.mail.plugins.module_utils._mta_sts import (
    MtaStsWanted,
    Policy,
    TlsRptWanted,
    mx_matches,
    parse_policy,
    parse_sts_record,
    parse_tlsrpt_record,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import plan_changes
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    RecordError,
    RRset,
)

D = 'contoso.test.'
EXO = 'contoso-test.mail.protection.outlook.com'


@pytest.mark.parametrize('host,pattern,matches', [
    ('mail.contoso.test', 'mail.contoso.test', True),
    ('MAIL.contoso.test.', 'mail.contoso.test', True),
    ('x.h-v1.mx.microsoft', '*.mx.microsoft', False),   # the example: one label only
    ('x.h-v1.mx.microsoft', '*.h-v1.mx.microsoft', True),
    ('h-v1.mx.microsoft', '*.h-v1.mx.microsoft', False),  # the wildcard needs a label
    ('contoso-test.mail.protection.outlook.com', '*.mail.protection.outlook.com', True),
    ('mail.contoso.test', 'contoso.test', False),
])
def test_mx_matching_follows_rfc_8461_section_4_1(host, pattern, matches):
    assert mx_matches(host, pattern) is matches


def test_the_policy_text_and_id_change_together():
    a = Policy('enforce', 604800, [EXO])
    assert a.text() == 'version: STSv1\r\nmode: enforce\r\nmx: %s\r\nmax_age: 604800\r\n' % EXO
    assert parse_policy(a.text())[0] == a
    same = Policy('enforce', 604800, [EXO.upper() + '.'])
    assert same.policy_id() == a.policy_id() and 1 <= len(a.policy_id()) <= 32
    assert Policy('testing', 604800, [EXO]).policy_id() != a.policy_id()
    assert Policy('enforce', 86400, [EXO]).policy_id() != a.policy_id()
    assert parse_sts_record(a.record()) == (a.policy_id(), [])


@pytest.mark.parametrize('text,problem', [
    ('version: STSv1\nmode: enforce\nmax_age: 86400\n', 'no mx line'),
    ('version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 86400\n', 'version must be STSv1'),
    ('version: STSv1\nmode: strict\nmx: a.test\nmax_age: 86400\n', 'mode must be'),
    ('version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557601\n', 'max_age must be'),
    ('version: STSv1\nmode: enforce\nmode: testing\nmx: a.test\nmax_age: 1\n', 'mode is given 2'),
    ('version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 1\n', 'whole leftmost label'),
    ('<html>not found</html>', 'is not "key: value"'),
])
def test_a_policy_senders_cannot_use_says_why(text, problem):
    policy, problems = parse_policy(text)
    assert policy is None
    assert problem in '; '.join(problems)


def test_unknown_fields_and_lf_lines_are_accepted():
    policy, problems = parse_policy('version: STSv1\nmode: testing\nmx: a.test\nmx: *.b.test\n'
                                    'max_age: 0\nextension: x\n')
    assert problems == [] and policy.mx == ('*.b.test', 'a.test') and policy.mode == 'testing'
    assert parse_policy('version: STSv1\r\nmode: none\r\nmax_age: 0\r\n')[0].mode == 'none'


def test_only_records_that_begin_with_the_version_count():
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mta_sts import (
        is_sts_record, is_tlsrpt_record, same_rua)
    assert is_sts_record('v=STSv1; id=1') and is_sts_record('v=STSv1 ;id=1')
    assert not is_sts_record('v=STSv10; id=1') and not is_sts_record(' v=STSv1; id=1')
    assert is_tlsrpt_record('v=TLSRPTv1;rua=mailto:a@b.test')
    assert not is_tlsrpt_record('v=TLSRPTv10; rua=mailto:a@b.test')
    fetch = fetcher(Policy('testing', 604800, [EXO]).text())
    assert check_mta_sts(['v=STSv10; id=abc', Policy('testing', 604800, [EXO]).record()],
                         ['0 %s.' % EXO], D, fetch).status == PASS
    # case is folded where it has none: scheme, mail domain, web host; never a path
    assert same_rua(['mailto:tls@Contoso.TEST'], ['MAILTO:tls@contoso.test'])
    assert not same_rua(['mailto:TLS@contoso.test'], ['mailto:tls@contoso.test'])
    assert same_rua(['https://R.example/v1'], ['https://r.example/v1'])
    assert not same_rua(['https://r.example/Path'], ['https://r.example/path'])


def test_an_enforce_policy_names_the_mx_a_move_removes_too():
    spec = Spec(D, pattern='full', mta_sts={'mode': 'enforce'})
    plan = plan_changes(spec, current_zone())
    assert plan.mta_sts.mx == (EXO, 'mail.contoso.test')
    assert any('names the MX host(s) this run removes (mail.contoso.test) too' in w
               for w in plan.warnings)
    testing = plan_changes(Spec(D, pattern='full', mta_sts={'mode': 'testing'}), current_zone())
    assert testing.mta_sts.mx == (EXO,)


@pytest.mark.parametrize('value,problem', [
    ('v=STSv1;', 'id must be'),
    ('v=STSv1; id = abc', 'white space around'),
    ('v=STSv1; id=2024-01-01', 'id must be'),
    ('v=STSv1; id=%s' % ('a' * 33), 'id must be'),
    ('v=STSv1; id=a; id=b', 'given once'),
])
def test_bad_sts_records(value, problem):
    assert problem in '; '.join(parse_sts_record(value)[1])


def test_wanted_policy_in_enforce_must_match_every_mx():
    wanted = MtaStsWanted({'mode': 'enforce', 'mx': ['*.mx.microsoft']})
    with pytest.raises(RecordError, match='no pattern that matches the MX host'):
        wanted.policy_for(['x.h-v1.mx.microsoft.'], D)
    testing = MtaStsWanted({'mode': 'testing', 'mx': ['*.mx.microsoft']})
    policy, warnings = testing.policy_for(['x.h-v1.mx.microsoft.'], D)
    assert policy.mx == ('*.mx.microsoft',) and 'once the policy is in mode enforce' in warnings[0]
    with pytest.raises(RecordError, match='no MX host'):
        MtaStsWanted({'mode': 'enforce'}).policy_for([], D)


@pytest.mark.parametrize('option,problem', [
    ({'mode': 'strict'}, 'mode must be'),
    ({'max_age': 31557601}, 'max_age must be'),
    ({'max_age': True}, 'max_age must be'),
    ({'mx': 'a.test'}, 'must be a list'),
    ({'mx': ['a.*.test']}, 'whole leftmost label'),
    ({'mx': ['*.test']}, 'at least two labels'),
    ({'mx': [], 'mode': 'enforce'}, 'is empty'),
    ({'colour': 'blue'}, 'unknown keys: colour'),
])
def test_bad_mta_sts_options(option, problem):
    with pytest.raises(RecordError, match=problem):
        MtaStsWanted(option)


def test_tls_rpt_destinations():
    wanted = TlsRptWanted(['tls@contoso.test', 'https://reports.contoso.test/v1'])
    assert wanted.record() == 'v=TLSRPTv1; rua=mailto:tls@contoso.test,https://reports.contoso.test/v1'
    assert parse_tlsrpt_record(wanted.record()) == (wanted.rua, [])
    for bad in (['tls'], ['ftp://x.test/r'], ['mailto:a@b.test,c@d.test'], []):
        with pytest.raises(RecordError):
            TlsRptWanted(bad)
    assert 'rua must be given once' in parse_tlsrpt_record('v=TLSRPTv1;')[1][0]


def current_zone(extra=None):
    zone = {(D, 'MX'): RRset(D, 'MX', 3600, values=['10 mail.contoso.test.'])}
    for name, values in (extra or {}).items():
        zone[(name, 'TXT')] = RRset(name, 'TXT', 300, values=values)
    return zone


def test_the_planner_names_the_mx_after_the_run_and_keeps_other_txt():
    spec = Spec(D, pattern='partial', mta_sts={'mode': 'enforce'}, tls_rpt=['tls@contoso.test'])
    plan = plan_changes(spec, current_zone({'_mta-sts.' + D: ['v=STSv1; id=old', 'other']}))
    assert plan.mta_sts.mx == (EXO, 'mail.contoso.test')
    after = dict((c.key, c.after) for c in plan.changes)
    assert sorted(after[('_mta-sts.' + D, 'TXT')].values) == sorted(
        ['other', plan.mta_sts.record()])
    assert after[('_mta-sts.' + D, 'TXT')].ttl == 300
    # Applied, the same run plans nothing more for either record.
    applied = current_zone({'_mta-sts.' + D: ['other', plan.mta_sts.record()],
                            '_smtp._tls.' + D: ['v=TLSRPTv1;rua=mailto:tls@contoso.test']})
    applied[(D, 'MX')] = after[(D, 'MX')]
    again = plan_changes(spec, applied)
    assert [c.key for c in again.changes if c.key[0].startswith('_')] == []


def test_the_planner_warns_when_the_mx_moves_under_a_policy():
    spec = Spec(D, pattern='full')
    plan = plan_changes(spec, current_zone({'_mta-sts.' + D: ['v=STSv1; id=20240101']}))
    assert any('publishes MTA-STS' in w for w in plan.warnings)
    assert not any(c.key[0].startswith('_mta-sts') for c in plan.changes)
    absent = plan_changes(Spec(D, state='absent'), {
        (D, 'MX'): RRset(D, 'MX', 3600, values=['0 %s.' % EXO, '10 mail.contoso.test.']),
        ('_mta-sts.' + D, 'TXT'): RRset('_mta-sts.' + D, 'TXT', 300,
                                        values=['v=STSv1; id=20240101'])})
    assert any('left as it is' in w and 'RFC 8461 section 8.3' in w for w in absent.warnings)


def fetcher(text=None, error=None):
    def fetch():
        return text, error
    return fetch


def test_check_mta_sts_verdicts():
    policy = Policy('enforce', 604800, [EXO])
    mx = ['0 %s.' % EXO]
    fetch = fetcher(policy.text())
    assert check_mta_sts([policy.record()], mx, D, fetch).status == PASS
    wanted = MtaStsWanted({'mode': 'enforce'})
    assert check_mta_sts([policy.record()], mx, D, fetch, wanted).status == PASS
    stale = check_mta_sts(['v=STSv1; id=x1'], mx, D, fetch, wanted)
    assert stale.status == FAIL and 'has the id x1' in stale.message
    old = fetcher(Policy('enforce', 604800, ['mail.contoso.test']).text())
    outcome = check_mta_sts([policy.record()], mx, D, old, wanted)
    assert outcome.status == FAIL and 'not %s, the id of the policy served' % Policy(
        'enforce', 604800, ['mail.contoso.test']).policy_id() in outcome.message
    outcome = check_mta_sts([policy.record()], mx, D, fetch, MtaStsWanted({'mode': 'testing'}))
    assert outcome.status == FAIL and 'stale policy (mode enforce' in outcome.message
    # a policy that still names the old MX after a move: a note, not a failure
    both = Policy('enforce', 604800, [EXO, 'mail.contoso.test'])
    outcome = check_mta_sts([both.record()], mx, D, fetcher(both.text()), wanted)
    assert outcome.status == WARN and 'also names mail.contoso.test' in outcome.message
    # delegated by CNAME to a hosted service: the policy is judged, the record is not
    outcome = check_mta_sts([], mx, D, fetch, None, cname='_mta-sts.hosted.example.')
    assert outcome.status == WARN and 'is a CNAME to _mta-sts.hosted.example.' in outcome.message
    assert outcome.found['policy']['mode'] == 'enforce'
    outcome = check_mta_sts(['v=STSv1; id=x1'], mx, D, old)
    assert outcome.status == FAIL and 'senders refuse to deliver there' in outcome.message
    testing = fetcher(Policy('testing', 604800, ['mail.contoso.test']).text())
    assert check_mta_sts(['v=STSv1; id=x1'], mx, D, testing).status == WARN
    down = fetcher(error='no answer')
    outcome = check_mta_sts(['v=STSv1; id=x1'], mx, D, down)
    assert outcome.status == FAIL and 'is published, but no answer' in outcome.message
    assert check_mta_sts([], mx, D, down).status == WARN
    assert check_mta_sts([], mx, D, down, wanted).status == FAIL
    two = check_mta_sts(['v=STSv1; id=a', 'v=STSv1; id=b'], mx, D, down)
    assert two.status == FAIL and 'RFC 8461 section 3.1' in two.message


def test_check_tls_rpt_verdicts():
    wanted = TlsRptWanted(['tls@contoso.test'])
    assert check_tls_rpt(['v=TLSRPTv1; rua=mailto:tls@contoso.test'], D, wanted).status == PASS
    assert check_tls_rpt(['v=TLSRPTv1; rua=mailto:x@contoso.test'], D, wanted).status == FAIL
    assert check_tls_rpt([], D).status == WARN
    assert check_tls_rpt([], D, wanted).status == FAIL
    assert check_tls_rpt(['v=TLSRPTv1; rua=a@b.test'], D).status == FAIL
