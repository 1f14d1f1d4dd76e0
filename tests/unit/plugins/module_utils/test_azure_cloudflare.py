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
    provider = CloudflareProvider('t' * 40, 'https://api.cloudflare.com/client/v4')
    provider._records = {('contoso.com.', 'MX'): ['a' * 32]}
    before = RRset('contoso.com.', 'MX', 3600, ['10 mail.contoso.com.'])
    after = RRset('contoso.com.', 'MX', 3600, ['0 contoso-com.mail.protection.outlook.com.'])
    cname = RRset('autodiscover.contoso.com.', 'CNAME', 3600, ['autodiscover.outlook.com.'])
    batch = provider.batch_of([Change(before, after, 'update'), Change(None, cname, 'create')])
    assert batch == {'deletes': [{'id': 'a' * 32}], 'posts': [
        {'name': 'contoso.com', 'type': 'MX', 'ttl': 3600, 'priority': 0,
         'content': 'contoso-com.mail.protection.outlook.com'},
        {'name': 'autodiscover.contoso.com', 'type': 'CNAME', 'ttl': 3600, 'proxied': False,
         'content': 'autodiscover.outlook.com'}]}


def test_cloudflare_bad_input_is_named():
    with pytest.raises(DnsError) as err:
        CloudflareProvider('', 'https://api.cloudflare.com/client/v4')
    assert 'needs api_token' in str(err.value)
    with pytest.raises(DnsError) as err:
        CloudflareProvider('t' * 40, 'https://api.cloudflare.com/client/v4', zone_id='../x')
    assert 'is not a Cloudflare zone ID' in str(err.value)
