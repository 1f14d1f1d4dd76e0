"""token_cache_path (issue 10, item 5): a file the collection did not write is never overwritten,
and check mode writes nothing anywhere. Real ansible-playbook, msal and requests against the
lab emulator."""

import json
import os
import stat

import pytest

from tests.integration.conftest import APP_ROLES, m365_args, task

DOMAIN = 'contoso.test'


@pytest.fixture
def args(m365):
    m365.add_domain(DOMAIN, verified=True, services=['Email'])
    m365.add_user('licensed@contoso.test', licensed=True, mailbox=True)
    return m365_args(m365, m365.add_app(secret='token-cache-secret', roles=APP_ROLES))


def snapshot(path):
    st = os.lstat(path)
    with open(path, 'rb') as f:
        return f.read(), stat.S_IMODE(st.st_mode), st.st_mtime_ns


def leftovers(directory):
    return [n for n in os.listdir(directory) if n.startswith('.token-cache-')]


NOT_OURS = {
    'text': (b'# my notes\nserver = mail.contoso.test\n', 'not JSON'),
    'other json': (b'{"servers": ["ns1.contoso.test"]}\n', "not the shape of msal's"),
    'json list': (b'[{"AccessToken": {}}]', "not the shape of msal's"),
    'empty': (b'', 'not JSON'),
}


@pytest.mark.parametrize('kind', sorted(NOT_OURS))
def test_a_file_that_is_not_a_token_cache_is_left_alone(m365, args, play, tmp_path, kind):
    content, says = NOT_OURS[kind]
    path = tmp_path / 'important.conf'
    path.write_bytes(content)
    os.chmod(str(path), 0o600)
    before = snapshot(str(path))
    run = play([task('domain_info', dict(args, domain=DOMAIN, token_cache_path=str(path))),
                task('mailbox_info', dict(args, mailboxes=['licensed@contoso.test'],
                                          token_cache_path=str(path)), 'mailbox_info')],
               check=(kind == 'empty'))
    for result in run.results:
        msg = result['result']['msg']
        assert result['status'] == 'failed'
        assert 'token_cache_path %s' % path in msg and says in msg, msg
        assert 'it is left as it is' in msg and result['result']['phase'] == 'token cache'
    assert snapshot(str(path)) == before
    assert leftovers(str(tmp_path)) == []
    assert not [r for r in m365.requests if r['resource'] == 'token']  # refused before asking


def test_a_cache_readable_by_others_or_behind_a_link_is_refused(m365, args, play, tmp_path):
    cache = tmp_path / 'tokens.json'
    run = play([task('domain_info', dict(args, domain=DOMAIN, token_cache_path=str(cache)))])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert stat.S_IMODE(os.stat(str(cache)).st_mode) == 0o600
    os.chmod(str(cache), 0o644)
    link = tmp_path / 'link.json'
    link.symlink_to(cache)
    before = snapshot(str(cache))
    run = play([task('domain_info', dict(args, domain=DOMAIN, token_cache_path=str(cache)),
                     'shared'),
                task('domain_info', dict(args, domain=DOMAIN, token_cache_path=str(link)),
                     'link')])
    assert 'can be read or written by other users (mode 0644)' in run.task('shared')['result'][
        'msg']
    assert 'is not a regular file' in run.task('link')['result']['msg']
    assert snapshot(str(cache)) == before and os.path.islink(str(link))


def test_check_mode_writes_no_cache(m365, args, play, tmp_path):
    directory = tmp_path / 'cache'
    directory.mkdir()
    cache = directory / 'tokens.json'
    tasks = [task('domain_info', dict(args, domain=DOMAIN, token_cache_path=str(cache))),
             task('domain', dict(args, domain=DOMAIN, supported_services=['Email', 'Intune'],
                                 token_cache_path=str(cache)), 'domain'),
             task('mailbox_info', dict(args, mailboxes=['licensed@contoso.test'],
                                       token_cache_path=str(cache))),
             task('mailbox_protocols', dict(args, mailboxes=['licensed@contoso.test'], pop=False,
                                            token_cache_path=str(cache)))]
    run = play(tasks, check=True)
    assert [r['status'] for r in run.results] == ['ok'] * 4, run.stdout[-3000:]
    assert run.task('domain')['result']['changed'] is True
    assert [r for r in m365.requests if r['resource'] == 'token']  # tokens were acquired
    assert os.listdir(str(directory)) == []

    # a cache written by a real run is read in check mode but not updated, even when the
    # tokens in it are refused and refreshed
    run = play(tasks[:1])
    assert run.last['status'] == 'ok'
    written = snapshot(str(cache))
    assert set(json.loads(written[0])) <= {'AccessToken', 'RefreshToken', 'IdToken', 'Account',
                                           'AppMetadata'}
    m365.expire_tokens()
    m365.clear_log()
    run = play(tasks, check=True)
    assert [r['status'] for r in run.results] == ['ok'] * 4
    assert len([r for r in m365.requests if r['resource'] == 'token']) >= 1  # refreshed
    assert snapshot(str(cache)) == written
    assert os.listdir(str(directory)) == ['tokens.json']

    run = play(tasks[:1])  # and a real run does update it
    assert run.last['status'] == 'ok'
    assert snapshot(str(cache))[0] != written[0]
