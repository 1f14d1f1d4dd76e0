"""The azure and cloudflare providers without a network: their options, the JSON of each record
type both ways, and the batch Cloudflare gets."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import (
    provider_argument_spec,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import DnsError
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import Change
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RRset

pytest.importorskip('msal')

from ansible_collections.exchangeonline.mail.plugins.module_utils._azure_dns import (  # noqa: E402
    CODECS,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._cloudflare import (  # noqa: E402
    CloudflareProvider,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (  # noqa: E402
    m365_argument_spec,
)


def test_the_azure_identity_options_are_the_m365_ones():
    spec, m365 = provider_argument_spec(), m365_argument_spec()
    for name in ('tenant_id', 'client_id', 'client_secret', 'client_certificate_path',
                 'client_certificate_password', 'cloud', 'authority_host'):
        assert spec[name] == m365[name], name


@pytest.mark.parametrize('rdtype,text', [
    ('MX', '10 contoso-com.mail.protection.outlook.com.'),
    ('TXT', '"v=spf1 include:spf.protection.outlook.com -all"'),
    ('TXT', '"%s" "%s"' % ('a' * 255, 'b' * 40)),
    ('TXT', '"quote \\" and backslash \\\\"'),
    ('CNAME', 'autodiscover.outlook.com.'),
    ('SRV', '100 1 443 sipdir.online.lync.com.'),
    ('CAA', '0 issue "letsencrypt.org"'),
    ('A', '192.0.2.1'),
    ('AAAA', '2001:db8::1'),
])
def test_azure_record_json_round_trips(rdtype, text):
    rrset = RRset.from_texts('contoso.com.', rdtype, 3600, [text])
    _prop, encode, decode = CODECS[rdtype]
    rd = rrset.rdata_list()[0]
    back = RRset.from_texts('contoso.com.', rdtype, 3600, [decode(encode(rd))])
    assert back.same_as(rrset)


def test_cloudflare_batch_deletes_the_ids_read_and_posts_dns_only_records():
    """Only the values the plan drops are deleted, only the ones it adds posted."""
    provider = CloudflareProvider('t' * 40, 'https://api.cloudflare.com/client/v4')
    provider._records = {('contoso.com.', 'MX'): {'10 mail.contoso.com.': ('a' * 32, 3600)},
                         ('contoso.com.', 'TXT'): {'keep': ('b' * 32, 3600),
                                                   'drop': ('c' * 32, 3600)}}
    before = RRset('contoso.com.', 'MX', 3600, ['10 mail.contoso.com.'])
    after = RRset('contoso.com.', 'MX', 3600, ['0 contoso-com.mail.protection.outlook.com.'])
    cname = RRset('autodiscover.contoso.com.', 'CNAME', 3600, ['autodiscover.outlook.com.'])
    txt_before = RRset('contoso.com.', 'TXT', 3600, ['keep', 'drop'])
    txt_after = RRset('contoso.com.', 'TXT', 3600, ['keep', 'new'])
    batch = provider.batch_of([Change(before, after, 'update'), Change(None, cname, 'create'),
                               Change(txt_before, txt_after, 'update')])
    assert batch == {'deletes': [{'id': 'a' * 32}, {'id': 'c' * 32}], 'posts': [
        {'name': 'contoso.com', 'type': 'MX', 'ttl': 3600, 'priority': 0,
         'content': 'contoso-com.mail.protection.outlook.com'},
        {'name': 'autodiscover.contoso.com', 'type': 'CNAME', 'ttl': 3600, 'proxied': False,
         'content': 'autodiscover.outlook.com'},
        {'name': 'contoso.com', 'type': 'TXT', 'ttl': 3600, 'content': '"new"'}]}


def test_cloudflare_bad_input_is_named():
    with pytest.raises(DnsError) as err:
        CloudflareProvider('', 'https://api.cloudflare.com/client/v4')
    assert 'needs api_token' in str(err.value)
    with pytest.raises(DnsError) as err:
        CloudflareProvider('t' * 40, 'https://api.cloudflare.com/client/v4', zone_id='../x')
    assert 'is not a Cloudflare zone ID' in str(err.value)


def test_cloudflare_reads_unquoted_txt_as_one_text_in_255_byte_strings():
    text = CloudflareProvider._text_of('TXT', {'content': 'a' * 300 + '"q"'})
    rrset = RRset.from_texts('contoso.com.', 'TXT', 300, [text])
    assert list(rrset.values) == ['a' * 300 + '"q"']
    assert [len(s) for s in rrset.rdata_list()[0].strings] == [255, 48]


def azure_provider():
    from ansible_collections.exchangeonline.mail.plugins.module_utils._azure_dns import (
        AzureDnsProvider,
    )
    p = object.__new__(AzureDnsProvider)
    p.arm, p.where, p._special, p._metadata = 'https://management.azure.com', 'Azure DNS', set(), {}
    return p


def test_azure_next_link_only_on_resource_managers_own_origin():
    p = azure_provider()
    assert p._relative('https://management.azure.com:443/subscriptions/s/x?a=1&$skiptoken=2') \
        == '/subscriptions/s/x?a=1&$skiptoken=2'
    assert p._relative('https://MANAGEMENT.azure.com/subscriptions/s') == '/subscriptions/s'
    for foreign in ('https://management.azure.com.evil.example/subscriptions/s',
                    'http://management.azure.com/subscriptions/s',
                    'https://user:pw@management.azure.com/subscriptions/s',
                    'https://management.azure.com:8443/subscriptions/s', None, 42):
        assert p._relative(foreign) is None, foreign


def test_azure_malformed_record_set_is_an_error_not_a_traceback():
    p = azure_provider()
    for props in ({'TTL': 'soon', 'TXTRecords': []},
                  {'TTL': 60, 'TXTRecords': [{'value': 'not-a-list'}]},
                  {'TTL': 60, 'MXRecords': ['10 mx']}):
        rdtype = 'MX' if 'MXRecords' in props else 'TXT'
        with pytest.raises(DnsError) as err:
            p._rrset_of('contoso.com.', {'name': '@', 'type': 'Microsoft.Network/dnszones/'
                                         + rdtype, 'properties': props})
        assert 'not the documented one' in str(err.value)
    caa = p._rrset_of('contoso.com.', {'name': '@', 'type': 'Microsoft.Network/dnszones/CAA',
                                       'properties': {'TTL': 60, 'CAARecords': [
                                           {'flags': 0, 'tag': 'issue', 'value': 'ca.example'}]}})
    assert list(caa.values) == ['0 issue "ca.example"']
