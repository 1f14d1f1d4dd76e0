"""The mail DNS policy's parsers: SPF (RFC 7208), DMARC (RFC 7489), MX split, DKIM names, the
merge of explicit options with records. Examples and properties: parse(render(x)) == x, and
white space variants are one record."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_policy import (
    DmarcRecord,
    Spec,
    dkim_name,
    dkim_selector,
    is_spf,
    parse_dmarc,
    parse_spf,
    require_inside,
    spf_has_include,
    spf_includes,
    spf_merge,
    spf_remove_include,
    spf_terms,
    split_mx,
    with_records,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import plan_changes
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RRset, RecordError

D = 'contoso.com.'
EXO = 'contoso-com.mail.protection.outlook.com.'


# -- DMARC ----------------------------------------------------------------------------------
@pytest.mark.parametrize('value', [
    'v=DMARC1; p=reject', 'v = DMARC1 ;p=reject', 'v=DMARC1;p=reject;', ' v=DMARC1\t;\tp = reject ',
    'V=DMARC1; P=reject',
])
def test_dmarc_spellings_are_one_policy(value):
    assert parse_dmarc(value) == parse_dmarc('v=DMARC1; p=reject')
    assert parse_dmarc(value).render().lower() == 'v=dmarc1; p=reject'


@pytest.mark.parametrize('value', [
    'p=reject; v=DMARC1', 'v=DMARC2; p=reject', 'v=spf1 -all', 'vv=DMARC1; p=none', '', 'v',
    'v=DMARC1x; p=none',
])
def test_not_dmarc(value):
    assert parse_dmarc(value) is None


def test_dmarc_version_in_another_case_is_a_dmarc_record_with_a_problem():
    record = parse_dmarc('v=dmarc1; p=none')
    assert record is not None and record != parse_dmarc('v=DMARC1; p=none')
    assert 'it must start with v=DMARC1 (exactly so)' in record.problems()[0]
    assert parse_dmarc('v=DMARC1; p=Reject') != parse_dmarc('v=DMARC1; p=reject')  # values exact


tag_name = st.text(alphabet='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_',
                   min_size=1, max_size=8)
tag_value = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126,
                                           blacklist_characters=';='), min_size=1, max_size=20)
dmarc = st.builds(lambda version, tags: DmarcRecord([('v', version)] + tags),
                  st.sampled_from(['DMARC1', 'dmarc1']),
                  st.lists(st.tuples(tag_name, tag_value), max_size=6))
space = st.text(alphabet=' \t', max_size=3)


@settings(max_examples=300, deadline=None)
@given(dmarc)
def test_dmarc_parse_of_render_is_the_record(record):
    assert parse_dmarc(record.render()) == record
    assert parse_dmarc(record.render()).render() == record.render()


@settings(max_examples=300, deadline=None)
@given(dmarc, st.data())
def test_dmarc_white_space_around_equals_and_semicolons_changes_nothing(record, data):
    parts = ['%s%s=%s%s' % (k, data.draw(space), data.draw(space), v) for k, v in record.tags]
    text = data.draw(space) + (data.draw(space) + ';' + data.draw(space)).join(parts) + \
        data.draw(st.sampled_from(['', ';', ' ; ']))
    assert parse_dmarc(text) == record


# -- SPF ------------------------------------------------------------------------------------
@pytest.mark.parametrize('value, spf', [
    ('v=spf1', True), ('v=spf1 -all', True), ('V=SPF1 MX -ALL', True), ('v=spf1  a', True),
    ('v=spf10 -all', False), ('v=spf1\t-all', False), (' v=spf1 -all', False),
    ('spf1 -all', False), ('v=spf2.0/pra -all', False),
])
def test_spf_version_term(value, spf):
    assert is_spf(value) is spf


def test_spf_terms_are_case_insensitive():
    assert parse_spf('v=spf1 INCLUDE:SPF.protection.outlook.com -ALL') == \
        parse_spf('V=SPF1 include:spf.protection.outlook.com  -all')
    assert parse_spf('v=spf1 a -all') != parse_spf('v=spf1 a ~all')


@pytest.mark.parametrize('helper', [spf_terms, spf_includes,
                                    lambda v: spf_has_include(v, 'spf.protection.outlook.com'),
                                    lambda v: spf_merge(v, 'spf.protection.outlook.com'),
                                    lambda v: spf_remove_include(v, 'spf.protection.outlook.com')])
def test_spf_helpers_refuse_a_value_that_is_no_spf_record_by_name(helper):
    # their callers pick the v=spf1 values first; a slip names the value (was: AttributeError
    # on None)
    with pytest.raises(ValueError, match="not a v=spf1 record: 'MS=ms123'"):
        helper('MS=ms123')


spf_term = st.one_of(
    st.sampled_from(['a', 'mx', '-all', '~all', '?all', '+all', 'ptr', 'a/24', 'mx//64',
                     'redirect=_spf.example.net', 'exp=explain.example']),
    st.builds(lambda q, a: '%sip4:192.0.2.%d' % (q, a), st.sampled_from(['', '+', '-', '~', '?']),
              st.integers(0, 255)),
    st.builds(lambda q, h: '%sinclude:%s.example' % (q, h), st.sampled_from(['', '+', '-', '~']),
              st.text(alphabet='abcXYZ019-', min_size=1, max_size=10)),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(['v=spf1', 'V=SPF1', 'v=Spf1']), st.lists(spf_term, max_size=12),
       st.lists(st.integers(1, 3), min_size=13, max_size=13))
def test_spf_parse_of_render_and_spacing(version, terms, gaps):
    text = ' '.join([version] + terms)
    record = parse_spf(text)
    assert record.render() == text
    assert parse_spf(record.render()) == record
    assert [t.text for t in record.terms] == terms
    spaced = version + ''.join(' ' * g + t for g, t in zip(gaps, terms))
    assert parse_spf(spaced) == record
    assert parse_spf(text.upper()) == record


# -- MX, DKIM, names, options ---------------------------------------------------------------
def test_one_mx_split():
    split = split_mx(['10 mail.contoso.com.', '0 ' + EXO, '5 other-com.mail.protection.outlook.com.'],
                     EXO)
    assert split.ours == [(0, EXO)]
    assert split.other_exo == [(5, 'other-com.mail.protection.outlook.com.')]
    assert split.legacy == [(10, 'mail.contoso.com.')]


def test_dkim_names_and_zone_inclusion():
    assert dkim_name('selector1', D) == 'selector1._domainkey.contoso.com.'
    assert dkim_selector(dkim_name('s.2', D)) == 's.2'
    require_inside('eu.' + D, D)
    with pytest.raises(RecordError, match='domain contoso.com. is not inside zone fabrikam.com.'):
        require_inside(D, 'fabrikam.com.')


def test_explicit_options_win_over_records():
    records = [{'name': D, 'type': 'MX', 'values': ['0 a.mx.microsoft']},
               {'name': D, 'type': 'TXT', 'values': ['MS=ms1']}]
    p = with_records({'domain': D, 'records': records, 'mx_host': 'b.mx.microsoft.'})
    assert p['mx_host'] == 'b.mx.microsoft.' and p['verification_txt'] == 'MS=ms1'
    assert Spec.from_params({'domain': D, 'records': records}).mx_host == 'a.mx.microsoft.'


# -- the planner reads the same DMARC policy ------------------------------------------------
@pytest.mark.parametrize('published', ['v=DMARC1; p=reject', 'v = DMARC1 ;p=reject',
                                       'v=DMARC1;p=reject;'])
def test_planner_adopts_the_same_policy_in_any_spelling(published):
    name = '_dmarc.' + D
    current = {(name, 'TXT'): RRset(name, 'TXT', 3600, [published, 'other text'])}
    assert not plan_changes(Spec(D, 'none', dmarc='v=DMARC1; p=reject'), current).changed
    with pytest.raises(RecordError, match='has the DMARC record %s, not v=DMARC1; p=none'
                       % published.replace('=', '=')):
        plan_changes(Spec(D, 'none', dmarc='v=DMARC1; p=none'), current)
    absent = plan_changes(Spec(D, 'none', state='absent', dmarc='v=DMARC1; p=reject'), current)
    assert absent.desired[(name, 'TXT')].sorted_values() == ['other text']


def test_two_records_of_the_same_policy_still_conflict():
    name = '_dmarc.' + D
    current = {(name, 'TXT'): RRset(name, 'TXT', 3600, ['v=DMARC1; p=reject',
                                                        'v = DMARC1 ;p=reject'])}
    with pytest.raises(RecordError, match='has the DMARC record'):
        plan_changes(Spec(D, 'none', dmarc='v=DMARC1; p=reject'), current)
    plan = plan_changes(Spec(D, 'none', dmarc='v=DMARC1; p=reject', on_conflict='replace'),
                        current)
    assert plan.desired[(name, 'TXT')].sorted_values() == ['v=DMARC1; p=reject']


def test_dmarc_report_domains_are_the_other_domains_of_the_mailto_destinations():
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_policy import (
        dmarc_report_domains, parse_dmarc)
    record = parse_dmarc('v=DMARC1; p=none; rua=mailto:a@contoso.com,mailto:x@Reports.Example!10m,'
                         'https://ignored.example/; ruf=mailto:f@mail.contoso.com,'
                         'mailto:y@reports.example, mailto:z@other.example.')
    assert dmarc_report_domains(record, 'contoso.com.') == ['reports.example', 'other.example']
    assert dmarc_report_domains(parse_dmarc('v=DMARC1; p=none; rua=mailto:a@contoso.com'),
                                'sub.contoso.com') == []
