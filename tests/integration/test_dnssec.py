"""The dnssec check of mail_dns_check against a real BIND 9 that signs contoso.test itself
(dnssec-policy default) and serves the parent zone test. with the child's DS, driven by real
ansible-playbook runs."""

import dns.dnssec
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from tests.integration.conftest import ZONE, dns_args, task
from tests.lab.bind import BindServer, zone_template

APEX = ZONE + '.'
NS = 'ns1.contoso.test'
PARENT = """$ORIGIN test.
$TTL 3600
@               IN SOA  ns1.test. hostmaster.test. ( 2026120201 3600 900 1209600 300 )
@               IN NS   ns1.test.
ns1             IN A    127.0.0.1
contoso         IN NS   ns1.contoso.test.
ns1.contoso     IN A    127.0.0.1
"""


def start(tmp_path, signed):
    server = BindServer({'test.': PARENT, APEX: zone_template('contoso.test.zone')},
                        workdir=str(tmp_path / 'bind'),
                        signed_zones=[ZONE] if signed else [])
    server.start()
    return server


@pytest.fixture
def signed(tmp_path):
    server = start(tmp_path, True)
    server.dnskeys = server.wait_signed(APEX)
    yield server
    server.stop()


@pytest.fixture
def unsigned(tmp_path):
    server = start(tmp_path, False)
    yield server
    server.stop()


def publish_ds(server, ds_texts):
    def build(u):
        for text in ds_texts:
            u.add('contoso', 3600, dns.rdata.from_text(dns.rdataclass.IN, 'DS', text))
    assert server.update('test.', build) == 'NOERROR'


def ds_of(server):
    ksk = [k for k in server.dnskeys if k.flags & 1][0]
    return dns.dnssec.make_ds(APEX, ksk, 'SHA256').to_text(), dns.dnssec.key_id(ksk)


def run_check(play, server, **args):
    run = play([task('mail_dns_check', dns_args(server, domain=ZONE, checks=['dnssec'],
                                                **args))])
    result = run.last['result']
    check = [c for c in result['checks'] if c['name'] == 'dnssec'][0]
    return run, result, check, check['servers'][NS]


def test_unsigned_zone_passes_with_the_dane_note(unsigned, play):
    run, result, check, on_ns = run_check(play, unsigned)
    assert run.last['status'] == 'ok' and result['ok'] is True
    assert check['status'] == 'pass'
    assert on_ns['message'] == 'not signed; inbound DANE for Exchange Online needs a signed zone'
    assert on_ns['found']['signed'] is False and on_ns['found']['ds'] == []


def test_signed_zone_with_the_parents_ds_passes(signed, play):
    ds, tag = ds_of(signed)
    publish_ds(signed, [ds])
    run, result, check, on_ns = run_check(play, signed)
    assert run.last['status'] == 'ok', result.get('msg')
    assert on_ns['status'] == 'pass'
    assert 'signed, chain valid: key tags %d (algorithm 13)' % tag in on_ns['message']
    assert on_ns['message'].endswith('matching the DS at the parent')
    assert on_ns['found']['signed'] is True and on_ns['found']['ds'] == [ds]
    assert on_ns['found']['dnskey'] == [{'key_tag': tag, 'algorithm': 13, 'flags': 257}]
    assert on_ns['found']['rrsig_expires'] > '2026'


def test_signed_zone_with_a_wrong_ds_fails_naming_the_key_tags(signed, play):
    dummy, tag = ds_of(signed)
    wrong = '%d 13 2 %s' % (tag, '00' * 32)
    publish_ds(signed, [wrong])
    run, result, check, on_ns = run_check(play, signed)
    assert run.last['status'] == 'failed' and result['ok'] is False
    assert on_ns['status'] == 'fail'
    assert 'serves DNSKEY key tags %d for contoso.test., but no key matches the DS at the ' \
        'parent' % tag in on_ns['message']
    assert 'Publish the DS of the current key at the registrar' in result['msg']
    assert str(tag) in result['msg']


def test_signed_zone_without_ds_warns_and_a_trust_anchor_is_used(signed, play):
    run, result, check, on_ns = run_check(play, signed)
    assert run.last['status'] == 'ok'
    assert on_ns['status'] == 'warn' and 'the parent publishes no DS' in on_ns['message']
    ds, tag = ds_of(signed)
    run, result, check, on_ns = run_check(play, signed, trust_anchor=[ds])
    assert on_ns['status'] == 'pass' and on_ns['message'].endswith('matching trust_anchor')
    assert on_ns['found']['trust_anchor'] == [ds]
    wrong = '%d 13 2 %s' % (tag, 'AB' * 32)
    run, result, check, on_ns = run_check(play, signed, trust_anchor=[wrong])
    assert on_ns['status'] == 'fail' and 'no key matches trust_anchor' in on_ns['message']


def test_ds_at_the_parent_of_an_unsigned_zone_fails(unsigned, play):
    publish_ds(unsigned, ['12345 13 2 ' + 'AB' * 32])
    run, result, check, on_ns = run_check(play, unsigned)
    assert run.last['status'] == 'failed'
    assert on_ns['status'] == 'fail'
    assert 'serves no DNSKEY for contoso.test., but the parent publishes DS (key tags 12345)' \
        in on_ns['message']
    assert 'Remove the stale DS at the registrar' in result['msg']


def test_bad_trust_anchor_is_a_clear_error(unsigned, play):
    run = play([task('mail_dns_check', dns_args(unsigned, domain=ZONE, checks=['dnssec'],
                                                trust_anchor=['not a record']))])
    assert run.last['status'] == 'failed'
    assert 'trust_anchor[0] is not a DS or DNSKEY record' in run.last['result']['msg']
