# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Where a zone is hosted, told from the host names of its name servers, and whether the
``provider`` of a task fits it. Pure: no network.

The host name patterns are the ones each service documents for the name servers it assigns
(Route 53 ``ns-<n>.awsdns-<nn>.com/.net/.org/.co.uk``, Azure DNS ``ns<n>-<nn>.azure-dns.com/
.net/.org/.info``, Cloudflare ``<name>.ns.cloudflare.com``, Google Cloud DNS
``ns-cloud-<x><n>.googledomains.com``) or that the big registrars' DNS uses.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from typing import Any, Dict, Iterable, List, Optional

# (pattern of a name server's host name, the service, the provider option that serves it here)
HOSTS = (
    (r'^ns-\d+\.awsdns-\d+\.(com|net|org|co\.uk)$', 'Amazon Route 53', 'route53'),
    (r'^ns\d+-\d+\.azure-dns\.(com|net|org|info)$', 'Azure DNS', 'azure'),
    (r'(^|\.)ns\.cloudflare\.com$', 'Cloudflare', 'cloudflare'),
    (r'^ns-cloud-[a-z]\d+\.googledomains\.com$', 'Google Cloud DNS', None),
    (r'(^|\.)domaincontrol\.com$', 'GoDaddy', None),
    (r'(^|\.)ui-dns\.(com|de|org|biz)$', 'IONOS', None),
    (r'(^|\.)registrar-servers\.com$', 'Namecheap', None),
    (r'^ns\d\.digitalocean\.com$', 'DigitalOcean', None),
    (r'(^|\.)ns\.hetzner\.(com|de)$', 'Hetzner', None),
    (r'^(dns|ns)\d*\.ovh\.(net|ca)$', 'OVHcloud', None),
    (r'(^|\.)gandi\.net$', 'Gandi', None),
)
PATTERNS = [(re.compile(p), service, provider) for p, service, provider in HOSTS]


def hosting_of(nameservers: Iterable[str]) -> Dict[str, Any]:
    """``{service, provider, nameservers}``: the service whose name servers serve the zone (the
    one most of them belong to), the provider option for it (``manual`` for a service without
    one here; None when no known service: the zone's own servers) and the host names."""
    hosts = sorted(set(str(h).lower().rstrip('.') for h in nameservers if h))
    counts: Dict[str, List[str]] = {}
    option: Dict[str, Optional[str]] = {}
    for host in hosts:
        for pattern, service, provider in PATTERNS:
            if pattern.search(host):
                counts.setdefault(service, []).append(host)
                option[service] = provider or 'manual'
                break
    if not counts:
        return {'service': None, 'provider': None, 'nameservers': hosts}
    service = max(sorted(counts), key=lambda s: len(counts[s]))
    return {'service': service, 'provider': option[service], 'nameservers': hosts}


def provider_hint(hosting: Dict[str, Any], provider: Optional[str], zone: str) -> Optional[str]:
    """A warning when ``provider`` does not fit where the zone is hosted, naming the one to use;
    None when it fits or cannot be told."""
    service, fits = hosting.get('service'), hosting.get('provider')
    servers = ', '.join(hosting.get('nameservers') or []) or 'none'
    if not provider:
        return None
    if service is None:
        if provider == 'route53':
            return ('the name servers of %s (%s) do not look like Route 53\'s own '
                    '(ns-<n>.awsdns-<nn>.*): unless they are white-label name servers of a '
                    'Route 53 reusable delegation set, the hosted zone that provider route53 '
                    'changes is not the one the Internet asks. Use the provider of the servers '
                    'the registrar delegates to.' % (zone, servers))
        return None
    if provider == fits:
        return None
    if fits == 'manual':
        use = ('%s has no provider in this collection yet: use provider manual, which prints '
               'the records to enter there' % service)
    else:
        use = 'use provider %s' % fits
    secondary = (' (unless %s only transfers the zone from the server given here as a '
                 'secondary)' % service) if provider in ('rfc2136', 'powerdns') else ''
    return ('the name servers of %s (%s) are %s\'s: changes through provider %s are not what '
            'the Internet sees%s; %s.' % (zone, servers, service, provider, secondary, use))
