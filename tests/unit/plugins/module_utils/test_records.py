"""Value normalisation: names, TXT splitting and joining, MX, backups."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import dns.message
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    RRset,
    RecordError,
    canonical_value,
    check_txt_input,
    make_rdata,
    mx_value,
    name_text,
    rrset_from_values,
    to_name,
)


@pytest.mark.parametrize('text, expected', [
    ('Contoso.COM', 'contoso.com.'),
    ('contoso.com.', 'contoso.com.'),
    ('bücher.de', 'xn--bcher-kva.de.'),
    ('BÜCHER.de', 'xn--bcher-kva.de.'),
])
def test_names_are_lower_case_absolute_punycode(text, expected):
    assert name_text(to_name(text)) == expected


@pytest.mark.parametrize('text, message', [
    ('', 'non-empty'),
    ('a..b', 'empty label'),
    ('a' * 64 + '.com', '63 octets'),
    ('.'.join(['a' * 60] * 5), '255 octets'),
    ('has space.com', 'white space'),
])
def test_bad_names(text, message):
    with pytest.raises(RecordError) as e:
        to_name(text)
    assert message in str(e.value)


def test_mx_value_normalised():
    assert mx_value('MAIL.Contoso.com', '10') == '10 mail.contoso.com.'
    with pytest.raises(RecordError):
        mx_value('mail.contoso.com', -1)


def test_txt_quotes_rejected_in_input():
    with pytest.raises(RecordError) as e:
        check_txt_input('"v=spf1 -all"', 'spf')
    assert 'unquoted' in str(e.value)
    with pytest.raises(RecordError):
        check_txt_input('a\nb', 'x')


txt_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF,
                                          blacklist_categories=('Cs',)), min_size=0, max_size=700)


@settings(max_examples=300, deadline=None)
@given(txt_text)
def test_txt_split_and_join_round_trip_on_the_wire(value):
    rd = make_rdata('TXT', value)
    assert all(len(s) <= 255 for s in rd.strings)
    assert len(rd.strings) == max(1, -(-len(value.encode('utf-8')) // 255))
    wire = rd.to_digestable()
    back = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.TXT, wire, 0, len(wire))
    assert canonical_value('TXT', back) == value
    # and through presentation format (quoting and escapes) too
    again = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, back.to_text())
    assert canonical_value('TXT', again) == value


def test_txt_compared_unquoted_and_joined_whatever_the_split():
    a = dns.rdata.from_text('IN', 'TXT', '"v=spf1 ip4:192.0.2.1" " -all"')
    b = dns.rdata.from_text('IN', 'TXT', '"v=spf1 ip4:192.0.2.1 -all"')
    assert canonical_value('TXT', a) == canonical_value('TXT', b) == 'v=spf1 ip4:192.0.2.1 -all'


def test_kept_values_keep_their_wire_form():
    rd = dns.rdata.from_text('IN', 'TXT', '"abc" "def"')
    rr = RRset('x.example.', 'TXT', 300, rdatas={canonical_value('TXT', rd): rd})
    rr2 = rr.with_values(['abcdef', 'new'])
    kept = [r for r in rr2.rdata_list() if canonical_value('TXT', r) == 'abcdef'][0]
    assert kept.strings == (b'abc', b'def')


def test_backup_round_trip_is_exact():
    rd = dns.rdata.from_text('IN', 'TXT', '"a\\"b" "c"')
    rr = RRset('x.example.', 'TXT', 300, rdatas={canonical_value('TXT', rd): rd})
    back = RRset.from_backup(rr.to_backup())
    assert back.same_as(rr)
    assert back.rdata_list()[0].strings == (b'a"b', b'c')
    mx = rrset_from_values('x.example.', 'mx', 60, ['10 Mail.Example.'])
    assert RRset.from_backup(mx.to_backup()).same_as(mx)


def test_rrset_from_answer():
    m = dns.message.from_text('id 1\nflags QR\n;ANSWER\nexample. 300 IN MX 10 MX.Example.\n')
    rr = RRset.from_rdataset('example.', m.answer[0])
    assert rr.values == frozenset(['10 mx.example.'])
    assert rr.zone_lines() == ['example. 300 IN MX 10 MX.Example.']


def test_two_txt_records_that_join_the_same_are_refused():
    m = dns.message.from_text('id 1\nflags QR\n;ANSWER\nexample. 300 IN TXT "v=spf1 a" " -all"\n'
                              'example. 300 IN TXT "v=spf1 a -all"\n')
    with pytest.raises(RecordError) as e:
        RRset.from_rdataset('example.', m.answer[0])
    assert 'two TXT records' in str(e.value) and e.value.phase == 'plan'


@pytest.mark.parametrize('text', [
    'key "k" {\n\talgorithm hmac-sha256;\n\tsecret "ab//cd+/ef==";\n};\n',
    '// exo key\nkey "k" { algorithm hmac-sha256; secret "ab//cd+/ef=="; }; # end\n',
    '/* key "old" { algorithm hmac-sha256; secret "b2xk"; }; */\n'
    'key "k" { algorithm hmac-sha256; secret "ab//cd+/ef=="; };\n',
])
def test_key_file_secrets_with_slashes_and_comments(tmp_path, text):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import read_key_file
    path = tmp_path / 'k.key'
    path.write_text(text)
    assert read_key_file(str(path)) == ('k', 'hmac-sha256', 'ab//cd+/ef==')


def test_long_hmac_md5_name_is_accepted(tmp_path):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import make_keyring
    path = tmp_path / 'k.key'
    path.write_text('key "old" { algorithm hmac-md5.sig-alg.reg.int; secret "c2VjcmV0"; };\n')
    keyring, name, algorithm = make_keyring({'key_file': str(path)})
    assert name.to_text() == 'old.' and 'hmac-md5' in algorithm.to_text()
