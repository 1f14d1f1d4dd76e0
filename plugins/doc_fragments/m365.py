# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  tenant_id:
    description:
      - The Microsoft Entra tenant, as its GUID or a verified domain.
      - Falls back to the E(AZURE_TENANT_ID) environment variable.
    type: str
  client_id:
    description:
      - The application (client) ID of the app registration.
      - Falls back to E(AZURE_CLIENT_ID).
    type: str
  client_secret:
    description:
      - A client secret of the app registration. Mutually exclusive with
        O(client_certificate_path).
      - Falls back to E(AZURE_CLIENT_SECRET).
    type: str
  client_certificate_path:
    description:
      - PEM file holding the app's certificate and its RSA private key (certificate credentials
        are preferred over secrets), and for O(client_certificate_send_chain) the chain, in any
        order; the app's certificate is the one of the key. The thumbprint is computed.
      - With msal 1.35 or later the client assertion is signed PS256 and names the certificate
        by its SHA-256 thumbprint (C(x5t#S256)), as Microsoft's certificate credentials page
        asks; msal then also sends the certificate (C(x5c)). Older msal signs RS256 with the
        SHA-1 thumbprint (C(x5t)), which Entra ID still accepts.
      - Falls back to E(AZURE_CLIENT_CERTIFICATE_PATH).
    type: path
  client_certificate_password:
    description:
      - Password of the private key in O(client_certificate_path).
      - Falls back to E(AZURE_CLIENT_CERTIFICATE_PASSWORD).
    type: str
  client_certificate_send_chain:
    description:
      - Send the certificate chain (C(x5c)) with each token request, for subject name and
        issuer authentication.
      - msal sends a chain only with the SHA-1 thumbprint, so this signs RS256 with C(x5t) on
        every msal version.
    type: bool
    default: false
  cloud:
    description:
      - The Microsoft cloud. V(public) (worldwide, also GCC), V(usgov) (GCC High), V(usgov_dod)
        (DoD) or V(china) (operated by 21Vianet). Chooses the identity, Graph and Exchange Online
        hosts and the Exchange Online token resource; the README's "Clouds and endpoints" table
        lists them with their sources.
      - "V(usgov_dod): Exchange Online at C(https://outlook-dod.office365.us)."
      - "V(china): Exchange Online at C(https://partner.outlook.cn), which no Microsoft source
        settles (the Admin API page names C(https://outlook.office365.cn)); set O(exo_endpoint)
        and O(exo_token_resource) for the other host."
    type: str
    default: public
    choices: [china, public, usgov, usgov_dod]
  authority_host:
    description:
      - Override of the identity host, for example C(https://login.microsoftonline.com).
      - Like O(graph_endpoint) and O(exo_endpoint), an C(https://) URL with a host and no user
        name, query or fragment; anything else (C(http://), C(file://)) is refused before
        anything is sent.
      - The client secret or assertion goes only to these three endpoints; a token endpoint
        elsewhere (named by the endpoint's OpenID configuration) is refused.
    type: str
  graph_endpoint:
    description:
      - Override of the Microsoft Graph root, for example C(https://graph.microsoft.com).
        Tokens are still requested for the cloud's Graph resource.
      - Bearer tokens go only to this endpoint (same scheme, host and port). An
        C(@odata.nextLink) elsewhere fails the task naming the link, and redirects are never
        followed.
    type: str
  exo_endpoint:
    description:
      - Override of the Exchange Online root, for example C(https://outlook.office365.com).
        Tokens are still requested for the cloud's Exchange Online resource unless
        O(exo_token_resource) is set.
      - Its tokens go only there, as for O(graph_endpoint).
    type: str
  exo_token_resource:
    description:
      - Override of the resource that Exchange Online tokens are requested for (the scope is
        C(<resource>/.default)), for example C(https://outlook.office365.com). By default the
        cloud's Exchange Online host (see O(cloud)).
      - An C(https://) URL like O(exo_endpoint); nothing is sent to it, it names the token's
        audience.
    type: str
  ca_path:
    description:
      - PEM bundle (or directory) of CAs to trust for the identity, Graph and Exchange
        endpoints. It holds even when E(REQUESTS_CA_BUNDLE) is set. A missing file, or one
        without a certificate, is an error.
    type: path
  validate_certs:
    description:
      - Check TLS certificates. Turn off only in tests.
    type: bool
    default: true
  token_cache_path:
    description:
      - File (created with mode 0600) where tokens are cached, so that a playbook run asks the
        identity endpoint once per resource instead of once per task.
      - Only a file this collection wrote is read and replaced, that is a regular file (not a
        link) owned by the user running the task, with no access for others, holding msal's
        token cache JSON. Any other file fails the task and is left as it is.
      - In check mode the cache is read but never written.
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP answer (connecting, and between two reads of an answer);
        more than 0 and at most 600. M(exchangeonline.mail.smtp_test) also gives each SMTP step
        this long.
      - "Bounds every request with its retries: throttling (429, 503, 504, honouring
        C(Retry-After); for the Exchange admin endpoint also 408, 500 and any answer saying
        C(maximum number of concurrent requests per tenant)), connection errors and read
        timeouts are retried, each delay at least
        1 s (also for C(Retry-After: 0), a negative or an unreadable value) plus up to 25 %
        jitter, at most 10 retries, and all of it within 4 x O(timeout) (120 s by default).
        A C(Retry-After) longer than what is left fails at once."
      - "Other bounds, whatever the options: an answer is read up to 32 MB; a collection up
        to 10,000 pages and 1,000,000 objects; an answer that is not the documented JSON fails
        the task naming the endpoint and showing (at most 200 characters of) what came back;
        all pages of one Exchange cmdlet within 30 minutes, the life of Exchange's paging
        cursor."
    type: float
    default: 30.0
requirements:
  - msal >= 1.24.0
  - requests >= 2.28.0
'''

    # The modules that call Exchange Online's admin endpoint (mailbox_info, mailbox_protocols).
    EXCHANGE = r'''
options: {}
notes:
  - "Exchange Online (its admin endpoint C(InvokeCommand)): the URL and C(X-AnchorMailbox) carry
    the tenant GUID (O(tenant_id) when it is one, else the access token's C(tid) claim), since
    Exchange refuses follow-up pages asked by a domain; a token whose C(tid) is another tenant
    than a GUID O(tenant_id) fails the task before Exchange is asked. Its answers 408, 429, 500,
    503, 504 and
    any answer saying C(maximum number of concurrent requests per tenant) are retried like
    Graph's throttling (see O(timeout)); a 400 or 404 is not. All pages of one cmdlet must come
    within 30 minutes, the lifetime of Exchange's paging cursor, each page within the bound of
    O(timeout)."
'''
