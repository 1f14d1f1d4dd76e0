# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Microsoft 365 identity: app-only tokens with msal (client secret or certificate).

One place knows the national clouds, the endpoint overrides, certificate handling, the token
cache file and what the common AADSTS errors mean for the person running the playbook.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import tempfile
import traceback

from ansible.module_utils.common.parameters import env_fallback

from ansible_collections.exchangeonline.mail.plugins.module_utils._options import seconds

try:
    import msal
    import requests
    HAS_M365_LIBS = True
    M365_IMPORT_ERROR = None
except ImportError:
    HAS_M365_LIBS = False
    M365_IMPORT_ERROR = traceback.format_exc()

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

# authority host, Graph, Exchange Online, per cloud (Microsoft's national cloud endpoint tables).
CLOUDS = {
    'public': ('https://login.microsoftonline.com', 'https://graph.microsoft.com',
               'https://outlook.office365.com'),
    'usgov': ('https://login.microsoftonline.us', 'https://graph.microsoft.us',
              'https://outlook.office365.us'),
    'usgov_dod': ('https://login.microsoftonline.us', 'https://dod-graph.microsoft.us',
                  'https://webmail.apps.mil'),
    'china': ('https://login.chinacloudapi.cn', 'https://microsoftgraph.chinacloudapi.cn',
              'https://partner.outlook.cn'),
}
GRAPH, EXCHANGE = 'graph', 'exchange'

AADSTS_HINTS = {
    7000215: 'the client secret is wrong. Use the secret\'s Value (not its Secret ID) from the '
             'app registration\'s Certificates & secrets, or create a new one.',
    7000222: 'the client secret has expired. Create a new secret in the app registration.',
    700016: 'no application with this client_id exists in the tenant. Check client_id and '
            'tenant_id, and that the app was granted admin consent in this tenant.',
    90002: 'the tenant does not exist. Check tenant_id (a GUID or an onmicrosoft.com domain) '
           'and cloud.',
    900023: 'tenant_id is not a valid tenant identifier (a GUID or a verified domain).',
    700027: 'the certificate is not registered for this app (or the key does not match it). '
            'Upload the certificate (public part) to the app registration\'s Certificates & '
            'secrets; its thumbprint is given below.',
    700024: 'the client assertion is not within its validity period: check this machine\'s '
            'clock.',
    65001: 'the app has not been granted admin consent for the permissions it needs. Grant '
           'admin consent in the app registration\'s API permissions.',
    500011: 'the resource is not available in this tenant (for Exchange Online: the tenant has '
            'no Exchange Online, or the cloud is wrong).',
    1002012: 'the requested scope is invalid: app-only tokens need <resource>/.default.',
    70011: 'the requested scope is invalid: app-only tokens need <resource>/.default.',
    7000112: 'the application is disabled in this tenant.',
}


def m365_argument_spec():
    """The shared Microsoft 365 options (doc fragment exchangeonline.mail.m365)."""
    return dict(
        tenant_id=dict(type='str', fallback=(env_fallback, ['AZURE_TENANT_ID'])),
        client_id=dict(type='str', fallback=(env_fallback, ['AZURE_CLIENT_ID'])),
        client_secret=dict(type='str', no_log=True,
                           fallback=(env_fallback, ['AZURE_CLIENT_SECRET'])),
        client_certificate_path=dict(type='path',
                                     fallback=(env_fallback, ['AZURE_CLIENT_CERTIFICATE_PATH'])),
        client_certificate_password=dict(
            type='str', no_log=True,
            fallback=(env_fallback, ['AZURE_CLIENT_CERTIFICATE_PASSWORD'])),
        client_certificate_send_chain=dict(type='bool', default=False),
        cloud=dict(type='str', default='public', choices=sorted(CLOUDS)),
        authority_host=dict(type='str'),
        graph_endpoint=dict(type='str'),
        exo_endpoint=dict(type='str'),
        ca_path=dict(type='path'),
        validate_certs=dict(type='bool', default=True),
        token_cache_path=dict(type='path'),
        timeout=dict(type='float', default=30.0),
    )


M365_LIMITS = {'timeout': seconds(600)}


class IdentityError(Exception):
    """A token could not be had; ``str()`` says why and what to do."""

    def __init__(self, message, phase='token', aadsts=None):
        super(IdentityError, self).__init__('%s: %s' % (phase, message))
        self.phase = phase
        self.aadsts = aadsts


class VerifyingSession(requests.Session if HAS_M365_LIBS else object):
    """A requests session whose certificate check is explicit on every request.

    requests lets REQUESTS_CA_BUNDLE override ``Session.verify``, but not a ``verify`` given
    per request; proxies from the environment still apply.
    """

    def __init__(self, verify=True, timeout=30.0):
        super(VerifyingSession, self).__init__()
        self.exo_verify = verify
        self.exo_timeout = timeout

    def request(self, method, url, *args, **kwargs):  # pylint: disable=arguments-differ
        if kwargs.get('verify') in (None, True):
            kwargs['verify'] = self.exo_verify
        kwargs.setdefault('timeout', self.exo_timeout)
        return super(VerifyingSession, self).request(method, url, *args, **kwargs)


def load_certificate(path, password=None, send_chain=False):
    """msal's client_credential dict from a PEM file holding the certificate and its key."""
    if not HAS_CRYPTOGRAPHY:
        raise IdentityError('client_certificate_path needs the cryptography package (msal '
                            'normally brings it)', phase='input')
    try:
        with open(path, 'rb') as f:
            pem = f.read()
    except (IOError, OSError) as e:
        raise IdentityError('cannot read client_certificate_path %s: %s' % (path, e),
                            phase='input')
    try:
        key = serialization.load_pem_private_key(
            pem, password=password.encode('utf-8') if password else None)
    except TypeError:
        raise IdentityError('the private key in %s is encrypted: set client_certificate_password'
                            % path, phase='input')
    except ValueError as e:
        raise IdentityError('no usable private key in %s (%s). It must be a PEM file holding the '
                            'certificate and its unencrypted or password-protected RSA key.'
                            % (path, e), phase='input')
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except (AttributeError, ValueError):
        try:
            certs = [x509.load_pem_x509_certificate(pem)]
        except ValueError as e:
            raise IdentityError('no certificate in %s: %s' % (path, e), phase='input')
    der = certs[0].public_bytes(serialization.Encoding.DER)
    credential = {
        'private_key': key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode('ascii'),
        'thumbprint': hashlib.sha1(der).hexdigest().upper(),
    }
    if send_chain:  # subject name / issuer authentication: send x5c
        credential['public_certificate'] = b''.join(
            c.public_bytes(serialization.Encoding.PEM) for c in certs).decode('ascii')
    return credential


class Identity:
    """App-only tokens for Graph and Exchange Online of one tenant and app."""

    def __init__(self, params):
        self.params = params
        cloud = CLOUDS[params.get('cloud') or 'public']
        self.authority_host = (params.get('authority_host') or cloud[0]).rstrip('/')
        self.resources = {GRAPH: cloud[1], EXCHANGE: cloud[2]}
        self.endpoints = {GRAPH: (params.get('graph_endpoint') or cloud[1]).rstrip('/'),
                          EXCHANGE: (params.get('exo_endpoint') or cloud[2]).rstrip('/')}
        self.tenant_id = params.get('tenant_id')
        self.client_id = params.get('client_id')
        if not self.tenant_id or not self.client_id:
            raise IdentityError('tenant_id and client_id are required (or set AZURE_TENANT_ID and '
                                'AZURE_CLIENT_ID)', phase='input')
        verify = params.get('validate_certs', True)
        if verify and params.get('ca_path'):
            verify = params['ca_path']
        self.session = VerifyingSession(verify, params.get('timeout') or 30.0)
        self.thumbprint = None
        if params.get('client_certificate_path'):
            credential = load_certificate(params['client_certificate_path'],
                                          params.get('client_certificate_password'),
                                          params.get('client_certificate_send_chain'))
            self.thumbprint = credential['thumbprint']
        elif params.get('client_secret'):
            credential = params['client_secret']
        else:
            raise IdentityError('give client_secret or client_certificate_path (or set '
                                'AZURE_CLIENT_SECRET)', phase='input')
        self.cache_path = params.get('token_cache_path')
        self.cache = msal.SerializableTokenCache()
        if self.cache_path and os.path.exists(self.cache_path):
            try:
                with open(self.cache_path) as f:
                    self.cache.deserialize(f.read())
            except (IOError, OSError, ValueError):
                self.cache = msal.SerializableTokenCache()  # unreadable cache: start afresh
        try:
            self.app = msal.ConfidentialClientApplication(
                self.client_id, client_credential=credential,
                authority='%s/%s' % (self.authority_host, self.tenant_id),
                token_cache=self.cache, http_client=self.session,
                instance_discovery=False)
        except ValueError as e:
            raise IdentityError('cannot use authority %s/%s: %s. Check tenant_id, cloud and '
                                'authority_host.' % (self.authority_host, self.tenant_id, e))
        except requests.exceptions.RequestException as e:
            raise self._connect_error(e)

    def scopes(self, resource):
        return ['%s/.default' % self.resources[resource]]

    def token(self, resource=GRAPH, refresh=False):
        """An access token for ``resource``; ``refresh`` drops the cached one first."""
        scopes = self.scopes(resource)
        if refresh:
            for item in list(self.cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN,
                                               target=scopes)):
                self.cache.remove_at(item)
        try:
            result = self.app.acquire_token_for_client(scopes=scopes)
        except requests.exceptions.RequestException as e:
            raise self._connect_error(e)
        except ValueError as e:
            raise IdentityError('the identity endpoint %s gave an unusable answer: %s'
                                % (self.authority_host, e))
        if 'access_token' not in result:
            raise self._error(result, resource)
        self._save_cache()
        return result['access_token']

    def _connect_error(self, exc):
        if isinstance(exc, requests.exceptions.SSLError):
            return IdentityError('TLS check of %s failed: %s. Set ca_path to the CA that signs '
                                 'it (validate_certs: false only for tests).'
                                 % (self.authority_host, _short(exc)), phase='connect')
        return IdentityError('cannot reach the identity endpoint %s: %s'
                             % (self.authority_host, _short(exc)), phase='connect')

    def _error(self, result, resource):
        codes = result.get('error_codes') or []
        description = (result.get('error_description') or '').split('\r\n')[0]
        hint = next((AADSTS_HINTS[c] for c in codes if c in AADSTS_HINTS), None)
        msg = 'no token for %s (app %s, tenant %s): %s: %s' % (
            self.resources[resource], self.client_id, self.tenant_id, result.get('error'),
            description)
        if hint:
            msg += ' -- ' + hint
        if self.thumbprint and 700027 in codes:
            msg += ' Certificate thumbprint: %s.' % self.thumbprint
        if result.get('correlation_id'):
            msg += ' (correlation id %s)' % result['correlation_id']
        return IdentityError(msg, aadsts=codes[0] if codes else None)

    def _save_cache(self):
        if not self.cache_path or not self.cache.has_state_changed:
            return
        directory = os.path.dirname(os.path.abspath(self.cache_path))
        try:
            fd, tmp = tempfile.mkstemp(prefix='.token-cache-', dir=directory)
            with os.fdopen(fd, 'w') as f:
                f.write(self.cache.serialize())
            os.chmod(tmp, 0o600)
            os.rename(tmp, self.cache_path)
        except (IOError, OSError) as e:
            raise IdentityError('cannot write token_cache_path %s: %s'
                                % (self.cache_path, e), phase='token cache')


def _short(exc):
    text = str(exc)
    return text if len(text) < 300 else text[:300] + '...'
