"""The base URL of a hosted DNS provider's API: what is refused, and when plain http warns."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_api import (
    api_base,
    plain_http_off_host,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import DnsError


@pytest.mark.parametrize('url, problem', [
    ('ftp://127.0.0.1:8081', 'must be an http:// or https:// URL'),
    ('http://user:pw@127.0.0.1:8081', 'must not carry a user name or password'),
    ('http://127.0.0.1:8081/?x=1', 'must not carry a query or a fragment'),
    ('http://127.0.0.1:99999', 'has an invalid port'),
    ('http://127.0.0.1:8081/a b', 'must not hold white space'),
    ('', 'must be an http:// or https:// URL of at most 2048 characters'),
    ('http://pdns.example\\.evil.example/', 'cannot be read the same way by every URL parser'),
])
def test_bad_api_url_is_named(url, problem):
    with pytest.raises(DnsError) as err:
        api_base(url, 'api_url', 'http://127.0.0.1:8081')
    assert problem in str(err.value) and 'api_url' in str(err.value)
    assert err.value.phase == 'input'


def test_good_api_url_loses_its_trailing_slash():
    assert api_base(' https://pdns.example:8443/ ', 'api_url', '') == 'https://pdns.example:8443'


@pytest.mark.parametrize('url, warned', [
    ('http://127.0.0.1:8081', False), ('http://[::1]:8081', False), ('http://localhost', False),
    ('https://192.0.2.8', False), ('http://192.0.2.8:8081', True), ('http://pdns.example', True),
])
def test_plain_http_to_another_host(url, warned):
    assert plain_http_off_host(url) is warned
