# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  server:
    description:
      - The authoritative DNS server to read from and send RFC 2136 updates to, usually the
        primary of the zone. A host name or an IPv4/IPv6 address.
    type: str
    required: true
  port:
    description:
      - The server's DNS port, from 1 to 65535.
    type: int
    default: 53
  zone:
    description:
      - The zone that holds O(domain). When omitted it is found from the SOA the server returns
        for O(domain).
    type: str
  key_name:
    description:
      - Name of the TSIG key that signs every query, transfer and update.
      - Without a key (and without O(key_file)) requests go unsigned; most servers refuse
        unsigned updates.
    type: str
  key_secret:
    description:
      - The base64 secret of the TSIG key O(key_name).
      - Mutually exclusive with O(key_file).
    type: str
  key_algorithm:
    description:
      - The TSIG algorithm. Ignored with O(key_file), which names its own.
    type: str
    default: hmac-sha256
    choices: [hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1, hmac-md5]
  key_file:
    description:
      - A BIND key file (as written by C(tsig-keygen)) holding the TSIG key. With more than one
        key in the file, O(key_name) chooses.
    type: path
  protocol:
    description:
      - Transport for queries and updates. Zone transfers always use TCP.
    type: str
    default: tcp
    choices: [tcp, udp]
  timeout:
    description:
      - Seconds to wait for each answer from the server; more than 0 and at most 300.
      - When the answer to an UPDATE does not come within it, the module reads the zone again
        (three reads over about 3 seconds) to learn whether the update was applied; see the
        C(outcome) return value of M(exchangeonline.mail.mail_dns).
    type: float
    default: 10.0
requirements:
  - dnspython >= 2.3.0
'''

    # The providers of mail_dns (exchangeonline.mail.dns.provider): where the zone lives, and
    # the options that reach it.
    PROVIDER = r'''
options:
  provider:
    description:
      - Where the zone lives and how it is changed. Every provider gets the same plan, diff,
        backup, rollback and verification; what differs is the guarantee of the write, returned
        as RV(guarantee).
      - V(rfc2136) (the default) is any authoritative server that takes RFC 2136 dynamic updates
        (BIND, Knot DNS, PowerDNS with C(dnsupdate), Windows DNS with secure updates off, many
        appliances), reached with O(server), O(port) and the TSIG options. All changes go in
        one UPDATE whose prerequisites are the rrsets read (guarantee V(atomic)).
      - V(powerdns) is the HTTP API of a PowerDNS Authoritative Server (O(api_url),
        O(api_key), O(powerdns_server_id)). All changes go in one PATCH, which PowerDNS applies
        in one transaction; it takes no precondition, so the names are read again just before
        it (guarantee V(transaction)).
      - V(route53) is an Amazon Route 53 public hosted zone, with the AWS credentials of the
        options or of botocore's usual chain. All changes go in one ChangeResourceRecordSets
        batch that deletes each rrset exactly as it was read and creates it as planned, which
        Route 53 applies whole or not at all (guarantee V(atomic)). Needs C(botocore), imported
        only for this provider.
      - V(azure) is an Azure DNS public zone, through Azure Resource Manager with the
        collection's Microsoft identity (O(tenant_id), O(client_id), O(client_secret) or
        O(client_certificate_path), O(cloud)) and O(azure_subscription_id); the app needs the
        role C(DNS Zone Contributor) on the zone or its resource group. Each record set is
        written on its own with the etag read as its precondition (C(If-Match), or
        C(If-None-Match) for a new one), so a concurrent change of it is refused. When a later
        record set is refused, the ones already written are put back the same way and the
        failure says so (guarantee V(rrset_cas)).
      - V(cloudflare) is a Cloudflare zone, with an API token (O(api_token)) that has
        C(Zone DNS Edit) on it. All changes go in one batch (C(dns_records/batch)), which
        Cloudflare runs in one transaction; the only precondition it takes is that each record
        it deletes still exists, so the names are read again just before it (guarantee
        V(transaction)). Records are written C(DNS only); a proxied record at a planned name
        gives a warning.
      - V(manual) is DNS at a registrar or host without an API. The zone is read from O(server)
        (one of its authoritative servers; without a key a refused zone transfer falls back to
        queries) and nothing is written. The plan comes back as the exact records to delete and
        add (RV(exchangeonline.mail.mail_dns#module:manual)), C(changed) is V(false) and
        RV(exchangeonline.mail.mail_dns#module:pending) says whether anything is left to enter;
        M(exchangeonline.mail.mail_dns_check) then waits until every authoritative server serves
        the records. The backup still records the rrsets as they were, so O(state=rollback)
        lists what to enter to undo it (guarantee V(manual)).
    type: str
    default: rfc2136
    choices: [rfc2136, powerdns, route53, azure, cloudflare, manual]
  api_url:
    description:
      - With O(provider=powerdns), the base URL of the PowerDNS API, for example
        V(http://127.0.0.1:8081) (the C(webserver-address) and C(webserver-port) of C(pdns.conf)).
      - With O(provider=cloudflare), another API root than V(https://api.cloudflare.com/client/v4)
        (a proxy, a test server).
      - Requests go only there; redirects are not followed. A plain C(http://) URL to another
        host than this one gives a warning, since the API key then crosses the network in clear.
    type: str
  api_key:
    description:
      - With O(provider=powerdns), the API key (the C(api-key) setting of C(pdns.conf)).
    type: str
  powerdns_server_id:
    description:
      - With O(provider=powerdns), the server id in the API's paths.
    type: str
    default: localhost
  validate_certs:
    description:
      - Check the certificate of an C(https://) O(api_url) or O(aws_endpoint_url).
    type: bool
    default: true
  ca_path:
    description:
      - A CA bundle (file) that signs the certificate of O(api_url) or O(aws_endpoint_url),
        instead of the system's.
    type: path
  aws_access_key_id:
    description:
      - With O(provider=route53), the access key id. Without it (and
        O(aws_secret_access_key)), botocore's chain is used (C(AWS_ACCESS_KEY_ID),
        C(~/.aws/credentials), the instance or task role).
    type: str
  aws_secret_access_key:
    description:
      - With O(provider=route53), the secret access key of O(aws_access_key_id).
    type: str
  aws_session_token:
    description:
      - With O(provider=route53), the session token of temporary credentials.
    type: str
  aws_profile:
    description:
      - With O(provider=route53), the profile of the AWS shared configuration to use.
    type: str
  aws_endpoint_url:
    description:
      - With O(provider=route53), another endpoint than Route 53's own (a VPC endpoint, a proxy,
        a test server).
    type: str
  hosted_zone_id:
    description:
      - With O(provider=route53), the hosted zone to change. Without it, the public hosted zone
        named O(zone) (or the one that holds O(domain)) is used; give it when the account has
        two public zones of that name.
      - With O(provider=cloudflare), the zone ID (32 hexadecimal digits, on the zone's Overview
        page). Without it, the zone is found by name, which needs C(Zone Read) as well.
    type: str
  api_token:
    description:
      - With O(provider=cloudflare), the API token. Without it, the environment variable
        E(CLOUDFLARE_API_TOKEN) is used.
    type: str
  azure_subscription_id:
    description:
      - With O(provider=azure), the subscription that holds the DNS zone. Without it, the
        environment variable E(AZURE_SUBSCRIPTION_ID) is used.
    type: str
  azure_resource_group:
    description:
      - With O(provider=azure), the resource group of the zone. Without it, the zone is looked
        for in the whole subscription (one list of its zones).
    type: str
  azure_endpoint_url:
    description:
      - With O(provider=azure), another Azure Resource Manager root than the one of O(cloud)
        (V(https://management.azure.com) for V(public)), such as a proxy or a test server. Tokens are
        still asked for the cloud's Resource Manager.
    type: str
  tenant_id:
    description:
      - With O(provider=azure), the Microsoft Entra tenant (GUID or a domain of it) of the app.
        Without it, E(AZURE_TENANT_ID). As in the Microsoft 365 modules.
    type: str
  client_id:
    description:
      - With O(provider=azure), the application (client) ID. Without it, E(AZURE_CLIENT_ID).
    type: str
  client_secret:
    description:
      - With O(provider=azure), a client secret of the app. Without it (and
        O(client_certificate_path)), E(AZURE_CLIENT_SECRET).
    type: str
  client_certificate_path:
    description:
      - With O(provider=azure), a PEM file with the app's certificate and its private key,
        instead of O(client_secret).
    type: path
  client_certificate_password:
    description:
      - The password of the private key in O(client_certificate_path).
    type: str
  cloud:
    description:
      - With O(provider=azure), the national cloud of the tenant; it chooses the identity host
        and Azure Resource Manager.
    type: str
    choices: [china, public, usgov, usgov_dod]
    default: public
  authority_host:
    description:
      - With O(provider=azure), another identity host than the cloud's (a test server).
    type: str
requirements:
  - botocore (only with O(provider=route53))
  - msal and requests (only with O(provider=azure))
'''
