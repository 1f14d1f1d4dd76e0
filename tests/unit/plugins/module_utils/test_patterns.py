"""The planner, without a network: examples and properties (plan -> apply -> re-plan is empty)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_policy import (
    Spec,
    exo_mx_host,
    is_exo_mx,
    options_from_records,
    spf_merge,
    spf_remove_include,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import (
    apply_plan,
    plan_changes,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RRset, RecordError

D = 'contoso.com.'


def zone(*rrsets):
    return dict((r.key, r) for r in rrsets)


def legacy_zone():
    return zone(
        RRset(D, 'MX', 3600, ['10 mail.contoso.com.']),
        RRset(D, 'TXT', 3600, ['v=spf1 ip4:192.0.2.0/24 include:_spf.old.example ~all',
                               'google-site-verification=abc']),
        RRset(D, 'NS', 3600, ['ns1.contoso.com.']),
    )


def values(plan, name, rdtype):
    rr = plan.desired.get((name, rdtype))
    return rr.sorted_values() if rr is not None else None


# -- examples -------------------------------------------------------------------------------
def test_exo_mx_host_dots_to_dashes():
    assert exo_mx_host('contoso.com.') == 'contoso-com.mail.protection.outlook.com.'
    assert exo_mx_host('xn--bcher-kva.de.') == 'xn--bcher-kva-de.mail.protection.outlook.com.'
    assert is_exo_mx('contoso-com.mail.protection.outlook.com')
    assert is_exo_mx('contoso-com.r-v1.mx.microsoft.')
    assert not is_exo_mx('mail.contoso.com.')


def test_full_replaces_mx_and_merges_spf():
    plan = plan_changes(Spec(D, 'full'), legacy_zone())
    assert values(plan, D, 'MX') == ['0 contoso-com.mail.protection.outlook.com.']
    assert values(plan, D, 'TXT') == [
        'google-site-verification=abc',
        'v=spf1 ip4:192.0.2.0/24 include:_spf.old.example include:spf.protection.outlook.com ~all']
    assert values(plan, 'autodiscover.' + D, 'CNAME') == ['autodiscover.outlook.com.']
    assert not any(c.key[1] in ('NS', 'SOA') for c in plan.changes)


def test_partial_keeps_legacy_preferred():
    plan = plan_changes(Spec(D, 'partial'), legacy_zone())
    assert values(plan, D, 'MX') == ['10 mail.contoso.com.',
                                     '20 contoso-com.mail.protection.outlook.com.']


def test_partial_primary_exo():
    plan = plan_changes(Spec(D, 'partial', primary='exo'), legacy_zone())
    assert values(plan, D, 'MX') == ['0 contoso-com.mail.protection.outlook.com.',
                                     '10 mail.contoso.com.']


def test_partial_without_legacy_mx_fails():
    with pytest.raises(RecordError) as e:
        plan_changes(Spec(D, 'partial'), zone(RRset(D, 'TXT', 300, ['x'])))
    assert 'Give legacy_mx or use pattern: full' in str(e.value)


def test_legacy_forward_leaves_mx():
    plan = plan_changes(Spec(D, 'legacy_forward'), legacy_zone())
    assert (D, 'MX') not in plan.desired
    assert values(plan, 'autodiscover.' + D, 'CNAME') == ['autodiscover.outlook.com.']


def test_two_spf_records_fail_unless_replace():
    z = legacy_zone()
    z[(D, 'TXT')] = RRset(D, 'TXT', 3600, ['v=spf1 a -all', 'v=spf1 mx -all', 'other'])
    with pytest.raises(RecordError) as e:
        plan_changes(Spec(D, 'full'), z)
    assert 'RFC 7208' in str(e.value)
    plan = plan_changes(Spec(D, 'full', spf='replace'), z)
    assert values(plan, D, 'TXT') == ['other', 'v=spf1 include:spf.protection.outlook.com -all']


def test_spf_keep_leaves_txt_alone():
    plan = plan_changes(Spec(D, 'full', spf='keep'), legacy_zone())
    assert (D, 'TXT') not in plan.desired


def test_new_spf_when_none():
    plan = plan_changes(Spec(D, 'partial'), zone(RRset(D, 'MX', 3600, ['10 mx.contoso.com.'])))
    assert values(plan, D, 'TXT') == ['v=spf1 include:spf.protection.outlook.com ~all']
    assert any('no SPF record' in w for w in plan.warnings)


@pytest.mark.parametrize('before, after', [
    ('v=spf1 -all', 'v=spf1 include:spf.protection.outlook.com -all'),
    ('v=spf1 mx', 'v=spf1 mx include:spf.protection.outlook.com'),
    ('v=spf1 a redirect=_spf.example.net', 'v=spf1 a include:spf.protection.outlook.com redirect=_spf.example.net'),
    ('v=spf1 include:SPF.Protection.Outlook.com ~all', 'v=spf1 include:SPF.Protection.Outlook.com ~all'),
    ('v=spf1 ip6:2001:db8::/32 ?all exp=explain.example', 'v=spf1 ip6:2001:db8::/32 include:spf.protection.outlook.com ?all exp=explain.example'),
])
def test_spf_merge_examples(before, after):
    assert spf_merge(before, 'spf.protection.outlook.com') == after


def test_spf_all_replaces_qualifier():
    assert spf_merge('v=spf1 mx ~all', 'spf.protection.outlook.com', '-all') == \
        'v=spf1 mx include:spf.protection.outlook.com -all'


def test_spf_remove_include():
    assert spf_remove_include('v=spf1 mx include:spf.protection.outlook.com -all',
                              'spf.protection.outlook.com') == 'v=spf1 mx -all'
    assert spf_remove_include('v=spf1 include:spf.protection.outlook.com -all',
                              'spf.protection.outlook.com') is None


def test_cname_conflicts():
    z = legacy_zone()
    z[('autodiscover.' + D, 'A')] = RRset('autodiscover.' + D, 'A', 300, ['192.0.2.1'])
    with pytest.raises(RecordError) as e:
        plan_changes(Spec(D, 'full'), z)
    assert 'autodiscover.contoso.com.: has A 192.0.2.1' in str(e.value)
    plan = plan_changes(Spec(D, 'full', on_conflict='replace'), z)
    assert [c.action for c in plan.changes if c.key[0] == 'autodiscover.' + D] == ['delete', 'create']


def test_cname_to_elsewhere_is_a_conflict():
    z = legacy_zone()
    z[('autodiscover.' + D, 'CNAME')] = RRset('autodiscover.' + D, 'CNAME', 300, ['mail.contoso.com.'])
    with pytest.raises(RecordError):
        plan_changes(Spec(D, 'full'), z)
    plan = plan_changes(Spec(D, 'full', on_conflict='replace'), z)
    assert values(plan, 'autodiscover.' + D, 'CNAME') == ['autodiscover.outlook.com.']


def test_delegated_autodiscover_is_refused_even_with_replace():
    z = legacy_zone()
    z[('autodiscover.' + D, 'NS')] = RRset('autodiscover.' + D, 'NS', 300, ['ns.other.net.'])
    with pytest.raises(RecordError) as e:
        plan_changes(Spec(D, 'full', on_conflict='replace'), z)
    assert 'delegation' in str(e.value)


def test_dmarc_conflict():
    z = legacy_zone()
    z[('_dmarc.' + D, 'TXT')] = RRset('_dmarc.' + D, 'TXT', 300, ['v=DMARC1; p=none'])
    with pytest.raises(RecordError):
        plan_changes(Spec(D, 'full', dmarc='v=DMARC1; p=reject'), z)
    plan = plan_changes(Spec(D, 'full', dmarc='v=DMARC1; p=reject', on_conflict='replace'), z)
    assert values(plan, '_dmarc.' + D, 'TXT') == ['v=DMARC1; p=reject']


def test_ttl_only_difference_is_a_change():
    z = legacy_zone()
    plan = plan_changes(Spec(D, 'full'), z)
    z2 = apply_plan(z, plan)
    assert not plan_changes(Spec(D, 'full'), z2).changed
    plan = plan_changes(Spec(D, 'full', ttl=300), z2)
    assert sorted(c.action for c in plan.changes) == ['update', 'update', 'update']


@pytest.mark.parametrize('kwargs, message', [
    (dict(domain='bad..name', pattern='full'), 'empty label'),
    (dict(domain='x' * 64 + '.com', pattern='full'), '63 octets'),
    (dict(domain=D, pattern='both'), 'unknown pattern'),
    (dict(domain=D, pattern='full', verification_txt='"MS=ms1"'), 'double quote'),
    (dict(domain=D, pattern='full', spf_include='include:spf.protection.outlook.com'), 'domain name'),
    (dict(domain=D, pattern='full', dmarc='p=reject'), 'v=DMARC1'),
    (dict(domain=D, pattern='full', mx_preference=70000), '65535'),
    (dict(domain=D, pattern='partial', legacy_mx=[]), 'legacy_mx is empty'),
    (dict(domain=D, pattern='full', mx_host='-bad-.example.com'), 'not a valid host name'),
])
def test_bad_input(kwargs, message):
    with pytest.raises(RecordError) as e:
        Spec(**kwargs)
    assert message in str(e.value)


def test_options_from_records_graph_shapes():
    records = [
        {'name': 'contoso.com', 'type': 'MX', 'ttl': 3600,
         'values': ['0 contoso-com.r-v1.mx.microsoft']},
        {'name': 'contoso.com', 'type': 'TXT', 'ttl': 3600,
         'values': ['v=spf1 include:spf.protection.outlook.com -all']},
        {'name': 'autodiscover.contoso.com', 'type': 'CNAME', 'ttl': 3600,
         'values': ['autodiscover.outlook.com']},
        {'name': 'selector1._domainkey.contoso.com', 'type': 'CNAME', 'ttl': 3600,
         'values': ['selector1-contoso-com._domainkey.contoso.onmicrosoft.com']},
    ]
    assert options_from_records(records) == {  # names absolute, as the planner compares them
        'mx_host': 'contoso-com.r-v1.mx.microsoft.',
        'spf_include': 'spf.protection.outlook.com',
        'autodiscover_target': 'autodiscover.outlook.com.',
        'dkim': {'selector1': 'selector1-contoso-com._domainkey.contoso.onmicrosoft.com.'},
    }


@pytest.mark.parametrize('records, message', [
    ('not a list', 'records must be a list'),
    ([{'name': 'contoso.com', 'type': 'MX', 'values': ['']}], 'records[0]: MX value'),
    ([{'name': 'contoso.com', 'type': 'MX', 'values': []}], 'records[0].values'),
    ([{'name': 'contoso.com', 'type': 'MX', 'values': [7]}], 'records[0].values'),
    ([{'name': 'contoso.com', 'type': 'MX', 'ttl': 'abc', 'values': ['0 a.example']}],
     'records[0].ttl must be a whole number'),
    ([{'name': 'contoso.com', 'type': 'MX', 'ttl': -1, 'values': ['0 a.example']}],
     'records[0].ttl must be from 0'),
    ([{'name': 'contoso..com', 'type': 'TXT', 'values': ['x']}], 'records[0].name'),
    ([{'name': 'contoso.com', 'type': 'CNAME', 'values': ['bad host']}], 'records[0] CNAME target'),
    ([{'name': 'contoso.com', 'type': 'TXT', 'values': ['"quoted"']}], 'records[0] TXT value'),
    (['x'], 'records[0] needs name and type'),
])
def test_options_from_records_names_the_bad_entry(records, message):
    with pytest.raises(RecordError) as e:
        options_from_records(records)
    assert message in str(e.value)


# -- properties -----------------------------------------------------------------------------
label = st.text(alphabet='abcdefghijklmnopqrstuvwxyz0123456789', min_size=1, max_size=12)
host = st.builds(lambda a, b: '%s.%s.example.' % (a, b), label, label)
exo_host = st.sampled_from(['contoso-com.mail.protection.outlook.com.',
                            'contoso-com.q-v1.mx.microsoft.'])
mx_values = st.lists(st.tuples(st.integers(0, 100), st.one_of(host, exo_host)),
                     min_size=0, max_size=4, unique_by=lambda t: t[1])
mechanism = st.one_of(
    st.builds(lambda a: 'ip4:192.0.2.%d' % a, st.integers(0, 255)),
    st.builds(lambda h: 'include:' + h.rstrip('.'), host),
    st.sampled_from(['a', 'mx', 'include:spf.protection.outlook.com', '~include:x.example']),
)
spf_value = st.builds(
    lambda mechs, tail: ' '.join(['v=spf1'] + mechs + ([tail] if tail else [])),
    st.lists(mechanism, max_size=40), st.sampled_from(['-all', '~all', '?all', None,
                                                      'redirect=_spf.example.net']))
other_txt = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126,
                                           blacklist_characters='"\\'), min_size=1, max_size=400)
txt_values = st.lists(st.one_of(other_txt, spf_value), max_size=4, unique=True)
ttl = st.sampled_from([None, 60, 300, 3600])


@st.composite
def scenario(draw):
    current = {}
    mx = draw(mx_values)
    if mx:
        current[(D, 'MX')] = RRset(D, 'MX', draw(st.sampled_from([300, 3600])),
                                   ['%d %s' % v for v in mx])
    txt = draw(txt_values)
    if txt:
        current[(D, 'TXT')] = RRset(D, 'TXT', 3600, txt)
    auto = 'autodiscover.' + D
    choice = draw(st.sampled_from(['none', 'exo', 'other', 'a']))
    if choice == 'exo':
        current[(auto, 'CNAME')] = RRset(auto, 'CNAME', 3600, ['autodiscover.outlook.com.'])
    elif choice == 'other':
        current[(auto, 'CNAME')] = RRset(auto, 'CNAME', 3600, ['mail.contoso.com.'])
    elif choice == 'a':
        current[(auto, 'A')] = RRset(auto, 'A', 3600, ['192.0.2.7'])
    spec = dict(
        pattern=draw(st.sampled_from(['full', 'partial', 'legacy_forward'])),
        state=draw(st.sampled_from(['present', 'present', 'absent'])),
        primary=draw(st.sampled_from(['legacy', 'exo'])),
        spf=draw(st.sampled_from(['merge', 'replace', 'keep'])),
        spf_all=draw(st.sampled_from([None, '-all', '~all'])),
        ttl=draw(ttl),
        on_conflict=draw(st.sampled_from(['fail', 'replace'])),
        dkim=draw(st.sampled_from([None, {'selector1': 's1.contoso._domainkey.t.onmicrosoft.com'}])),
        dmarc=draw(st.sampled_from([None, 'v=DMARC1; p=none'])),
        verification_txt=draw(st.sampled_from([None, 'MS=ms12345678'])),
    )
    return current, spec


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_plan_apply_replan_is_empty(case):
    current, kwargs = case
    spec = Spec(D, **kwargs)
    try:
        plan = plan_changes(spec, current)
    except RecordError:
        assume(False)
        return
    after = apply_plan(current, plan)
    again = plan_changes(spec, after)
    assert again.changes == [], [c.to_dict() for c in again.changes]
    # Never SOA/NS, and only names the spec owns.
    assert all(c.key[1] not in ('SOA', 'NS') for c in plan.changes)
    assert all(c.key[0] in spec.names() for c in plan.changes)
    # Every TXT value other than SPF/DMARC/verification survives.
    if (D, 'TXT') in current:
        kept = set(after.get((D, 'TXT'), RRset(D, 'TXT', 0)).values)
        for v in current[(D, 'TXT')].values:
            if not v.lower().startswith('v=spf1'):
                assert v in kept or (kwargs['state'] == 'absent' and v == kwargs['verification_txt'])
    # merge keeps every mechanism of the one SPF record.
    if kwargs['spf'] == 'merge' and kwargs['state'] == 'present' and (D, 'TXT') in current:
        spfs = [v for v in current[(D, 'TXT')].values if v.lower().startswith('v=spf1')]
        if len(spfs) == 1:
            new = [v for v in after[(D, 'TXT')].values if v.lower().startswith('v=spf1')]
            assert len(new) == 1
            old_terms = [t for t in spfs[0].split() if not t.lower().lstrip('+-~?') == 'all']
            for t in old_terms:
                assert t in new[0].split()
            assert 'include:spf.protection.outlook.com' in new[0].lower().split() or \
                'include:spf.protection.outlook.com' in spfs[0].lower().split()


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_partial_mx_order_follows_primary(case):
    current, kwargs = case
    kwargs.update(pattern='partial', state='present')
    try:
        plan = plan_changes(Spec(D, **kwargs), current)
    except RecordError:
        assume(False)
        return
    mx = apply_plan(current, plan)[(D, 'MX')]
    prefs = dict((v.split()[1], int(v.split()[0])) for v in mx.values)
    exo = [p for h, p in prefs.items() if is_exo_mx(h)]
    legacy = [p for h, p in prefs.items() if not is_exo_mx(h)]
    assert len(exo) == 1 and legacy
    if kwargs['primary'] == 'legacy':
        assert exo[0] > min(legacy)
    else:
        assert exo[0] < min(legacy)


def test_pattern_none_publishes_only_given_records():
    plan = plan_changes(Spec(D, 'none', verification_txt='MS=ms12345678', dkim={
        'selector1': 'selector1-contoso-com._domainkey.contoso.onmicrosoft.com'}), legacy_zone())
    assert sorted(c.key for c in plan.changes) == [
        (D, 'TXT'), ('selector1._domainkey.' + D, 'CNAME')]
    assert values(plan, D, 'TXT') == sorted(['google-site-verification=abc', 'MS=ms12345678',
                                             'v=spf1 ip4:192.0.2.0/24 include:_spf.old.example ~all'])
    assert not plan_changes(Spec(D, 'none'), legacy_zone()).changed


# -- found in review ------------------------------------------------------------------------
def test_dnssec_records_never_conflict_with_a_cname():
    z = legacy_zone()
    auto = 'autodiscover.' + D
    z[(auto, 'RRSIG')] = RRset(auto, 'RRSIG', 300, ['sig'])
    z[(auto, 'NSEC')] = RRset(auto, 'NSEC', 300, ['next'])
    z[(auto, 'CNAME')] = RRset(auto, 'CNAME', 3600, ['autodiscover.outlook.com.'])
    plan = plan_changes(Spec(D, 'full'), z)
    assert not [c for c in plan.changes if c.key[0] == auto]


@pytest.mark.parametrize('before, after', [
    ('v=spf1 -include:spf.protection.outlook.com ~all', 'v=spf1 include:spf.protection.outlook.com ~all'),
    ('v=spf1 mx ?include:SPF.protection.outlook.com -all', 'v=spf1 mx include:spf.protection.outlook.com -all'),
    ('v=spf1  mx   include:spf.protection.outlook.com  ~all', 'v=spf1  mx   include:spf.protection.outlook.com  ~all'),
    ('v=spf1 +include:spf.protection.outlook.com -all', 'v=spf1 +include:spf.protection.outlook.com -all'),
])
def test_spf_failing_qualifier_on_the_include_is_fixed(before, after):
    assert spf_merge(before, 'spf.protection.outlook.com') == after


def test_absent_finds_exchange_dkim_selectors_without_being_told():
    names = Spec(D, 'full', state='absent').names()
    assert 'selector1._domainkey.' + D in names and 'selector2._domainkey.' + D in names
    z = legacy_zone()
    sel = 'selector1._domainkey.' + D
    z[(sel, 'CNAME')] = RRset(sel, 'CNAME', 3600,
                              ['selector1-contoso-com._domainkey.contoso.onmicrosoft.com.'])
    plan = plan_changes(Spec(D, 'full', state='absent'), z)
    assert (sel, 'CNAME') in [c.key for c in plan.changes if c.action == 'delete']
