"""The pure parts of the dnssec check: trust anchors, key matching and the verdict per server,
with keys and signatures made here by dnspython and cryptography."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.exchangeonline.mail.plugins.module_utils._dnssec import (
    UNSIGNED_NOTE,
    judge_zone,
    matching_keys,
    parse_trust_anchor,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError

ZONE = 'contoso.test.'
NAME = dns.name.from_text(ZONE)
NOW = 1800000000


def make_zone(lifetime=30 * 86400):
    private = ec.generate_private_key(ec.SECP256R1())
    key = dns.dnssec.make_dnskey(private.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256,
                                 flags=257)
    dnskeys = dns.rrset.from_rdata(NAME, 3600, key)
    soa = dns.rrset.from_text(NAME, 3600, 'IN', 'SOA', 'ns1.contoso.test. h.contoso.test. '
                              '1 3600 900 1209600 300')

    def sign(rrset):
        sig = dns.dnssec.sign(rrset, private, NAME, key, inception=NOW - 3600,
                              expiration=NOW + lifetime)
        return dns.rrset.from_rdata(NAME, 3600, sig)
    return key, dnskeys, sign(dnskeys), soa, sign(soa), sign


def ds_of(key):
    return dns.dnssec.make_ds(NAME, key, 'SHA256')


def test_unsigned_without_ds_passes_with_the_note():
    outcome = judge_zone(ZONE, None, None, None, None, [], None, 'ns1', NOW)
    assert (outcome.status, outcome.message) == ('pass', UNSIGNED_NOTE)
    assert outcome.found == {'signed': False, 'dnskey': [], 'ds': []}


def test_ds_for_an_unsigned_zone_fails():
    key = make_zone()[0]
    outcome = judge_zone(ZONE, None, None, None, None, [ds_of(key)], None, 'ns1', NOW)
    assert outcome.status == 'fail'
    assert 'but the parent publishes DS (key tags %d)' % dns.dnssec.key_id(key) \
        in outcome.message


def test_valid_chain_passes_with_tags_and_expiry():
    key, dnskeys, ksig, soa, ssig, dummy = make_zone()
    outcome = judge_zone(ZONE, dnskeys, ksig, soa, ssig, [ds_of(key)], None, 'ns1', NOW)
    tag = dns.dnssec.key_id(key)
    assert outcome.status == 'pass', outcome.message
    assert outcome.message.startswith('signed, chain valid: key tags %d (algorithm 13)' % tag)
    assert outcome.found['dnskey'] == [{'key_tag': tag, 'algorithm': 13, 'flags': 257}]
    assert outcome.found['rrsig_expires'] == time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                                           time.gmtime(NOW + 30 * 86400))


def test_ds_of_another_key_fails_naming_both():
    key, dnskeys, ksig, soa, ssig, dummy = make_zone()
    other = make_zone()[0]
    outcome = judge_zone(ZONE, dnskeys, ksig, soa, ssig, [ds_of(other)], None, 'ns1', NOW)
    assert outcome.status == 'fail'
    assert 'DNSKEY key tags %d' % dns.dnssec.key_id(key) in outcome.message
    assert ds_of(other).to_text() in outcome.message


def test_expired_signature_fails_and_near_expiry_warns():
    key, dnskeys, ksig, soa, ssig, dummy = make_zone(lifetime=86400)
    outcome = judge_zone(ZONE, dnskeys, ksig, soa, ssig, [ds_of(key)], None, 'ns1',
                         NOW + 2 * 86400)
    assert outcome.status == 'fail' and 'does not validate' in outcome.message
    assert 'Re-sign the zone' in outcome.message
    outcome = judge_zone(ZONE, dnskeys, ksig, soa, ssig, [ds_of(key)], None, 'ns1', NOW)
    assert outcome.status == 'warn' and 'expires in less than 3 day(s)' in outcome.message


def test_soa_signed_by_another_key_fails():
    key, dnskeys, ksig, soa, dummy, dummy2 = make_zone()
    other_sign = make_zone()[5]
    outcome = judge_zone(ZONE, dnskeys, ksig, soa, other_sign(soa), [ds_of(key)], None,
                         'ns1', NOW)
    assert outcome.status == 'fail' and 'the RRSIG of the SOA' in outcome.message


def test_no_ds_or_unknown_ds_warns():
    key, dnskeys, ksig, soa, ssig, dummy = make_zone()
    assert 'publishes no DS' in judge_zone(ZONE, dnskeys, ksig, soa, ssig, [], None, 'ns1',
                                           NOW).message
    unknown = judge_zone(ZONE, dnskeys, ksig, soa, ssig, None, None, 'ns1', NOW)
    assert unknown.status == 'warn' and 'could not be asked' in unknown.message


def test_trust_anchor_ds_and_dnskey_texts():
    key, dnskeys, ksig, soa, ssig, dummy = make_zone()
    anchors = parse_trust_anchor(ZONE, [ds_of(key).to_text(),
                                        'contoso.test. 3600 IN DNSKEY ' + key.to_text()])
    assert [a.rdtype for a in anchors] == [dns.rdatatype.DS, dns.rdatatype.DNSKEY]
    assert matching_keys(NAME, [key], anchors[:1]) == [key]
    assert matching_keys(NAME, [key], anchors[1:]) == [key]
    outcome = judge_zone(ZONE, dnskeys, ksig, soa, ssig, None, anchors, 'ns1', NOW)
    assert outcome.status == 'pass' and outcome.message.endswith('matching trust_anchor')


def test_bad_trust_anchor_is_a_record_error():
    with pytest.raises(RecordError, match=r'trust_anchor\[0\] is not a DS or DNSKEY'):
        parse_trust_anchor(ZONE, ['12345 13 2 XYZ'])
