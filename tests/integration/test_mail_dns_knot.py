"""mail_dns against Knot DNS 3.2 set up the common way: the TSIG key may update the zone, zone
transfers are allowed by address (the transfer ACL names no key). Knot then answers the signed
AXFR with NOTAUTH, TSIG error BADKEY, while it accepts the key for queries and the UPDATE.

The pattern, check-mode and key tests of test_mail_dns.py and test_mail_dns_check.py run
against Knot too (the ``server`` fixture); these are the cases only Knot's ACLs make.
"""

import pytest

from tests.integration.conftest import ZONE, lab_zones
from tests.integration.test_mail_dns import EXPECTED, mail_dns, served
from tests.lab.knot import KnotServer

NOT_ALLOWED = 'the TSIG key exo-lab-key is not allowed to transfer contoso.test.'


def knot_server(tmp_path, transfer):
    return KnotServer(lab_zones(), workdir=str(tmp_path / ('knot-' + transfer)), transfer=transfer)


def read(server, **params):
    """The RFC 2136 provider's read of the mail names of ZONE, as mail_dns reads them."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._rfc2136 import (
        Rfc2136Provider,
    )
    args = dict(server.module_args(), key_file=None, protocol='tcp', timeout=5.0)
    args.update(params)
    return Rfc2136Provider.from_params(args).read_rrsets(
        ZONE + '.', [ZONE + '.', 'autodiscover.' + ZONE + '.', '_dmarc.' + ZONE + '.'])


def test_signed_transfer_refused_by_address_acl_reads_by_signed_queries(knot, play, tmp_path):
    backup = str(tmp_path / 'backup.json')
    zone_before = knot.axfr(ZONE)  # unsigned: the address may transfer
    run = play([mail_dns(knot, domain=ZONE, pattern='full', backup_path=backup)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['read_method'] == 'query'
    assert served(knot) == EXPECTED['full']
    assert knot.update_messages(ZONE) == 1
    # Knot saw the signed transfer, refused it for the key, and answered the signed queries.
    log = knot.log_text()
    assert "ACL, denied, action transfer, remote 127.0.0.1" in log and "key 'exo-lab-key.'" in log
    assert "ACL, allowed, action query, remote 127.0.0.1" in log
    run = play([mail_dns(knot, state='rollback', backup_path=backup)])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert run.last['result']['read_method'] == 'query'
    assert knot.axfr(ZONE) == zone_before


def test_the_user_is_told_why_the_zone_was_read_by_queries(knot, play):
    run = play([mail_dns(knot, domain=ZONE, pattern='full')], check=True)
    assert run.last['result']['read_method'] == 'query'
    assert NOT_ALLOWED in run.stdout + run.stderr
    assert 'NOTAUTH, TSIG error BADKEY' in run.stdout + run.stderr


@pytest.mark.parametrize('transfer, method', [('address', 'query'), ('none', 'query'),
                                              ('key', 'axfr')])
def test_read_by_transfer_acl(tmp_path, transfer, method):
    """What the read says for each of Knot's transfer ACLs: the warning only where the key was
    refused the transfer it asked for."""
    with knot_server(tmp_path, transfer) as knot:
        snapshot = read(knot)
        # Knot compares key names case-insensitively, as DNS names.
        shouted = read(knot, key_name='EXO-LAB-KEY')
    assert snapshot.method == method and shouted.method == method
    assert ('contoso.test.', 'MX') in snapshot.rrsets
    assert snapshot.serial == 2026112901
    if method == 'axfr':
        assert snapshot.warnings == []
        return
    assert len(snapshot.warnings) == 1
    warning = snapshot.warnings[0]
    assert 'refused the TSIG-signed zone transfer of contoso.test. (NOTAUTH, TSIG error BADKEY)' \
        in warning
    assert NOT_ALLOWED in warning and 'read_method: query' in warning
    assert 'acl with key: exo-lab-key and action: transfer' in warning
    assert 'does not know' not in warning


def test_key_unknown_and_key_not_allowed_read_apart(knot):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import DnsError
    assert NOT_ALLOWED in read(knot).warnings[0]
    with pytest.raises(DnsError) as unknown:
        read(knot, key_name='nobody')
    msg = str(unknown.value)
    assert msg.startswith('read: 127.0.0.1 port %d/tcp does not know the TSIG key nobody' % knot.port)
    assert 'for the zone transfer of contoso.test. and for queries (BADKEY)' in msg
    assert 'not allowed to transfer' not in msg
    # A wrong secret: the transfer is refused (BADKEY: Knot's ACL comes first), the queries
    # then say what is wrong.
    with pytest.raises(DnsError) as bad_secret:
        read(knot, key_secret='AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=')
    assert '(BADSIG)' in str(bad_secret.value) and 'key_secret' in str(bad_secret.value)


def test_transfer_allowed_to_the_key_reads_by_transfer(tmp_path, play):
    with knot_server(tmp_path, 'key') as knot:
        zone_before = knot.axfr(ZONE)  # signed
        backup = str(tmp_path / 'backup.json')
        run = play([mail_dns(knot, domain=ZONE, pattern='partial', backup_path=backup)])
        result = run.last['result']
        assert run.last['status'] == 'ok', result.get('msg')
        assert result['read_method'] == 'axfr'
        assert served(knot) == EXPECTED['partial']
        assert NOT_ALLOWED not in run.stdout + run.stderr
        play([mail_dns(knot, state='rollback', backup_path=backup)])
        assert knot.axfr(ZONE) == zone_before


def test_secret_never_in_verbose_output_on_the_fallback_paths(knot, play, tmp_path):
    run = play([mail_dns(knot, name='read by queries', domain=ZONE, pattern='full',
                         backup_path=str(tmp_path / 'b.json')),
                mail_dns(knot, name='key unknown', domain=ZONE, zone=ZONE, pattern='full',
                         key_name='nobody')], verbosity=3, diff=True)
    assert run.task('read by queries')['status'] == 'ok'
    assert run.task('read by queries')['result']['read_method'] == 'query'
    assert run.task('key unknown')['status'] == 'failed'
    assert 'does not know the TSIG key nobody' in run.task('key unknown')['result']['msg']
    assert knot.key_secret not in run.stdout + run.stderr
    with open(str(tmp_path / 'b.json')) as f:
        assert knot.key_secret not in f.read()


def test_a_record_the_server_left_out_is_not_reported_as_published(knot, play, tmp_path):
    """Knot answers ANY with one rrset (RFC 8482), so a read by queries does not see an SRV
    record at autodiscover. Replacing the TXT there with the CNAME, Knot answers NOERROR but
    ignores the CNAME (RFC 2136 3.4.2.2). The task must not say the CNAME is published: it asks
    for every touched rrset after the update, fails naming it, and the backup undoes the rest."""
    backup = str(tmp_path / 'backup.json')
    name = 'autodiscover.' + ZONE + '.'
    assert knot.update(ZONE, lambda u: (u.add(name, 3600, 'SRV', '0 0 443 mail.contoso.test.'),
                                        u.add(name, 3600, 'TXT', '"old"'))) == 'NOERROR'
    zone_before = knot.axfr(ZONE)
    run = play([mail_dns(knot, domain=ZONE, pattern='full', on_conflict='replace',
                         backup_path=backup)])
    result = run.last['result']
    assert knot.rrset(name, 'CNAME') is None  # Knot left it out
    assert run.last['status'] == 'failed', result
    assert result['phase'] == 'verify'
    assert '%s CNAME is absent, planned TTL 3600 autodiscover.outlook.com.' % name \
        in result['msg']
    assert 'state: rollback restores the records as they were' in result['msg']
    assert result['changed'] is True
    undo = play([mail_dns(knot, state='rollback', backup_path=backup)])
    assert undo.last['status'] == 'ok', undo.last['result'].get('msg')
    assert knot.axfr(ZONE) == zone_before
