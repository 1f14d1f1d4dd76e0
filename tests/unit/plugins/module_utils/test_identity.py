"""The pure parts of the identity module_utils (issue 12, items 2, 4 and 11): the cloud table
against the README's, the token cache lookup on every allowed msal, the certificate credential
msal is given."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import warnings

import msal
import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    CLOUDS,
    Identity,
    IdentityError,
    cached_tokens,
    load_certificate,
    signs_ps256,
)
from tests.lab.m365.emulator import make_client_certificate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))
COLUMNS = ('authority', 'graph', 'exchange', 'exchange_resource')
GUID = '8f0c6a3e-5a1b-4c2d-9e8f-0a1b2c3d4e5f'


def msal_version():
    return tuple(int(n) for n in msal.__version__.split('.')[:2])


def readme_clouds(name):
    """{cloud option: [row, ...]} of the clouds table in README ``name``: each row the four
    hosts in CLOUDS' order."""
    with open(os.path.join(REPO, name), encoding='utf-8') as f:
        text = f.read()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) == 7 and re.fullmatch(r'`[a-z_]+`', cells[1]) and \
                cells[2].startswith('https://'):
            rows.setdefault(cells[1].strip('`'), []).append(cells[2:6])
    return rows


@pytest.mark.parametrize('readme', ['README.md', 'README.ja.md'])
def test_the_readme_table_is_the_code_table(readme):
    rows = readme_clouds(readme)
    assert sorted(rows) == sorted(CLOUDS), rows  # every cloud, nothing else
    for cloud, found in rows.items():
        for row in found:  # public twice: worldwide and GCC
            assert row == [CLOUDS[cloud][c] for c in COLUMNS], (readme, cloud)
    assert len(rows['public']) == 2 and sum(len(r) for r in rows.values()) == 5


def test_dod_exchange_is_the_rest_host():
    assert CLOUDS['usgov_dod']['exchange'] == 'https://outlook-dod.office365.us'
    assert CLOUDS['usgov_dod']['exchange_resource'] == 'https://outlook-dod.office365.us'
    assert not [c for c in CLOUDS.values() if 'apps.mil' in repr(c)]


def params(**extra):
    base = dict(tenant_id=GUID, client_id=GUID, client_secret='s', cloud='public')
    base.update(extra)
    return base


@pytest.mark.parametrize('value, says', [
    ('http://partner.outlook.cn', 'must be an https:// URL'),
    ('https://outlook.office365.cn/?x=1', 'query'), ('', 'https://'),
    ('https://u@outlook.office365.cn', 'user name'),
])
def test_exo_token_resource_is_checked_before_anything_is_sent(value, says):
    with pytest.raises(IdentityError) as err:
        Identity(params(exo_token_resource=value or ' '))
    assert str(err.value).startswith('input: exo_token_resource ') and says in str(err.value)


def token_event(scope, token):
    return {'client_id': GUID, 'scope': [scope],
            'token_endpoint': 'https://login.microsoftonline.com/%s/oauth2/v2.0/token' % GUID,
            'response': {'access_token': token, 'token_type': 'Bearer', 'expires_in': 3600}}


def test_cached_tokens_on_the_installed_msal_without_warnings():
    """The 401 refresh path: msal 1.24-1.28 have only TokenCache.find, 1.29+ deprecate it for
    search. Either way the tokens of the scope are found and removed, and nothing warns."""
    cache = msal.SerializableTokenCache()
    graph, exo = 'https://graph.microsoft.com/.default', 'https://outlook.office365.com/.default'
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        cache.add(token_event(graph, 'graph-token'))
        cache.add(token_event(exo, 'exo-token'))
        found = cached_tokens(cache, [graph])
        assert [t['secret'] for t in found] == ['graph-token']
        for item in found:
            cache.remove_at(item)
        assert cached_tokens(cache, [graph]) == []
        assert [t['secret'] for t in cached_tokens(cache, [exo])] == ['exo-token']
    assert hasattr(cache, 'search') == (msal_version() >= (1, 29))


@pytest.fixture(scope='module')
def pem_files(tmp_path_factory):
    cert, key, thumb = make_client_certificate()
    other, dummy, dummy2 = make_client_certificate(common_name='exo-lab-issuer')
    directory = tmp_path_factory.mktemp('certs')
    single, chain = directory / 'app.pem', directory / 'chain.pem'
    single.write_text(key + cert)
    chain.write_text(key + cert + other)
    return str(single), str(chain), cert, thumb


def test_the_credential_follows_the_installed_msal(pem_files):
    """msal >= 1.35 signs PS256 / x5t#S256 when given the certificate and no thumbprint; older
    msal needs the SHA-1 thumbprint (RS256 / x5t). The chain always goes with the thumbprint."""
    single, chain, cert, thumb = pem_files
    assert signs_ps256() == (msal_version() >= (1, 35))
    credential, thumbprint = load_certificate(single)
    assert thumbprint == thumb
    key = serialization.load_pem_private_key(credential['private_key'].encode(), None)
    assert key.key_size == 2048
    if msal_version() >= (1, 35):
        assert sorted(credential) == ['private_key', 'public_certificate']
        assert credential['public_certificate'].strip() == cert.strip()
    else:
        assert sorted(credential) == ['private_key', 'thumbprint']
        assert credential['thumbprint'] == thumb
    credential, thumbprint = load_certificate(chain, send_chain=True)
    assert sorted(credential) == ['private_key', 'public_certificate', 'thumbprint']
    assert credential['thumbprint'] == thumb == thumbprint
    assert credential['public_certificate'].count('BEGIN CERTIFICATE') == 2
