# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Microsoft 365 identity: app-only tokens with msal (client secret or certificate).

One place knows the national clouds, the endpoint overrides, certificate handling, the token
cache file and what the common AADSTS errors mean for the person running the playbook. Every HTTP
request of the collection goes through :class:`VerifyingSession`: only to the configured
endpoints, no redirects followed, answers read up to a size bound.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import hashlib
import json
import os
import re
import ssl
import stat
import tempfile
import threading
import time
import traceback
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from urllib.parse import urlsplit

from ansible.module_utils.common.parameters import env_fallback

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import TaskError
from ansible_collections.exchangeonline.mail.plugins.module_utils._options import seconds

try:
    import msal
    import requests
    from urllib3.util import parse_url
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

# Per value of the ``cloud`` option: the identity host (authority), the Microsoft Graph root, the
# Exchange Online root (``/adminapi/beta/<tenant>/InvokeCommand`` hangs below it) and the resource
# Exchange Online tokens are asked for (scope ``<resource>/.default``; Graph's resource is its
# root). README.md, "Clouds and endpoints", holds the same table; a unit test keeps them equal.
# Sources, abbreviated:
#   [national]  learn.microsoft.com/entra/identity-platform/authentication-national-cloud
#   [graph]     learn.microsoft.com/graph/deployments
#   [adminapi]  learn.microsoft.com/exchange/reference/admin-api-get-started ("base URL" table)
#   [scuba]     cisagov/ScubaGear Providers/ProviderHelpers/EXORestHelper.psm1 (scope per cloud)
#   [css]       microsoft/CSS-Exchange Shared/AzureFunctions/Get-CloudServiceEndpoint.ps1
#   [connect]   MicrosoftDocs/office-docs-powershell Connect-ExchangeOnline.md (ConnectionUri)
# GCC (moderate) tenants use 'public' ([adminapi]: "Microsoft 365 or Microsoft 365 GCC").
CLOUDS = {
    'public': {
        'authority': 'https://login.microsoftonline.com',  # [national]
        'graph': 'https://graph.microsoft.com',  # [graph]
        'exchange': 'https://outlook.office365.com',  # [adminapi], [scuba], [css]
        'exchange_resource': 'https://outlook.office365.com',  # [scuba], [css]
    },
    'usgov': {  # GCC High
        'authority': 'https://login.microsoftonline.us',  # [national], [graph]
        'graph': 'https://graph.microsoft.us',  # [graph]
        'exchange': 'https://outlook.office365.us',  # [adminapi], [scuba] gcchigh, [css] L4
        'exchange_resource': 'https://outlook.office365.us',  # [scuba], [css]
    },
    'usgov_dod': {
        'authority': 'https://login.microsoftonline.us',  # [national], [graph]
        'graph': 'https://dod-graph.microsoft.us',  # [graph]
        # Not webmail.apps.mil: that is DoD's Remote PowerShell host ([connect]), no REST API.
        'exchange': 'https://outlook-dod.office365.us',  # [adminapi], [scuba] dod, [css] L5
        'exchange_resource': 'https://outlook-dod.office365.us',  # [scuba], [css]
    },
    'china': {  # operated by 21Vianet
        # [graph]; [national] names login.partner.microsoftonline.cn, which serves it as well.
        'authority': 'https://login.chinacloudapi.cn',
        'graph': 'https://microsoftgraph.chinacloudapi.cn',  # [graph]
        # No source settles it: [adminapi] says https://outlook.office365.cn (for its v2.0
        # preview API); [css] (ChinaCloud), [connect] (O365China, the module that uses this
        # /adminapi/beta endpoint) and the older 21Vianet API pages say partner.outlook.cn.
        # exo_endpoint and exo_token_resource override both.
        'exchange': 'https://partner.outlook.cn',
        'exchange_resource': 'https://partner.outlook.cn',
    },
}
GRAPH, EXCHANGE = 'graph', 'exchange'
# The URL options and the column of CLOUDS each overrides.
URL_OPTIONS = {'authority_host': 'authority', 'graph_endpoint': GRAPH, 'exo_endpoint': EXCHANGE,
               'exo_token_resource': 'exchange_resource'}
GUID = re.compile(r'[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}')
TENANT_DOMAIN = re.compile(r'(?=.{4,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+'
                           r'[A-Za-z]{2,63}')
DEFAULT_PORTS = {'https': 443, 'http': 80}
# One answer is read up to this many bytes (a Graph page of 999 users or an InvokeCommand page
# of 1,000 mailboxes is a few MB).
BODY_LIMIT = 32 * 1024 * 1024
# One request, with all its retries and the reading of its answers, ends within this many times
# ``timeout`` (120 s for the default 30 s).
RETRY_FACTOR = 4
# What msal's SerializableTokenCache writes: a JSON object of these sections.
CACHE_SECTIONS = ('AccessToken', 'RefreshToken', 'IdToken', 'Account', 'AppMetadata')
CACHE_LIMIT = 4 * 1024 * 1024
EXCERPT = 200  # characters of an unexpected answer shown in a message

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


def m365_argument_spec() -> Dict[str, Dict[str, Any]]:
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
        exo_token_resource=dict(type='str', no_log=False),  # a URL naming an audience, no secret
        ca_path=dict(type='path'),
        validate_certs=dict(type='bool', default=True),
        token_cache_path=dict(type='path'),
        timeout=dict(type='float', default=30.0),
    )


M365_LIMITS = {'timeout': seconds(600)}


class IdentityError(TaskError):
    """A token could not be had; ``str()`` says why and what to do. The failed result holds
    ``aadsts``: the first AADSTS error code of the identity platform's answer, or None."""

    default_phase = 'token'

    def __init__(self, message: str, phase: str = 'token', aadsts: Optional[int] = None) -> None:
        super(IdentityError, self).__init__(message, phase, {'aadsts': aadsts})
        self.aadsts = aadsts


def url_problem(text: str, schemes: Tuple[str, ...], refused: str) -> Optional[str]:
    """What is wrong with ``text`` as the base URL of an endpoint (None: nothing): one of
    ``schemes``, a host, a valid port, no white space, credentials, query or fragment.
    ``refused``: why another scheme is refused, for the message."""
    if not text or len(text) > 2048:
        return 'must be an %s URL of at most 2048 characters' % ' or '.join(
            '%s://' % scheme for scheme in schemes)
    if any(ord(c) <= 32 or ord(c) == 127 for c in text):
        return 'must not hold white space or control characters'
    parts = urlsplit(text)
    try:
        parts.port
    except ValueError:
        return 'has an invalid port'
    if parts.scheme.lower() not in schemes:
        return refused
    if not parts.hostname:
        return 'names no host'
    if '@' in parts.netloc:
        return 'must not carry a user name or password'
    if parts.query or parts.fragment or text.endswith(('?', '#')):
        return 'must not carry a query or a fragment'
    return None


def endpoint_url(value: Any, option: str) -> str:
    """``value`` as an https URL without a trailing slash, or IdentityError naming ``option``."""
    text = value.strip() if isinstance(value, str) else ''
    problem = url_problem(text, ('https',), (
        'must be an https:// URL: %s, so plain http:// and other schemes are refused'
        % ('it names the audience of Exchange Online tokens' if option == 'exo_token_resource'
           else 'tokens and secrets go there')))
    if problem:
        example = CLOUDS['public'][URL_OPTIONS.get(option, 'graph')]
        raise IdentityError('%s %s (got %r), for example %s'
                            % (option, problem, _cut(value, 200), example), phase='input')
    return text.rstrip('/')


def origin(url: Any) -> Optional[Tuple[str, str, Optional[int]]]:
    """(scheme, host, port) of an absolute URL, default ports filled in; None if it has none,
    or if urllib.parse and urllib3 (which requests connects with) would read it differently:
    ``https://other:1\\@endpoint/`` is the endpoint to one and ``other`` to the other."""
    if not isinstance(url, str) or '\\' in url or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        return None
    found = scheme, parts.hostname.lower(), port or DEFAULT_PORTS.get(scheme)
    try:
        wire = parse_url(url)
    except Exception:  # pylint: disable=broad-except
        return None  # urllib3 cannot read it: it will not be sent
    if ((wire.scheme or '').lower(), (wire.host or '').lower().strip('[]'),
            wire.port or DEFAULT_PORTS.get((wire.scheme or '').lower())) != \
            (found[0], found[1].strip('[]'), found[2]):
        return None
    return found


# The bases of the classes below: requests' when it is there (without it the modules fail with
# M365_IMPORT_ERROR before using them). Any: requests has no type hints of its own.
_RequestException: Any = requests.exceptions.RequestException if HAS_M365_LIBS else Exception
_Session: Any = requests.Session if HAS_M365_LIBS else object
POOL_SIZE = 64


class OffEndpoint(_RequestException):
    """A request to a URL that is on none of the configured endpoints (never sent)."""


class AnswerTooLarge(_RequestException):
    """An answer longer than BODY_LIMIT (reading stopped there)."""


class NotJsonObject(_RequestException):
    """An identity endpoint answer that is not a JSON object (msal would trip over it)."""


class VerifyingSession(_Session):
    """The requests session of every call: certificate check explicit on every request, only
    to ``origins`` (the configured endpoints), redirects never followed, answers read up to
    ``limit`` bytes and before ``deadline`` (``RETRY_FACTOR`` x ``timeout`` when not given).
    Unless ``json_object=False`` is given (the Graph client checks its answers itself), an
    answer must be a JSON object: msal's requests to the identity endpoint.

    requests lets REQUESTS_CA_BUNDLE override ``Session.verify``, but not a ``verify`` given
    per request; proxies from the environment still apply.
    """

    def __init__(self, verify: Union[bool, str] = True, timeout: float = 30.0,
                 origins: Iterable[Optional[Tuple[str, str, Optional[int]]]] = (),
                 limit: int = BODY_LIMIT) -> None:
        """``verify``: check certificates (True), not (False), or the CA file or directory;
        ``origins``: what :func:`origin` gives for each configured endpoint."""
        super(VerifyingSession, self).__init__()
        # connections kept per host: as many as the most requests a module keeps in flight
        # (concurrency, at most 64), so that none opens a new TLS connection per request
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=POOL_SIZE)
        self.mount('https://', adapter)
        self.mount('http://', adapter)
        self.exo_verify = verify
        self.exo_timeout = timeout
        self.exo_origins = frozenset(origins)
        self.exo_limit = limit

    def request(self, method: str, url: Any, *args: Any,  # pylint: disable=arguments-differ
                **kwargs: Any) -> Any:
        deadline = kwargs.pop('deadline', None)
        json_object = kwargs.pop('json_object', True)
        if origin(url) not in self.exo_origins:
            raise OffEndpoint('%s is not on a configured endpoint' % _cut(url, 300))
        if kwargs.get('verify') in (None, True):
            kwargs['verify'] = self.exo_verify
        kwargs.setdefault('timeout', self.exo_timeout)
        kwargs['allow_redirects'] = False
        kwargs['stream'] = True
        if deadline is None:
            deadline = time.monotonic() + RETRY_FACTOR * self.exo_timeout
        response = self._within(deadline, url, lambda: requests.Session.request(
            self, method, url, *args, **kwargs))
        if json_object:
            try:
                body = json.loads(response.content)
            except (ValueError, RecursionError):
                body = None
            if not isinstance(body, dict):
                raise NotJsonObject('%s answered %s with %s, not a JSON object: %s' % (
                    _cut(url, 300), response.status_code,
                    response.headers.get('Content-Type') or 'no Content-Type',
                    excerpt(response.content)))
        return response

    def _within(self, deadline: float, url: Any, send: Callable[[], Any]) -> Any:
        """``send()``'s response, read whole, before ``deadline``. A socket timeout bounds each
        read, not the answer: a server that trickles its headers or body a byte at a time
        would hold the request for ever. So the request runs in a daemon thread that is given
        up (and its answer closed) at the deadline; it ends with the process at the latest."""
        outcome: Dict[str, Any] = {}

        def run() -> None:
            try:
                outcome['response'] = send()
                self._read(outcome['response'], deadline)
            except BaseException as e:  # pylint: disable=broad-except
                outcome['error'] = e
        worker = threading.Thread(target=run, name='exo-http', daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            if outcome.get('response') is not None:
                outcome['response'].close()
            raise requests.exceptions.ReadTimeout(
                'no complete answer from %s before the deadline (the answer trickled in, or '
                'did not come)' % _cut(url, 300))
        if 'error' in outcome:
            raise outcome['error']
        return outcome['response']

    def _read(self, response: Any, deadline: float) -> None:
        chunks: List[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > self.exo_limit:
                    raise AnswerTooLarge('the answer of %s is longer than %d bytes'
                                         % (_cut(response.url, 300), self.exo_limit))
                if time.monotonic() > deadline:
                    raise requests.exceptions.ReadTimeout(
                        'the answer of %s did not arrive in time' % _cut(response.url, 300))
                chunks.append(chunk)
        except Exception:
            response.close()
            raise
        response._content = b''.join(chunks)  # what requests keeps after reading the body


# The first msal that signs PS256 / x5t#S256 from a PEM certificate and key (see signs_ps256).
MSAL_PS256 = (1, 35)


def load_certificate(path: str, password: Optional[str] = None,
                     send_chain: bool = False) -> Tuple[Dict[str, str], str]:
    """(msal's client_credential dict, SHA-1 thumbprint) from a PEM file holding the certificate
    and its key (and, for ``send_chain``, its chain). The credential holds the certificate
    without a thumbprint where msal signs PS256 with it, else the SHA-1 thumbprint. The chain
    goes with the SHA-1 form on every msal: msal's PS256 path sends only the first certificate
    as x5c."""
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
    # the app's certificate is the one of the key, wherever it stands; the rest is its chain
    own = [c for c in certs if _same_key(c.public_key(), key.public_key())]
    if not own:
        raise IdentityError('no certificate in %s belongs to its private key (the file holds %d '
                            'certificate%s): put the app\'s certificate and its own key in one '
                            'PEM file' % (path, len(certs), '' if len(certs) == 1 else 's'),
                            phase='input')
    certs = own[:1] + [c for c in certs if c is not own[0]]
    # SHA-1 in upper-case hex: what the app registration shows, and what msal's thumbprint takes
    thumbprint = hashlib.sha1(certs[0].public_bytes(serialization.Encoding.DER)).hexdigest()
    thumbprint = thumbprint.upper()
    credential = {
        'private_key': key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode('ascii'),
    }
    if send_chain:  # subject name / issuer authentication: the whole chain in x5c
        credential['thumbprint'] = thumbprint
        credential['public_certificate'] = b''.join(
            c.public_bytes(serialization.Encoding.PEM) for c in certs).decode('ascii')
    elif signs_ps256():
        credential['public_certificate'] = certs[0].public_bytes(
            serialization.Encoding.PEM).decode('ascii')
    else:
        credential['thumbprint'] = thumbprint
    return credential, thumbprint


def _same_key(one: Any, other: Any) -> bool:
    """Whether two public keys are the same key (compared as SubjectPublicKeyInfo DER)."""
    form = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return one.public_bytes(*form) == other.public_bytes(*form)


def signs_ps256() -> bool:
    """Whether the installed msal signs a client assertion PS256 with the SHA-256 thumbprint
    (``x5t#S256``), as Microsoft's certificate-credentials page asks: msal 1.35 and later do so
    when given the certificate without a thumbprint (msal PR #835; they also send the certificate
    as ``x5c``). A given thumbprint is taken as SHA-1 and signed RS256 with ``x5t``, which msal
    marks deprecated but Entra still accepts; older msal can only do that with a PEM key."""
    found = re.match(r'(\d+)\.(\d+)', getattr(msal, '__version__', ''))
    return found is not None and (int(found.group(1)), int(found.group(2))) >= MSAL_PS256


def cached_tokens(cache: Any, scopes: List[str]) -> List[Dict[str, Any]]:
    """The access tokens for ``scopes`` in msal's ``cache``, as a list. msal 1.29 added
    ``TokenCache.search`` and deprecated ``find`` (a DeprecationWarning); 1.24 to 1.28 have only
    ``find``, with the same arguments."""
    search = getattr(cache, 'search', None) or cache.find
    return list(search(msal.TokenCache.CredentialType.ACCESS_TOKEN, target=scopes))


def check_ca_path(path: str) -> None:
    """IdentityError unless ``path`` is a directory or a file holding a PEM certificate."""
    if os.path.isdir(path):
        return
    if not os.path.isfile(path):
        raise IdentityError('ca_path %s does not exist (give a PEM file of the CAs that sign '
                            'the endpoints, or a directory of them)' % path, phase='input')
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as e:
        raise IdentityError('ca_path %s holds no usable PEM CA certificate: %s'
                            % (path, _short(e)), phase='input')


class Identity:
    """App-only tokens for Graph and Exchange Online of one tenant and app.

    ``check_mode``: the token cache is read but never written."""

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False,
                 resources: Optional[Mapping[str, str]] = None) -> None:
        """``resources``: more APIs to ask tokens for, {name: resource} (scope
        ``<resource>/.default``), such as Azure Resource Manager for the azure DNS provider."""
        self.params = params
        self.check_mode = check_mode
        cloud = CLOUDS[params.get('cloud') or 'public']
        self.authority_host = endpoint_url(params.get('authority_host') or cloud['authority'],
                                           'authority_host')
        self.resources = {GRAPH: cloud['graph'],
                          EXCHANGE: endpoint_url(params.get('exo_token_resource')
                                                 or cloud['exchange_resource'],
                                                 'exo_token_resource')}
        self.resources.update(resources or {})
        self.endpoints = {GRAPH: endpoint_url(params.get('graph_endpoint') or cloud['graph'],
                                              'graph_endpoint'),
                          EXCHANGE: endpoint_url(params.get('exo_endpoint') or cloud['exchange'],
                                                 'exo_endpoint')}
        self.tenant_id = params.get('tenant_id')
        self.client_id = params.get('client_id')
        if not self.tenant_id or not self.client_id:
            raise IdentityError('tenant_id and client_id are required (or set AZURE_TENANT_ID and '
                                'AZURE_CLIENT_ID)', phase='input')
        # Both go into URLs (the authority, InvokeCommand's path and anchor): a GUID, or for the
        # tenant also a domain name, nothing that could become another path or a query.
        if not (GUID.fullmatch(self.tenant_id) or TENANT_DOMAIN.fullmatch(self.tenant_id)):
            raise IdentityError('tenant_id %r is neither a tenant GUID nor a domain name of the '
                                'tenant (for example contoso.onmicrosoft.com)'
                                % _cut(self.tenant_id, 100), phase='input')
        if not GUID.fullmatch(self.client_id):
            raise IdentityError('client_id %r is not an application (client) ID, a GUID such as '
                                '00000000-0000-0000-0000-000000000000'
                                % _cut(self.client_id, 100), phase='input')
        verify = params.get('validate_certs', True)
        if verify and params.get('ca_path'):
            check_ca_path(params['ca_path'])
            verify = params['ca_path']
        self.timeout = params.get('timeout') or 30.0
        self.retry_time = RETRY_FACTOR * self.timeout
        origins = [origin(u) for u in [self.authority_host] + list(self.endpoints.values())]
        self.session = VerifyingSession(verify, self.timeout, origins)
        self.thumbprint = None
        if params.get('client_certificate_path'):
            credential, self.thumbprint = load_certificate(
                params['client_certificate_path'], params.get('client_certificate_password'),
                bool(params.get('client_certificate_send_chain')))
        elif params.get('client_secret'):
            credential = params['client_secret']
        else:
            raise IdentityError('give client_secret or client_certificate_path (or set '
                                'AZURE_CLIENT_SECRET)', phase='input')
        self.cache_path: Optional[str] = params.get('token_cache_path')
        self.cache = msal.SerializableTokenCache()
        if self.cache_path:
            text = self._read_cache()
            if text is not None:
                self.cache.deserialize(text)
        try:
            self.app = msal.ConfidentialClientApplication(
                self.client_id, client_credential=credential,
                authority='%s/%s' % (self.authority_host, self.tenant_id),
                token_cache=self.cache, http_client=self.session,
                instance_discovery=False)
        except requests.exceptions.RequestException as e:
            raise self._connect_error(e)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            # msal reading an answer that is not what the identity platform documents
            raise IdentityError('cannot use authority %s/%s: %s. Check tenant_id, cloud and '
                                'authority_host.' % (self.authority_host, self.tenant_id,
                                                     _short(e)))

    def scopes(self, resource: str) -> List[str]:
        return ['%s/.default' % self.resources[resource]]

    def token(self, resource: str = GRAPH, refresh: bool = False) -> str:
        """An access token for ``resource``; ``refresh`` drops the cached one first."""
        scopes = self.scopes(resource)
        if refresh:
            for item in cached_tokens(self.cache, scopes):
                self.cache.remove_at(item)
        try:
            result = self.app.acquire_token_for_client(scopes=scopes)
        except requests.exceptions.RequestException as e:
            raise self._connect_error(e)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            # msal reading a token answer that is not what the identity platform documents
            raise IdentityError('the identity endpoint %s gave an unusable answer: %s'
                                % (self.authority_host, _short(e)))
        if not isinstance(result, dict) or not isinstance(result.get('access_token'), str):
            raise self._error(result if isinstance(result, dict) else {}, resource)
        self._save_cache()
        return result['access_token']

    def _connect_error(self, exc: BaseException) -> 'IdentityError':
        if isinstance(exc, OffEndpoint):
            return IdentityError('the identity endpoint %s sent the token request elsewhere: '
                                 '%s. Secrets go only to authority_host, graph_endpoint and '
                                 'exo_endpoint; check authority_host.'
                                 % (self.authority_host, _short(exc)), phase='connect')
        if isinstance(exc, (AnswerTooLarge, NotJsonObject)):
            return IdentityError('the identity endpoint %s gave an unusable answer: %s -- '
                                 'check authority_host: it must be the Microsoft identity '
                                 'platform (for example https://login.microsoftonline.com)'
                                 % (self.authority_host, _short(exc)), phase='connect')
        if isinstance(exc, requests.exceptions.SSLError):
            return IdentityError('TLS check of %s failed: %s. Set ca_path to the CA that signs '
                                 'it (validate_certs: false only for tests).'
                                 % (self.authority_host, _short(exc)), phase='connect')
        return IdentityError('cannot reach the identity endpoint %s: %s'
                             % (self.authority_host, _short(exc)), phase='connect')

    def _error(self, result: Dict[str, Any], resource: str) -> 'IdentityError':
        codes = result.get('error_codes')
        codes = [c for c in codes if isinstance(c, int)] if isinstance(codes, list) else []
        description = str(result.get('error_description') or '').split('\r\n', 1)[0]
        hint = next((AADSTS_HINTS[c] for c in codes if c in AADSTS_HINTS), None)
        if not result.get('error'):
            description = 'the answer of %s holds no access_token' % self.authority_host
            hint = hint or 'check authority_host: it must be the Microsoft identity platform'
        msg = 'no token for %s (app %s, tenant %s): %s: %s' % (
            self.resources[resource], self.client_id, self.tenant_id,
            _cut(result.get('error') or 'invalid_answer', 100), _cut(description, 600))
        if hint:
            msg += ' -- ' + hint
        if self.thumbprint and 700027 in codes:
            msg += ' Certificate thumbprint: %s.' % self.thumbprint
        if result.get('correlation_id'):
            msg += ' (correlation id %s)' % result['correlation_id']
        return IdentityError(msg, aadsts=codes[0] if codes else None)

    # -- the token cache file --------------------------------------------------------------
    def _refuse(self, why: str) -> 'IdentityError':
        return IdentityError('token_cache_path %s %s; it is left as it is. Point '
                             'token_cache_path at a new file (the collection creates it with '
                             'mode 0600), or remove this one.' % (self.cache_path, why),
                             phase='token cache')

    def _cache_stat(self, path: str) -> Optional[os.stat_result]:
        """The stat of the cache file at ``path``, None when there is none; refuses a file the
        collection did not write: not a regular file, another owner, readable or writable by
        others."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise IdentityError('cannot read token_cache_path %s: %s' % (self.cache_path, e),
                                phase='token cache')
        if not stat.S_ISREG(st.st_mode):
            raise self._refuse('is not a regular file (a directory, a symbolic link or a '
                               'device)')
        if hasattr(os, 'geteuid') and st.st_uid != os.geteuid():
            raise self._refuse('belongs to another user (uid %d)' % st.st_uid)
        if st.st_mode & 0o077:
            raise self._refuse('can be read or written by other users (mode %04o), which a '
                               'token cache of this collection never is'
                               % stat.S_IMODE(st.st_mode))
        if st.st_size > CACHE_LIMIT:
            raise self._refuse('is larger than %d bytes' % CACHE_LIMIT)
        return st

    def _read_cache(self) -> Optional[str]:
        """The cache file's text when it is a token cache this collection wrote, None when
        there is no file (or no token_cache_path); anything else is refused (never
        overwritten)."""
        path = self.cache_path
        if path is None or self._cache_stat(path) is None:
            return None
        try:
            with open(path, 'rb') as f:
                raw = f.read(CACHE_LIMIT + 1)
        except (IOError, OSError) as e:
            raise IdentityError('cannot read token_cache_path %s: %s' % (self.cache_path, e),
                                phase='token cache')
        try:
            data = json.loads(raw.decode('utf-8'))
        except (ValueError, RecursionError):
            raise self._refuse('is not a token cache (not JSON)')
        if not isinstance(data, dict) or any(
                key not in CACHE_SECTIONS or not isinstance(section, dict)
                or not all(isinstance(entry, dict) for entry in section.values())
                for key, section in data.items()):
            raise self._refuse('is not a token cache (JSON, but not the shape of msal\'s '
                               'token cache: an object of %s)' % ', '.join(CACHE_SECTIONS))
        return raw.decode('utf-8')

    def _save_cache(self) -> None:
        if not self.cache_path or self.check_mode or not self.cache.has_state_changed:
            return
        self._read_cache()  # still ours (or still absent) right before it is replaced
        directory = os.path.dirname(os.path.abspath(self.cache_path))
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix='.token-cache-', dir=directory)
            with os.fdopen(fd, 'w') as f:
                f.write(self.cache.serialize())
            os.chmod(tmp, 0o600)
            os.rename(tmp, self.cache_path)
        except (IOError, OSError) as e:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            raise IdentityError('cannot write token_cache_path %s: %s'
                                % (self.cache_path, e), phase='token cache')


def token_claims(token: Any) -> Optional[Dict[str, Any]]:
    """The payload of an access token (a JWT) as a dict, or None when the token is not a JWT
    whose payload can be read (Microsoft may issue tokens that are opaque to clients). The
    signature is not checked: the claims only name things in messages and URLs, they never
    allow anything, and the service checks the token itself."""
    parts = token.split('.') if isinstance(token, str) else []
    if len(parts) != 3 or len(parts[1]) > 65536:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + '=' * (-len(parts[1]) % 4)))
    except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None


def token_roles(token: Any) -> Optional[List[str]]:
    """The application permissions in the ``roles`` claim of an app-only access token (a JWT),
    sorted; [] when it has no such claim; None when the token is not a JWT whose payload can be
    read (Microsoft may issue tokens that are opaque to clients). The signature is not checked:
    this names what a token lacks in a preflight message, it never allows anything, and the
    service decides for itself."""
    claims = token_claims(token)
    if claims is None:
        return None
    roles = claims.get('roles', [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return None
    return sorted(roles)


def token_tenant(token: Any) -> Optional[str]:
    """The tenant GUID in the ``tid`` claim of an access token (a JWT), or None when the token
    cannot be read or carries no GUID there. Exchange Online's InvokeCommand wants the GUID in
    its URL and anchor whatever form tenant_id was given in (its paging fails on a domain). The
    signature is not checked: the service checks the token itself."""
    tid = (token_claims(token) or {}).get('tid')
    return tid.lower() if isinstance(tid, str) and GUID.fullmatch(tid) else None


def _cut(text: Any, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + '...'


def excerpt(content: Any) -> str:
    """What came back, for a message: at most EXCERPT characters, control characters escaped,
    and the size when there is more; only NUL bytes, as their count."""
    if not isinstance(content, bytes):
        content = json.dumps(content).encode('utf-8')
    if content and not content.strip(b'\0'):
        return '%d NUL bytes' % len(content)  # what Exchange answers some refusals with
    text = content[:EXCERPT * 4].decode('utf-8', 'replace')
    shown = json.dumps(text[:EXCERPT], ensure_ascii=False)
    if len(text) > EXCERPT or len(content) > EXCERPT * 4:
        shown += '... (%d bytes in all)' % len(content)
    return shown


def _short(exc: Any) -> str:
    return _cut(exc, 300)
