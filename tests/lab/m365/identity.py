"""The identity half: OpenID configuration, JWKS and the v2.0 token endpoint (client credentials
with a client secret or a certificate-signed client assertion).

Audience decision: the token's ``aud`` is the resource named in the scope, as asked:
``<emu.url>/.default`` -> ``<emu.url>``, ``https://graph.microsoft.com/.default`` ->
``https://graph.microsoft.com``, ``https://outlook.office365.com/.default`` ->
``https://outlook.office365.com`` (the GUID forms of Graph and Exchange Online are accepted too
and kept as given, as AAD does). Graph on the emulator accepts ``<emu.url>``, Graph's URI and its
GUID; a token for Exchange Online gets 401 from Graph (invalid audience). Tokens are v1.0 shaped
like the app-only tokens AAD issues for these resources, and carry the roles granted to the app on
the API they are for (``roles_for``: Exchange Online's own permissions such as SMTP.SendAsApp in an
Exchange Online token, the others in a Graph token, every role in one for ``<emu.url>``).
"""

import base64
import hashlib
import time
import urllib.parse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .common import Response, aad_error, new_id

GRAPH_RESOURCES = ('https://graph.microsoft.com', '00000003-0000-0000-c000-000000000000')
EXO_RESOURCES = ('https://outlook.office365.com', '00000002-0000-0ff1-ce00-000000000000')
# Azure Resource Manager (the azure DNS provider): the resource named in its scope
ARM_RESOURCES = ('https://management.azure.com', 'https://management.core.windows.net')
ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
RESERVED_SCOPES = ('openid', 'profile', 'offline_access')
CLOCK_SKEW = 300  # AAD tolerates five minutes of skew on client assertions


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def b64url_uint(value):
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, 'big'))


def openid_configuration(emu, tenant_id):
    """The v2.0 discovery document, field for field as
    https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration serves it
    (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc, section "Find your
    app's OpenID configuration document URI"),
    with the emulator's origin in place of login.microsoftonline.com and graph.microsoft.com."""
    base = '%s/%s' % (emu.url, tenant_id)
    return {
        'token_endpoint': base + '/oauth2/v2.0/token',
        'token_endpoint_auth_methods_supported': ['client_secret_post', 'private_key_jwt',
                                                  'client_secret_basic'],
        'jwks_uri': base + '/discovery/v2.0/keys',
        'response_modes_supported': ['query', 'fragment', 'form_post'],
        'subject_types_supported': ['pairwise'],
        'id_token_signing_alg_values_supported': ['RS256'],
        'response_types_supported': ['code', 'id_token', 'code id_token', 'id_token token'],
        'scopes_supported': ['openid', 'profile', 'email', 'offline_access'],
        'issuer': base + '/v2.0',
        'request_uri_parameter_supported': False,
        'userinfo_endpoint': emu.url + '/oidc/userinfo',
        'authorization_endpoint': base + '/oauth2/v2.0/authorize',
        'device_authorization_endpoint': base + '/oauth2/v2.0/devicecode',
        'http_logout_supported': True,
        'frontchannel_logout_supported': True,
        'end_session_endpoint': base + '/oauth2/v2.0/logout',
        'claims_supported': ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name',
                             'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat',
                             'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid',
                             'ver', 'at_hash', 'c_hash', 'email'],
        'kerberos_endpoint': base + '/kerberos',
        'tenant_region_scope': 'EU',
        'cloud_instance_name': 'microsoftonline.com',
        'cloud_graph_host_name': 'graph.windows.net',
        'msgraph_host': urllib.parse.urlsplit(emu.url).netloc,
        'rbac_url': 'https://pas.windows.net',
    }


def jwks(emu):
    """https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys: {"keys": [{kty, use, kid,
    x5t, n, e, x5c, issuer}]} (the key set AAD publishes for token signing)."""
    numbers = emu.signing_key.public_key().public_numbers()
    return {'keys': [{
        'kty': 'RSA', 'use': 'sig', 'kid': emu.signing_kid, 'x5t': emu.signing_kid,
        'n': b64url_uint(numbers.n), 'e': b64url_uint(numbers.e),
        'x5c': [base64.b64encode(emu.signing_cert_der).decode('ascii')],
        'issuer': '%s/%s/v2.0' % (emu.url, emu.tenant_id),
    }]}


def cert_thumbprints(cert_pem):
    """(x5t, x5t#S256) of a PEM certificate: base64url SHA-1 and SHA-256 of its DER."""
    if isinstance(cert_pem, str):
        cert_pem = cert_pem.encode('ascii')
    cert = x509.load_pem_x509_certificate(cert_pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    return b64url(hashlib.sha1(der).digest()), b64url(hashlib.sha256(der).digest()), cert


def resource_of(emu, scope):
    """(audience, error Response) for a client-credentials scope string."""
    scopes = [s for s in scope.split() if s.lower() not in RESERVED_SCOPES]
    if not scopes:
        return None, aad_error(400, 'invalid_scope', 1002012,
                               "The provided value for scope %s is not valid. Client credential "
                               "flows must have a scope value with /.default suffixed to the "
                               "resource identifier (application ID URI)." % scope)
    if len(scopes) > 1:
        return None, aad_error(400, 'invalid_scope', 70011,
                               "The provided request must include a 'scope' input parameter. "
                               "The provided value for the input parameter 'scope' is not valid. "
                               "The scope %s is not valid." % scope)
    one = scopes[0]
    if not one.endswith('/.default'):
        return None, aad_error(400, 'invalid_scope', 1002012,
                               "The provided value for scope %s is not valid. Client credential "
                               "flows must have a scope value with /.default suffixed to the "
                               "resource identifier (application ID URI)." % one)
    resource = one[:-len('/.default')].rstrip('/')
    known = (emu.url,) + GRAPH_RESOURCES + EXO_RESOURCES + ARM_RESOURCES
    for candidate in known:
        if resource.lower() == candidate.lower():
            return candidate, None
    return None, aad_error(400, 'invalid_resource', 500011,
                           "The resource principal named %s was not found in the tenant named "
                           "%s. This can happen if the application has not been installed by "
                           "the administrator of the tenant or consented to by any user in the "
                           "tenant. You might have sent your authentication request to the "
                           "wrong tenant." % (resource, emu.tenant_domain))


def token_request(emu, tenant_id, form, headers, log):
    """POST /{tenant}/oauth2/v2.0/token: the documented success body
    (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
    section "Successful response")
    {token_type, expires_in, ext_expires_in, access_token} or the AAD error shape."""
    client_id = form.get('client_id')
    secret = form.get('client_secret')
    auth = headers.get('Authorization') or ''
    if auth.lower().startswith('basic '):  # client_secret_basic
        try:
            pair = base64.b64decode(auth[6:].strip()).decode('utf-8')
            client_id, secret = [urllib.parse.unquote_plus(p) for p in pair.split(':', 1)]
        except (ValueError, UnicodeDecodeError):
            return aad_error(401, 'invalid_client', 7000215, 'Invalid client secret provided.')
    log['client_id'] = client_id
    log['scope'] = form.get('scope')
    if form.get('grant_type') != 'client_credentials':
        return aad_error(400, 'unsupported_grant_type', 70003,
                         'The app requested an unsupported grant type \'%s\'.'
                         % form.get('grant_type'))
    if not client_id:
        return aad_error(400, 'invalid_request', 900144,
                         "The request body must contain the following parameter: 'client_id'.")
    app = emu.app(client_id)
    if app is None:
        return aad_error(400, 'unauthorized_client', 700016,
                         "Application with identifier '%s' was not found in the directory '%s'. "
                         "This can happen if the application has not been installed by the "
                         "administrator of the tenant or consented to by any user in the tenant. "
                         "You may have sent your authentication request to the wrong tenant."
                         % (client_id, emu.tenant_domain))
    if secret is not None:
        if secret != app['secret']:
            return aad_error(401, 'invalid_client', 7000215,
                             "Invalid client secret provided. Ensure the secret being sent in the "
                             "request is the client secret value, not the client secret ID, for a "
                             "secret added to app '%s'." % client_id)
        if app.get('secret_expired'):
            return aad_error(401, 'invalid_client', 7000222,
                             "The provided client secret keys for app '%s' are expired. Visit the "
                             "Azure portal to create new keys for your app: "
                             "https://aka.ms/NewClientSecret, or consider using certificate "
                             "credentials for added security: https://aka.ms/certCreds."
                             % client_id)
        acr = '1'
    elif form.get('client_assertion'):
        failure = check_assertion(emu, app, tenant_id, form, log)
        if failure is not None:
            return failure
        acr = '2'
    else:
        return aad_error(401, 'invalid_client', 7000218,
                         "The request body must contain the following parameter: "
                         "'client_assertion' or 'client_secret'.")
    audience, failure = resource_of(emu, form.get('scope') or '')
    if failure is not None:
        return failure
    token, lifetime = emu.issue_token(app, audience, acr)
    return Response(200, {'token_type': 'Bearer', 'expires_in': lifetime,
                          'ext_expires_in': lifetime, 'access_token': token},
                    {'Cache-Control': 'no-store, no-cache', 'Pragma': 'no-cache'})


def check_assertion(emu, app, tenant_id, form, log):
    """Validate a client assertion JWT (RS256/PS256, x5t or x5t#S256 header) against the
    certificates registered for the app; None when it is good, else the AAD error. The log
    entry gets ``assertion``: the header's ``alg``, ``x5t`` and ``x5t#S256`` (None when absent)
    and ``x5c``, the number of certificates sent (0 when none)."""
    client_id = app['client_id']
    if form.get('client_assertion_type') != ASSERTION_TYPE:
        return aad_error(400, 'invalid_request', 50027,
                         "JWT token is invalid or malformed. client_assertion_type must be '%s'."
                         % ASSERTION_TYPE)
    assertion = form['client_assertion']
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return aad_error(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.')
    x5c = header.get('x5c')
    log['assertion'] = {'alg': header.get('alg'), 'x5t': header.get('x5t'),
                        'x5t#S256': header.get('x5t#S256'),
                        'x5c': len(x5c) if isinstance(x5c, list) else 0}
    x5t = (header.get('x5t') or '').rstrip('=')
    x5t256 = (header.get('x5t#S256') or '').rstrip('=')
    cert = None
    for entry in app['certificates']:
        if (x5t and x5t == entry['x5t']) or (x5t256 and x5t256 == entry['x5t#S256']):
            cert = entry['cert']
    if cert is None:
        shown = x5t or x5t256
        try:
            shown = base64.urlsafe_b64decode(shown + '=' * (-len(shown) % 4)).hex().upper()
        except ValueError:
            pass
        return aad_error(401, 'invalid_client', 700027,
                         "The certificate with identifier used to sign the client assertion is "
                         "not registered on application. [Reason - The key was not found., "
                         "Thumbprint of key used by client: '%s', Please visit the Azure Portal, "
                         "Graph Explorer or directly use MS Graph to see configured keys for app "
                         "Id '%s'. Review the documentation at "
                         "https://docs.microsoft.com/en-us/graph/deployments to determine the "
                         "corresponding service endpoint and "
                         "https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-"
                         "rest-1.0&tabs=http to build a query request URL, such as "
                         "'https://graph.microsoft.com/beta/applications/%s']."
                         % (shown, client_id, client_id))
    endpoints = ['%s/%s/oauth2/v2.0/token' % (emu.url, t)
                 for t in sorted({tenant_id, emu.tenant_id, emu.tenant_domain})]
    if header.get('alg') not in ('RS256', 'PS256'):
        return aad_error(401, 'invalid_client', 700027,
                         'Client assertion failed signature validation. Unsupported algorithm.')
    try:
        claims = jwt.decode(assertion, cert.public_key(), algorithms=['RS256', 'PS256'],
                            audience=endpoints, leeway=CLOCK_SKEW,
                            options={'require': ['exp', 'aud', 'iss', 'sub']})
    except jwt.InvalidSignatureError:
        return aad_error(401, 'invalid_client', 700027,
                         'Client assertion failed signature validation.')
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        return aad_error(401, 'invalid_client', 700024,
                         'Client assertion is not within its valid time range. Current time: '
                         '%s, assertion valid from and expiry time as signed in the token.'
                         % time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
    except jwt.InvalidAudienceError:
        return aad_error(401, 'invalid_client', 700212,
                         "The audience claim of the client assertion does not match the token "
                         "endpoint. Expected one of %s." % ', '.join(sorted(endpoints)))
    except jwt.PyJWTError as e:
        return aad_error(400, 'invalid_request', 50027,
                         'JWT token is invalid or malformed. %s' % e)
    if claims.get('iss') != client_id or claims.get('sub') != client_id:
        return aad_error(401, 'invalid_client', 700021,
                         "Client assertion application identifier doesn't match 'client_id' "
                         "parameter. Review the documentation at "
                         "https://docs.microsoft.com/en-us/azure/active-directory/develop/"
                         "active-directory-certificate-credentials .")
    return None


def access_token_claims(emu, app, audience, acr, lifetime):
    """Claims of an app-only v1.0 access token, as AAD issues them for Graph and EXO
    (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference)."""
    now = int(time.time())
    claims = {
        'aud': audience,
        'iss': 'https://sts.windows.net/%s/' % emu.tenant_id,
        'iat': now, 'nbf': now, 'exp': now + lifetime,
        'aio': b64url(new_id().encode())[:40],
        'app_displayname': app['display_name'],
        'appid': app['client_id'], 'appidacr': acr,
        'azp': app['client_id'],
        'idp': 'https://sts.windows.net/%s/' % emu.tenant_id,
        'idtyp': 'app',
        'oid': app['object_id'], 'sub': app['object_id'],
        'rh': '0.AAAA' + b64url(app['client_id'].encode())[:20] + '.',
        'tenant_region_scope': 'EU',
        'tid': emu.tenant_id,
        'uti': b64url(new_id().encode())[:22],
        'ver': '1.0',
        'jti': new_id(),
    }
    roles = roles_for(app['roles'], audience)
    if roles:
        claims['roles'] = roles
    return claims


# The application permissions of the Office 365 Exchange Online API; the other roles the lab
# grants are Microsoft Graph's. A token's roles claim holds the permissions granted on the API it
# is for (access-token-claims-reference: "roles ... the set of permissions exposed by your
# application that the requesting application ... has been given"), so a Graph token never lists
# SMTP.SendAsApp and an Exchange Online token never lists Domain.ReadWrite.All.
EXO_ROLES = ('Exchange.ManageAsApp', 'Exchange.ManageAsAppV2', 'SMTP.SendAsApp',
             'full_access_as_app', 'POP.AccessAsApp', 'IMAP.AccessAsApp')


def roles_for(roles, audience):
    """The granted ``roles`` a token for ``audience`` carries (the emulator's own URL stands for
    both APIs, so it carries them all)."""
    if audience in EXO_RESOURCES:
        return [r for r in roles if r in EXO_ROLES]
    if audience in GRAPH_RESOURCES:
        return [r for r in roles if r not in EXO_ROLES]
    return list(roles)
