"""The collection's identity code with the installed msal (the shared venvs: msal 1.39; the floor
venv: msal 1.24) against the lab emulator, real requests, nothing patched (issue 12, items 2, 4
and 11): the token refresh after a 401, the client assertion's algorithm and thumbprint, the
token resource of each cloud."""

import warnings

import jwt
import msal
import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._exo_admin import (
    ExoAdminClient)
from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import GraphClient
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    EXCHANGE,
    GRAPH,
    Identity,
    IdentityError,
)
from tests.integration.conftest import m365_args
from tests.lab.m365.emulator import make_client_certificate
from tests.lab.m365.identity import cert_thumbprints

MSAL = tuple(int(n) for n in msal.__version__.split('.')[:2])
USERS = ('User.Read.All', 'Exchange.ManageAsApp')


def token_requests(emu):
    return [r for r in emu.requests if r['resource'] == 'token']


def test_a_401_refreshes_the_token_on_the_installed_msal(emu):
    """msal before 1.29 has no TokenCache.search: the refresh used to end in AttributeError.
    Now the cached token is dropped and a new one asked for, without a DeprecationWarning."""
    emu.add_user('adele@' + emu.tenant_domain)
    graph = GraphClient(Identity(m365_args(emu, emu.add_app(secret='refresh-1', roles=USERS),
                                           timeout=10.0)), max_retry_time=30.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error', DeprecationWarning)
        assert graph.get('/users')['value']
        emu.expire_tokens()  # the emulator refuses every token issued so far: 401
        emu.clear_log()
        assert [u['userPrincipalName'] for u in graph.get('/users')['value']] == [
            'adele@' + emu.tenant_domain]
    statuses = [(r['resource'], r['status']) for r in emu.requests]
    assert statuses == [('graph', 401), ('token', 200), ('graph', 200)], statuses


@pytest.fixture(scope='module')
def client_cert():
    return make_client_certificate()


def expected_assertion(cert_pem, send_chain):
    """The JWT header fields the emulator logs for the installed msal: PS256 with the SHA-256
    thumbprint (and the certificate as x5c) from msal 1.35 on, RS256 with the SHA-1 thumbprint
    before, and RS256 with the SHA-1 thumbprint and the whole chain for send_chain."""
    x5t, x5t256, dummy = cert_thumbprints(cert_pem)
    if send_chain:
        return {'alg': 'RS256', 'x5t': x5t, 'x5t#S256': None, 'x5c': 2}
    if MSAL >= (1, 35):
        return {'alg': 'PS256', 'x5t': None, 'x5t#S256': x5t256, 'x5c': 1}
    return {'alg': 'RS256', 'x5t': x5t, 'x5t#S256': None, 'x5c': 0}


@pytest.mark.parametrize('send_chain', [False, True])
def test_the_client_assertion_uses_sha256_where_msal_can(emu, client_cert, tmp_path, send_chain):
    cert, key, thumb = client_cert
    issuer, dummy, dummy2 = make_client_certificate(common_name='exo-lab-issuer')
    pem = tmp_path / 'app.pem'
    pem.write_text(key + cert + (issuer if send_chain else ''))
    pem.chmod(0o600)
    app = emu.add_app(certificate_pem=cert, roles=USERS)
    params = m365_args(emu, app, client_certificate_path=str(pem), timeout=10.0,
                       client_certificate_send_chain=send_chain)
    identity = Identity(params)
    assert identity.thumbprint == thumb  # SHA-1, as the portal shows it, for AADSTS700027
    with warnings.catch_warnings():
        warnings.simplefilter('error', DeprecationWarning)
        claims = jwt.decode(identity.token(GRAPH), options={'verify_signature': False})
    assert claims['appidacr'] == '2' and claims['appid'] == app['client_id']
    [request] = token_requests(emu)
    assert request['status'] == 200
    assert sent(request) == expected_assertion(cert, send_chain), (msal.__version__,
                                                                   request['assertion'])


def sent(request):
    """The logged assertion header, thumbprints without base64 padding (msal pads them; RFC
    7515 base64url has none, Entra takes both)."""
    return {k: v.rstrip('=') if isinstance(v, str) and k.startswith('x5t') else v
            for k, v in request['assertion'].items()}


def test_a_certificate_the_app_does_not_have_names_its_thumbprint(emu, client_cert, tmp_path):
    cert, key, thumb = client_cert
    pem = tmp_path / 'app.pem'
    pem.write_text(key + cert)
    app = emu.add_app(roles=USERS)  # no certificate registered
    params = m365_args(emu, app, client_certificate_path=str(pem), timeout=10.0)
    with pytest.raises(IdentityError) as err:
        Identity(params).token(GRAPH)
    assert 'AADSTS700027' in str(err.value) or '700027' in str(err.value)
    assert 'Certificate thumbprint: %s.' % thumb in str(err.value)
    assert token_requests(emu)[0]['assertion']['alg'] == expected_assertion(cert, False)['alg']


@pytest.mark.parametrize('cloud, resource', [
    ('public', 'https://outlook.office365.com'),
    ('usgov', 'https://outlook.office365.us'),
    ('usgov_dod', 'https://outlook-dod.office365.us'),
    ('china', 'https://partner.outlook.cn'),
])
def test_exchange_tokens_are_asked_for_the_cloud_resource(emu, cloud, resource):
    """The lab knows only the worldwide resource: the others get Entra's 500011, and the
    message names the resource the token was asked for."""
    app = emu.add_app(secret='cloud-1', roles=USERS)
    identity = Identity(m365_args(emu, app, cloud=cloud, timeout=10.0))
    if cloud == 'public':
        claims = jwt.decode(identity.token(EXCHANGE), options={'verify_signature': False})
        assert claims['aud'] == resource
    else:
        with pytest.raises(IdentityError) as err:
            identity.token(EXCHANGE)
        assert 'no token for %s ' % resource in str(err.value)
        assert 'the cloud is wrong' in str(err.value)
    assert [r['scope'] for r in token_requests(emu)] == [resource + '/.default']


def test_exo_token_resource_overrides_the_cloud(emu):
    """For China's unsettled host: exo_endpoint and exo_token_resource set together."""
    emu.add_user('adele@' + emu.tenant_domain)
    app = emu.add_app(secret='cloud-2', roles=USERS)
    identity = Identity(m365_args(emu, app, cloud='china', timeout=10.0,
                                  exo_token_resource='https://outlook.office365.com/'))
    rows = ExoAdminClient(identity).invoke('Get-CASMailbox', {'ResultSize': 'Unlimited'})
    assert [r['PrimarySmtpAddress'] for r in rows] == ['adele@' + emu.tenant_domain]
    assert [r['scope'] for r in token_requests(emu)] == ['https://outlook.office365.com/.default']
    invoke = [r for r in emu.requests if r.get('cmdlet') == 'Get-CASMailbox']
    assert invoke and invoke[0]['status'] == 200


def test_the_certificate_of_the_key_is_found_in_any_order(emu, client_cert, tmp_path):
    """A PEM whose chain comes before the app's certificate (as some exports write it) still
    names the app's certificate; a PEM holding no certificate of its key says so before any
    token request, instead of an AADSTS700027 with another certificate's thumbprint."""
    cert, key, thumb = client_cert
    issuer, dummy, dummy2 = make_client_certificate(common_name='exo-lab-issuer')
    app = emu.add_app(certificate_pem=cert, roles=USERS)
    pem = tmp_path / 'app.pem'
    pem.write_text(issuer + key + cert)
    identity = Identity(m365_args(emu, app, client_certificate_path=str(pem), timeout=10.0))
    assert identity.thumbprint == thumb
    assert identity.token(GRAPH)
    pem.write_text(key + issuer)
    with pytest.raises(IdentityError) as err:
        Identity(m365_args(emu, app, client_certificate_path=str(pem), timeout=10.0))
    assert str(err.value) == (
        'input: no certificate in %s belongs to its private key (the file holds 1 '
        'certificate): put the app\'s certificate and its own key in one PEM file' % pem)
    assert len(token_requests(emu)) == 1
