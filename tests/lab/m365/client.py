"""What tests need to talk to the emulator directly: a session that trusts the lab CA, an
app-only token from real msal, a small test message, and a Graph lookup of a delivered one."""

import email.message
import email.utils
import time

import msal
import requests


def session_for(emu):
    """REQUESTS_CA_BUNDLE is set on this machine and would override verify=: trust_env off."""
    s = requests.Session()
    s.trust_env = False
    s.verify = emu.ca_path
    return s


def app_token(emu, roles, scope):
    """A token from real msal for a new app granted ``roles``, for ``scope`` (a list)."""
    app = emu.add_app(roles=roles)
    result = msal.ConfidentialClientApplication(
        app['client_id'], client_credential=app['secret'],
        authority='%s/%s' % (emu.url, emu.tenant_id), instance_discovery=False,
        http_client=session_for(emu)).acquire_token_for_client(scope)
    assert 'access_token' in result, result
    return result['access_token']


GRAPH_SCOPE = ['https://graph.microsoft.com/.default']


def messages_request(emu, upn, message_id, access_token, folder=None):
    """Graph ``GET /users/{upn}/messages?$filter=internetMessageId eq '...'`` (the response);
    with ``folder`` ``GET /users/{upn}/mailFolders/{folder}/messages?...``."""
    path = 'mailFolders/%s/messages' % folder if folder else 'messages'
    return session_for(emu).get(
        '%s/v1.0/users/%s/%s' % (emu.url, upn, path), timeout=10,
        headers={'Authorization': 'Bearer ' + access_token},
        params={'$filter': "internetMessageId eq '%s'" % message_id.replace("'", "''")})


def find_message(emu, upn, message_id, timeout=15, roles=('Mail.ReadBasic.All',)):
    """The messages of ``upn``'s mailbox with this internetMessageId, asking Graph until one is
    there or ``timeout`` seconds have passed ([] then)."""
    access_token = app_token(emu, roles, GRAPH_SCOPE)
    deadline = time.monotonic() + timeout
    while True:
        resp = messages_request(emu, upn, message_id, access_token)
        assert resp.status_code == 200, resp.text
        if resp.json()['value'] or time.monotonic() > deadline:
            return resp.json()['value']
        time.sleep(0.1)


def lab_message(sender, to, subject='lab test', domain='client.exo-lab.test',
                body='Hello from the lab.'):
    """A plain text message with a fresh Message-ID."""
    msg = email.message.EmailMessage()
    msg['From'] = sender
    msg['To'] = to
    msg['Subject'] = subject
    msg['Message-ID'] = email.utils.make_msgid(domain=domain)
    msg.set_content(body)
    return msg
