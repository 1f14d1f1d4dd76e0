"""mail_dns when the network between it and the server breaks, and on input a hostile or careless
world gives it: the zone on a real BIND 9 and the backup file are what the tests look at."""

import json
import os
import shutil
import subprocess

import pytest

from tests.integration.conftest import ZONE, dns_args
from tests.integration.test_mail_dns import EXPECTED, mail_dns, served
from tests.lab.dns_relay import DnsRelay

APEX = ZONE + '.'


def via(relay, bind, **args):
    return mail_dns(bind, port=relay.port, **args)


# -- item 1: the answer to an applied UPDATE is lost ------------------------------------------
@pytest.mark.parametrize('mode', ['drop', 'delay'])
def test_lost_update_reply_keeps_backup_and_rollback(bind, play, tmp_path, mode):
    """The UPDATE reaches BIND and is applied; its answer never reaches mail_dns (connection
    closed, or later than timeout). The run finds out from the zone, keeps the backup, and
    state: rollback restores the zone exactly."""
    backup = str(tmp_path / 'contoso.json')
    zone_before = bind.axfr(ZONE)
    with DnsRelay(bind.port, update_reply=mode, delay=4) as relay:
        run = play([via(relay, bind, domain=ZONE, pattern='full', backup_path=backup,
                        timeout=2)], verbosity=3)
        assert relay.passed('UPDATE', {'drop': 'dropped', 'delay': 'delayed'}[mode])
    result = run.last['result']
    assert bind.key_secret not in run.stdout + run.stderr
    assert served(bind) == EXPECTED['full']  # BIND applied it
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['changed'] is True
    assert result['update_reply'] == 'lost' and result['outcome'] == 'applied'
    assert 'a read of the zone shows the update applied' in run.stdout + run.stderr
    assert {'name': APEX, 'type': 'MX', 'ttl': 3600, 'values': ['10 mail.contoso.test.']} \
        in result['before']
    with open(backup) as f:
        saved = json.load(f)
    assert any(e['type'] == 'MX' and e['before'] for e in saved['entries'])

    again = play([mail_dns(bind, domain=ZONE, pattern='full', backup_path=backup)])
    assert again.last['result']['changed'] is False
    assert os.path.exists(backup)
    undo = play([mail_dns(bind, state='rollback', backup_path=backup)])
    assert undo.last['status'] == 'ok', undo.last['result'].get('msg')
    assert bind.axfr(ZONE) == zone_before


@pytest.mark.parametrize('protocol', ['tcp', 'udp'])
def test_update_lost_on_the_way_is_not_applied_and_says_so(bind, play, tmp_path, protocol):
    """The UPDATE never reaches BIND (the relay swallows it): reads of the zone still show it as
    it was, so the task fails with 'not applied' and keeps the backup, which then records the
    zone as it is (a rollback changes nothing)."""
    backup = str(tmp_path / 'b.json')
    zone_before = bind.axfr(ZONE)
    with DnsRelay(bind.port, update_reply='swallow') as relay:
        run = play([via(relay, bind, domain=ZONE, pattern='full', backup_path=backup,
                        timeout=1, protocol=protocol)])
        assert relay.passed('UPDATE', 'swallowed')
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['phase'] == 'apply' and result['outcome'] == 'not applied'
    assert result['changed'] is False and result['update_reply'] == 'lost'
    assert 'so it was not applied' in result['msg'] and 'is kept' in result['msg']
    assert result['before'] and result['plan']
    assert bind.axfr(ZONE) == zone_before
    assert os.path.exists(backup)
    undo = play([mail_dns(bind, state='rollback', backup_path=backup)])
    assert undo.last['status'] == 'ok' and undo.last['result']['changed'] is False
    assert bind.axfr(ZONE) == zone_before


def test_lost_reply_with_server_gone_reports_unknown(bind, play, tmp_path):
    """The answer is lost and the server stops before it can be read again: the outcome is
    unknown, said so, with the plan, before and backup in the result."""
    backup = str(tmp_path / 'b.json')
    import threading
    import time
    relay = DnsRelay(bind.port, update_reply='drop').start()

    def cut_upstream_after_update():
        for dummy in range(1000):  # 20 s at most
            if relay.passed('UPDATE', 'dropped'):
                relay.upstream = ('127.0.0.1', 9)  # every later connection ends at once
                return
            time.sleep(0.02)
    watcher = threading.Thread(target=cut_upstream_after_update, daemon=True)
    watcher.start()
    try:
        run = play([via(relay, bind, domain=ZONE, pattern='full', backup_path=backup,
                        timeout=1)], verbosity=3)
    finally:
        watcher.join()
        relay.stop()
    result = run.last['result']
    assert bind.key_secret not in run.stdout + run.stderr
    assert run.last['status'] == 'failed'
    assert result['phase'] == 'apply' and result['outcome'] == 'unknown'
    assert result['changed'] is True
    assert 'the outcome is unknown' in result['msg']
    assert 'the backup %s is kept' % backup in result['msg']
    assert result['backup_path'] == backup and result['plan'] and result['before']
    assert served(bind) == EXPECTED['full']
    undo = play([mail_dns(bind, state='rollback', backup_path=backup)])
    assert undo.last['status'] == 'ok', undo.last['result'].get('msg')
    assert served(bind)['mx'] == ['10 mail.contoso.test.']


def test_refused_update_is_known_not_applied(bind, play, tmp_path):
    """An answer that refuses the update is a known outcome: nothing changed, backup as before."""
    args = dns_args(bind, domain=ZONE, pattern='full', backup_path=str(tmp_path / 'b.json'))
    args['key_name'] = 'nobody'
    run = play([{'exchangeonline.mail.mail_dns': args, 'register': 'out',
                 'ignore_errors': True}])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert 'outcome' not in result and 'BADKEY' in result['msg']
    assert not os.path.exists(str(tmp_path / 'b.json'))


# -- item 11: truncated UDP answers and no TCP -------------------------------------------------
def test_truncated_udp_without_tcp_is_named(bind, play):
    with DnsRelay(bind.port, udp='truncate', tcp=False, keyring=bind.keyring) as relay:
        run = play([via(relay, bind, domain=ZONE, pattern='full', protocol='udp', zone=ZONE)])
        assert relay.passed('QUERY', 'truncated')
    msg = run.last['result']['msg']
    assert run.last['status'] == 'failed'
    assert 'truncated reply (TC flag)' in msg and 'RFC 7766' in msg
    assert 'no DNS server listens there' not in msg


def test_mail_dns_check_truncated_udp_without_tcp_is_named(bind, play):
    with DnsRelay(bind.port, udp='truncate', tcp=False) as relay:
        run = play([{'exchangeonline.mail.mail_dns_check': {
            'nameservers': ['127.0.0.1:%d' % relay.port], 'domain': ZONE, 'pattern': 'full'},
            'register': 'out', 'ignore_errors': True}])
    msg = run.last['result']['msg']
    assert run.last['status'] == 'failed'
    assert 'truncated reply (TC flag)' in msg and 'RFC 7766' in msg, msg
    assert 'no DNS server listens there' not in msg


# -- item 11: a full disk at backup time --------------------------------------------------------
@pytest.fixture
def full_disk(tmp_path):
    """A tiny tmpfs, filled up (needs root, as make test runs)."""
    if os.geteuid() != 0:
        pytest.skip('mounting a tmpfs needs root')
    mount = tmp_path / 'full'
    mount.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', str(mount)], check=True)
    try:
        with open(str(mount / 'filler'), 'wb', buffering=0) as f:
            for dummy in range(1000):  # 64 KiB fill up long before 4 MB
                try:
                    f.write(b'x' * 4096)
                except OSError:
                    break
        yield str(mount)
    finally:
        subprocess.run(['umount', str(mount)], check=False)


def test_full_disk_at_backup_leaves_no_temp_file(bind, play, full_disk):
    zone_before = bind.axfr(ZONE)
    run = play([mail_dns(bind, domain=ZONE, pattern='full',
                         backup_path=os.path.join(full_disk, 'b.json'))])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['phase'] == 'backup' and 'No space left on device' in result['msg']
    assert 'Nothing was changed' in result['msg']
    assert sorted(os.listdir(full_disk)) == ['filler']
    assert bind.axfr(ZONE) == zone_before
    assert bind.updates_seen() == []


# -- item 7: input that used to escape as an exception -----------------------------------------
def _key_file(tmp_path, content):
    path = tmp_path / 'bad.key'
    path.write_bytes(content)
    return str(path)


def _backup_file(tmp_path, content, name):
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return str(path)


@pytest.mark.parametrize('case', [
    'server', 'key_name', 'key_file', 'mx_empty', 'records_ttl', 'backup_list', 'backup_strings',
    'backup_nul', 'port', 'timeout_inf', 'timeout_nan', 'dkim_selector', 'dkim_control',
    'records_other_domain', 'records_two_mx', 'dmarc_too_long', 'legacy_mx_inf_text'])
def test_bad_input_is_a_message_not_an_exception(bind, play, tmp_path, case):
    base = dict(domain=ZONE, pattern='full')
    args, expect = {
        'server': (dict(base, server='a' * 100000), 'server'),
        'key_name': (dict(base, key_name='k' * 64), 'key_name'),
        'key_file': (dict(base, key_secret=None, key_name=None, key_algorithm=None,
                          key_file=_key_file(tmp_path, b'key "k" { secret "\xff\xfe"; };')),
                     'is not a text file'),
        'mx_empty': (dict(base, records=[{'name': ZONE, 'type': 'MX', 'ttl': 3600,
                                          'values': ['']}]), 'records[0]'),
        'records_ttl': (dict(base, records=[{'name': ZONE, 'type': 'MX', 'ttl': 'abc',
                                             'values': ['0 mx.example.']}]), 'records[0].ttl'),
        'backup_list': (dict(state='rollback', backup_path=_backup_file(tmp_path, [1, 2], 'l.json')),
                        'not a JSON object'),
        'backup_strings': (dict(state='rollback', backup_path=_backup_file(
            tmp_path, {'format': 1, 'zone': APEX, 'domain': APEX, 'entries': ['x', 'y']},
            's.json')),
            'entry 0 is not'),
        'backup_nul': (dict(base, backup_path=str(tmp_path) + '/a\x00b'), 'backup_path'),
        'port': (dict(base, port=70000), 'port must be from 1 to 65535'),
        'timeout_inf': (dict(base, timeout='inf'), 'timeout must be a finite number'),
        'timeout_nan': (dict(base, timeout='nan'), 'timeout must be a finite number'),
        'dkim_selector': (dict(base, dkim={'bad selector': 'x.example.'}), 'dkim selector'),
        'dkim_control': (dict(base, dkim={'\x01': 'x.example.'}), 'dkim selector'),
        'records_other_domain': (dict(base, records=[{'name': 'other.example', 'type': 'MX',
                                                      'values': ['0 a.example.']}]),
                                 'records[0].name other.example. is not contoso.test.'),
        'records_two_mx': (dict(base, records=[
            {'name': ZONE, 'type': 'MX', 'values': ['0 a.example.']},
            {'name': ZONE, 'type': 'MX', 'values': ['0 b.example.']}]),
            'records[0] and records[1] give mx_host two values'),
        'dmarc_too_long': (dict(base, dmarc='v=DMARC1; p=none; ' + 'x' * 70000),
                           'dmarc is 70018 octets long'),
        'legacy_mx_inf_text': (dict(base, pattern='partial', legacy_mx=[
            '{"host": "mx.example.", "preference": "inf"}']), 'preference must be a whole number'),
    }[case]
    zone_before = bind.axfr(ZONE)
    task = dns_args(bind, **args)
    for key in [k for k, v in task.items() if v is None]:
        del task[key]
    run = play([{'exchangeonline.mail.mail_dns': task, 'register': 'out',
                 'ignore_errors': True}])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert expect in result['msg'], result['msg']
    assert 'unexpected error' not in result['msg']
    assert 'Traceback' not in run.stdout + run.stderr
    assert len(result['msg']) < 2000
    assert bind.axfr(ZONE) == zone_before


@pytest.mark.parametrize('option, value', [
    ('wait_timeout', 'nan'), ('interval', 'nan'), ('max_interval', 'inf'), ('timeout', 'inf'),
    ('port', 0), ('interval', 1e-9)])
def test_mail_dns_check_numbers(bind, play, option, value):
    args = dns_args(bind, domain=ZONE, pattern='full', **{option: value})
    run = play([{'exchangeonline.mail.mail_dns_check': args, 'register': 'out',
                 'ignore_errors': True}], timeout=60)
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['msg'].startswith('input: %s must be' % option), result['msg']


def test_a_file_that_is_not_a_backup_is_not_overwritten(bind, play, tmp_path):
    path = tmp_path / 'notes.txt'
    path.write_text('my notes, not JSON\n')
    run = play([mail_dns(bind, domain=ZONE, pattern='full', backup_path=str(path))])
    assert run.last['status'] == 'failed'
    assert 'is not a mail_dns backup' in run.last['result']['msg']
    assert path.read_text() == 'my notes, not JSON\n'
    assert bind.updates_seen() == []


if not shutil.which('mount'):  # util-linux is in every Debian base system
    pytest.skip('mount is missing', allow_module_level=True)
