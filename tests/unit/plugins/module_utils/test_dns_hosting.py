"""Where a zone is hosted, from its name servers' host names, and the provider hint."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_hosting import (
    hosting_of,
    provider_hint,
)

ROUTE53 = ['ns-1536.awsdns-00.co.uk.', 'ns-0.awsdns-00.com', 'ns-1024.awsdns-00.org',
           'NS-512.AWSDNS-00.NET']
CLOUDFLARE = ['ada.ns.cloudflare.com', 'bob.ns.cloudflare.com']


def test_route53_found_from_every_top_level_domain_it_uses():
    found = hosting_of(ROUTE53)
    assert found['service'] == 'Amazon Route 53' and found['provider'] == 'route53'
    assert 'ns-512.awsdns-00.net' in found['nameservers']


def test_services_without_a_provider_here_suggest_manual():
    assert hosting_of(CLOUDFLARE) == {'service': 'Cloudflare', 'provider': 'cloudflare',
                                      'nameservers': sorted(CLOUDFLARE)}
    azure = hosting_of(['ns1-07.azure-dns.com', 'ns2-07.azure-dns.net'])
    assert azure['service'] == 'Azure DNS' and azure['provider'] == 'azure'
    assert hosting_of(['ns51.domaincontrol.com']) == {
        'service': 'GoDaddy', 'provider': 'manual', 'nameservers': ['ns51.domaincontrol.com']}
    assert hosting_of(['ns-cloud-a1.googledomains.com'])['service'] == 'Google Cloud DNS'


def test_own_servers_and_lookalikes_are_no_service():
    assert hosting_of(['ns1.contoso.com', 'ns.cloudflare.com.evil.example',
                       'ns-1.awsdns-1.com.example'])['service'] is None
    assert hosting_of([])['service'] is None


def test_hint_names_the_provider_to_use():
    hint = provider_hint(hosting_of(ROUTE53), 'rfc2136', 'contoso.com.')
    assert 'use provider route53' in hint and 'secondary' in hint
    hint = provider_hint(hosting_of(CLOUDFLARE), 'route53', 'contoso.com.')
    assert 'use provider cloudflare' in hint and 'secondary' not in hint
    hint = provider_hint(hosting_of(['ns51.domaincontrol.com']), 'route53', 'contoso.com.')
    assert 'use provider manual' in hint and 'GoDaddy' in hint
    assert provider_hint(hosting_of(ROUTE53), 'route53', 'contoso.com.') is None
    assert provider_hint(hosting_of(ROUTE53), None, 'contoso.com.') is None
    own = hosting_of(['ns1.contoso.com'])
    assert provider_hint(own, 'rfc2136', 'contoso.com.') is None
    assert "do not look like Route 53's own" in provider_hint(own, 'route53', 'contoso.com.')
    assert hosting_of(['vps-1234.vps.ovh.net'])['service'] is None
    assert hosting_of(['dns101.ovh.net', 'ns101.ovh.net'])['service'] == 'OVHcloud'
