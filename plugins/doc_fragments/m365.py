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
        are preferred over secrets). The thumbprint is computed.
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
    type: bool
    default: false
  cloud:
    description:
      - The Microsoft cloud. V(public) (worldwide), V(usgov) (GCC High), V(usgov_dod) (DoD) or
        V(china) (operated by 21Vianet). Chooses the identity, Graph and Exchange Online hosts.
    type: str
    default: public
    choices: [china, public, usgov, usgov_dod]
  authority_host:
    description:
      - Override of the identity host, for example C(https://login.microsoftonline.com).
    type: str
  graph_endpoint:
    description:
      - Override of the Microsoft Graph root, for example C(https://graph.microsoft.com).
        Tokens are still requested for the cloud's Graph resource.
    type: str
  exo_endpoint:
    description:
      - Override of the Exchange Online root, for example C(https://outlook.office365.com).
    type: str
  ca_path:
    description:
      - PEM bundle of CAs to trust for the identity, Graph and Exchange endpoints. It holds even
        when E(REQUESTS_CA_BUNDLE) is set.
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
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP answer.
    type: float
    default: 30.0
requirements:
  - msal >= 1.24.0
  - requests >= 2.28.0
'''
