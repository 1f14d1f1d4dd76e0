"""Graph's serviceConfigurationRecords as rrsets: SRV owners (issue 12, item 10)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import InputError
from ansible_collections.exchangeonline.mail.plugins.module_utils._domains import (
    record_problem,
    records_to_rrsets,
    srv_owner,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    RecordError,
    name_text,
)


def srv(**fields):
    """A domainDnsSrvRecord as resources/domaindnssrvrecord documents it (the lab's shape)."""
    record = {'@odata.type': '#microsoft.graph.domainDnsSrvRecord', 'recordType': 'Srv',
              'label': 'contoso.com', 'service': '_sip', 'protocol': '_tls',
              'nameTarget': 'sipdir.online.lync.com', 'port': 443, 'priority': 100, 'weight': 1,
              'ttl': 3600, 'isOptional': False, 'supportedService': 'OfficeCommunicationsOnline'}
    record.update(fields)
    return record


@pytest.mark.parametrize('fields, owner', [
    # (a) label = the domain, service and protocol apart, as Graph documents them
    ({}, '_sip._tls.contoso.com.'),
    ({'service': '_sipfederationtls', 'protocol': '_tcp'}, '_sipfederationtls._tcp.contoso.com.'),
    # (b) the label already is the whole owner: not prefixed twice
    ({'label': '_sip._tls.contoso.com'}, '_sip._tls.contoso.com.'),
    ({'label': '_SIP._TLS.contoso.com.'}, '_sip._tls.contoso.com.'),
    # (c) service and protocol without their leading underscore (RFC 2782 names have one)
    ({'service': 'sip', 'protocol': 'tls'}, '_sip._tls.contoso.com.'),
    ({'service': 'sip', 'protocol': 'tls', 'label': '_sip._tls.contoso.com'},
     '_sip._tls.contoso.com.'),
    # a record for a subdomain, and one without service and protocol (the label is all there is)
    ({'label': 'eu.contoso.com'}, '_sip._tls.eu.contoso.com.'),
    ({'service': None, 'protocol': None, 'label': '_sip._tls.contoso.com'},
     '_sip._tls.contoso.com.'),
])
def test_srv_owner_shapes(fields, owner):
    record = srv(**fields)
    assert name_text(srv_owner(record)) == owner
    assert record_problem(record, 'contoso.com') is None


def test_the_two_skype_srv_records_land_on_their_own_owners():
    """The emulator's two SRV records (tests/lab/m365/emulator.py service_records): before the
    fix both were published at contoso.com., one rrset with two unrelated values."""
    records = [srv(), srv(service='_sipfederationtls', protocol='_tcp', port=5061,
                          nameTarget='sipfed.online.lync.com'),
               {'recordType': 'CName', 'label': 'sip.contoso.com', 'ttl': 3600,
                'canonicalName': 'sipdir.online.lync.com',
                'supportedService': 'OfficeCommunicationsOnline'}]
    rrsets = records_to_rrsets(records, ['OfficeCommunicationsOnline'])
    assert [(r['name'], r['type'], r['values']) for r in rrsets] == [
        ('_sip._tls.contoso.com.', 'SRV', ['100 1 443 sipdir.online.lync.com']),
        ('_sipfederationtls._tcp.contoso.com.', 'SRV', ['100 1 5061 sipfed.online.lync.com']),
        ('sip.contoso.com.', 'CNAME', ['sipdir.online.lync.com'])]
    assert records_to_rrsets(records, ['Email']) == []


@pytest.mark.parametrize('fields, says', [
    ({'service': '_s ip'}, 'white space'),
    ({'protocol': 5}, 'protocol is a JSON number'),
    ({'label': 'contoso.org'}, 'is not in the domain'),
    ({'port': '443'}, 'port is a JSON string'),
])
def test_bad_srv_records_are_named(fields, says):
    problem = record_problem(srv(**fields), 'contoso.com')
    assert problem and says in problem, problem


def test_srv_owner_refuses_what_is_no_dns_name():
    with pytest.raises(RecordError) as err:
        srv_owner(srv(service='_' + 'x' * 70))
    assert 'service and protocol' in str(err.value)


@pytest.mark.parametrize('fields, says', [
    # service and protocol are one label each, letters, digits and hyphens after the underscore
    # (RFC 6335 5.1 service names, RFC 2782): no escaped dot, space or other octet, no second
    # label, no wildcard
    ({'service': '_sip\\.'}, "service '_sip\\\\.' is not one DNS label"),
    ({'service': '_sip\\032x'}, "service '_sip\\\\032x' is not one DNS label"),
    ({'service': '_sip.contoso.com'}, "service '_sip.contoso.com' is not one DNS label"),
    ({'protocol': '_tls.contoso.com'}, "protocol '_tls.contoso.com' is not one DNS label"),
    ({'service': '*'}, "service '*' is not one DNS label"),
    # an owner outside the domain is named as the owner it would be, not as the label alone
    ({'protocol': '_tls.evil.example.'}, "protocol '_tls.evil.example.' is not one DNS label"),
    # a label whose escapes hide a space or a dot: not a host-like name (letters, digits,
    # hyphens, underscores)
    ({'label': 'x\\032y.contoso.com'}, "label 'x\\\\032y.contoso.com' holds"),
    ({'label': 'x\\.y.contoso.com'}, "label 'x\\\\.y.contoso.com' holds"),
])
def test_hostile_srv_owner_parts_are_refused(fields, says):
    problem = record_problem(srv(**fields), 'contoso.com')
    assert problem and says in problem, problem
    with pytest.raises((RecordError, InputError)):
        records_to_rrsets([srv(**fields)])


def test_an_owner_outside_the_domain_is_named_as_the_owner():
    problem = record_problem(srv(label='contoso.org'), 'contoso.com')
    assert problem == "the owner _sip._tls.contoso.org. (label 'contoso.org') is not in the " \
                      "domain contoso.com", problem
