"""The pure parts of the Exchange admin client: the tenant GUID from the token, which answers
are retried, which 401 is a token problem, the role hint, and mailbox matching (issue 12)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import json
import threading

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._exo_admin import (
    NAME_ALPHABET,
    ExoAdminClient,
    Window,
    name_filter,
    quoted,
    role_for,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import token_tenant
from ansible_collections.exchangeonline.mail.plugins.module_utils._mailboxes import match_mailboxes

GUID = '72f988bf-86f1-41af-91ab-2d7cd011db47'
BARE = ExoAdminClient.__new__(ExoAdminClient)  # the methods that need no identity


def jwt_with(claims):
    part = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip('=')
    return 'eyJhbGciOiJSUzI1NiJ9.%s.c2ln' % part


@pytest.mark.parametrize('token, tenant', [
    (jwt_with({'tid': GUID.upper()}), GUID),
    (jwt_with({'tid': 'contoso.com'}), None),       # not a GUID: never put into the URL
    (jwt_with({'tid': '../x'}), None),
    (jwt_with({}), None), (jwt_with([1]), None),
    ('opaque-token', None), (None, None), ('a.!!!.c', None),
])
def test_token_tenant(token, tenant):
    assert token_tenant(token) == tenant


class Answer:
    def __init__(self, status, content=b'', headers=None):
        self.status_code, self.content, self.headers = status, content, headers or {}


CONCURRENT = (b'{"error":{"message":"You have reached the maximum number of concurrent '
              b'requests per tenant. Please wait and try again."}}')


@pytest.mark.parametrize('answer, retried', [
    (Answer(500), True), (Answer(408), True), (Answer(429), True), (Answer(503), True),
    (Answer(504), True), (Answer(400, CONCURRENT), True), (Answer(403, CONCURRENT), True),
    (Answer(400), False), (Answer(404), False), (Answer(403, b'\0' * 64), False),
    (Answer(401), False),
])
def test_exchange_retryable(answer, retried):
    assert ExoAdminClient.retryable(ExoAdminClient.__new__(ExoAdminClient), answer) is retried


ROLE_401 = b'{"error":{"code":"Unauthorized","message":"User is not allowed to call Get-Mailbox"}}'


@pytest.mark.parametrize('answer, refresh', [
    (Answer(401, ROLE_401), False),
    (Answer(401, ROLE_401, {'WWW-Authenticate': 'Bearer error="invalid_token"'}), True),
    (Answer(401, b'{"error":{"code":"InvalidAuthenticationToken"}}'), True),
    (Answer(401, b''), True),
])
def test_only_a_token_401_refreshes(answer, refresh):
    assert ExoAdminClient.token_refused(answer) is refresh


def test_role_hint_names_cmdlet_role_and_source():
    hint = BARE.service_hint(401, 'Unauthorized', 'User is not allowed to call '
                                                  'Set-CASMailbox')
    assert '(Set-CASMailbox)' in hint and role_for('Set-CASMailbox') in hint
    assert 'https://learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2' in hint
    assert 'Global Reader' in role_for('Get-CASMailbox')
    assert role_for('Set-TransportConfig') == 'Exchange Administrator'
    assert BARE.service_hint(403, 'Forbidden', 'not allowed to call X-Y') is None


def test_match_by_directory_id_then_smtp_addresses_never_upn():
    users = [
        {'id': 'AAAA', 'userPrincipalName': 'adelev@t.onmicrosoft.com',
         'mail': 'Adele.Vance@contoso.com', 'proxyAddresses': ['SMTP:Adele.Vance@contoso.com']},
        {'id': 'bbbb', 'userPrincipalName': 'alexw@t.onmicrosoft.com', 'mail': None,
         'proxyAddresses': ['smtp:alexw@t.mail.onmicrosoft.com', 'X500:/o=x']},
        {'id': 'cccc', 'userPrincipalName': 'carl@t.onmicrosoft.com', 'mail': None,
         'proxyAddresses': []},
    ]
    objects = [
        # the directory id wins over an address of another user
        {'ExternalDirectoryObjectId': 'aaaa', 'PrimarySmtpAddress': 'x@contoso.com',
         'EmailAddresses': ['SMTP:alexw@t.mail.onmicrosoft.com']},
        {'ExternalDirectoryObjectId': None, 'PrimarySmtpAddress': 'ALEXW@T.MAIL.ONMICROSOFT.COM',
         'EmailAddresses': None},
        # a UPN-named object is not matched by the UPN
        {'PrimarySmtpAddress': 'other@contoso.com', 'UserPrincipalName': 'carl@t.onmicrosoft.com',
         'EmailAddresses': ['smtp:carl@t.onmicrosoft.com.invalid']},
    ]
    found = match_mailboxes(objects, users)
    assert found == {'AAAA': objects[0], 'bbbb': objects[1]}


def test_an_object_that_names_its_directory_object_belongs_to_it_only():
    """A CAS object whose ExternalDirectoryObjectId is a user outside the list is that user's
    mailbox, even when a listed user (without a mailbox) carries one of its addresses as mail."""
    users = [{'id': 'aaaa', 'userPrincipalName': 'a@t.onmicrosoft.com',
              'mail': 'shared@contoso.com', 'proxyAddresses': []}]
    objects = [{'ExternalDirectoryObjectId': 'bbbb', 'PrimarySmtpAddress': 'shared@contoso.com',
                'EmailAddresses': ['SMTP:shared@contoso.com']}]
    assert match_mailboxes(objects, users) == {}


def test_an_address_two_users_share_matches_neither():
    """Without a directory id, only an address that one listed user alone has decides."""
    users = [
        {'id': 'aaaa', 'userPrincipalName': 'a@t.onmicrosoft.com', 'mail': 'shared@contoso.com',
         'proxyAddresses': []},
        {'id': 'bbbb', 'userPrincipalName': 'b@t.onmicrosoft.com', 'mail': 'shared@contoso.com',
         'proxyAddresses': ['SMTP:shared@contoso.com', 'smtp:b@t.mail.onmicrosoft.com']},
    ]
    b_mailbox = {'PrimarySmtpAddress': 'shared@contoso.com',
                 'EmailAddresses': ['SMTP:shared@contoso.com', 'smtp:B@t.mail.onmicrosoft.com']}
    only_shared = {'PrimarySmtpAddress': 'Shared@Contoso.com', 'EmailAddresses': None}
    assert match_mailboxes([only_shared, b_mailbox], users) == {'bbbb': b_mailbox}


USER_DATA_401 = (b'{"error":{"code":"Unauthorized","message":"Error executing cmdlet","details":[{'
                 b'"message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNot'
                 b'FoundException|The operation couldn\'t be performed because object \'not '
                 b'allowed to call Set-CASMailbox\' couldn\'t be found on \'DC1\'."}]}}')


def test_the_rbac_refusal_is_exchanges_message_not_a_text_from_user_data():
    """Only an error.message "User is not allowed to call <cmdlet>" is the
    RBAC refusal; the same words inside a cmdlet error about a name from the playbook are not."""
    assert ExoAdminClient.token_refused(Answer(401, USER_DATA_401)) is True
    message = ExoAdminClient.error_fields(json.loads(USER_DATA_401))[1]
    assert 'not allowed to call Set-CASMailbox' in message
    assert BARE.service_hint(401, 'Unauthorized', message) is None


def test_the_window_shrinks_once_per_size_and_never_below_one():
    """Two requests that entered at size 3 and were both refused lower it once; a request
    refused again on its retry lowers it again; never below 1; other answers never."""
    client = ExoAdminClient.__new__(ExoAdminClient)
    client.window = Window(3)
    entered = [threading.Event(), threading.Event()]
    refused = threading.Event()

    def second():
        with client.window:
            entered[1].set()
            refused.wait(5)
            client.throttled(Answer(429, CONCURRENT))
    other = threading.Thread(target=second)
    other.start()
    with client.window:
        assert entered[1].wait(5)
        client.throttled(Answer(429, CONCURRENT))
        refused.set()
        other.join(5)
        assert (client.window.size, client.window.refusals) == (2, 2)
        for dummy in range(3):
            client.throttled(Answer(503, CONCURRENT))
        assert client.window.size == 1
    client.throttled(Answer(503))
    client.throttled(Answer(404, NAME_QUOTES_IT))
    assert client.window.refusals == 5 and client.window.size == 1
    assert 'refused 5 requests' in client.window.summary()
    assert 'with 1 request in flight instead of 3' in client.window.summary()


NAME_QUOTES_IT = (b'{"error":{"code":"NotFound","message":"Error executing cmdlet","details":[{'
                  b'"message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObject'
                  b'NotFoundException|The operation couldn\'t be performed because object \''
                  b'You have reached the maximum number of concurrent requests per tenant\' '
                  b'couldn\'t be found."}]}}')


PIPED_NAME = (b'{"error":{"code":"NotFound","message":"Error executing cmdlet","details":[{'
              b'"message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObject'
              b'NotFoundException|The operation couldn\'t be performed because object \'x|'
              b'You have reached the maximum number of concurrent requests per tenant\' '
              b'couldn\'t be found."}]}}')


def test_a_name_that_quotes_the_concurrency_words_is_no_refusal():
    client = ExoAdminClient.__new__(ExoAdminClient)
    for body in (NAME_QUOTES_IT, PIPED_NAME, b'{"error":{"message":"x","details":7}}',
                 b'{"error":{"message":5,"details":[1,{"message":null}]}}'):
        assert client.retryable(Answer(404, body)) is False, body
    refused = (b'{"error":{"code":"BadRequest","message":"Error executing cmdlet","details":[{'
               b'"message":"|System.Exception|You have reached the maximum number of '
               b'concurrent requests per tenant. Please wait and try again."}]}}')
    assert client.retryable(Answer(400, refused)) is True
    plain = Answer(400, b'You have reached the maximum number of concurrent requests per '
                        b'tenant. Please wait and try again.', {'Content-Type': 'text/plain'})
    assert ExoAdminClient.retryable(ExoAdminClient.__new__(ExoAdminClient), plain) is True


def test_name_partitions_cover_every_name_once():
    """The filters of one level: a prefix per character, and the rest (-not of all of them)."""
    assert name_filter('a') == "Name -like 'a*'"
    rest = name_filter('ab', rest=True)
    assert rest.startswith("Name -like 'ab*' -and -not (Name -like 'ab0*' -or ")
    assert rest.count(' -or ') == len(NAME_ALPHABET) - 1
    assert name_filter('', rest=True).startswith("-not (Name -like '0*' -or ")
    assert quoted("o'brien@contoso.com") == "'o''brien@contoso.com'"
