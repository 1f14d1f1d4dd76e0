"""The Route 53 provider's own logic against a stand-in for botocore's client: paging, octal
name escapes, what a failed change batch means. (Against moto behind the lab's strict front:
tests/integration/test_dns_providers.py.)"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

botocore = pytest.importorskip('botocore')  # the route53 provider's own dependency

import botocore.exceptions  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (  # noqa: E402
    UpdateOutcomeUnknown,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._route53 import (  # noqa: E402
    Route53Provider,
    _name,
)

ZONE = 'example.com.'


def rrset(i):
    return {'Name': 'h%04d.example.com.' % i, 'Type': 'A', 'TTL': 60,
            'ResourceRecords': [{'Value': '192.0.2.1'}]}


class Pages:
    """list_resource_record_sets over ``count`` A rrsets plus the apex MX, 300 a page."""

    def __init__(self, count):
        self.items = [{'Name': ZONE, 'Type': 'MX', 'TTL': 60,
                       'ResourceRecords': [{'Value': '10 mx.example.com.'}]}]
        self.items += [rrset(i) for i in range(count)]
        self.asked = []

    def list_resource_record_sets(self, **kwargs):
        self.asked.append(kwargs)
        start = 0
        if 'StartRecordName' in kwargs:
            start = next(i for i, r in enumerate(self.items)
                         if r['Name'] == kwargs['StartRecordName'])
        page = self.items[start:start + 300]
        more = start + 300 < len(self.items)
        answer = {'ResourceRecordSets': page, 'IsTruncated': more}
        if more:
            answer['NextRecordName'] = self.items[start + 300]['Name']
            answer['NextRecordType'] = 'A'
        return answer


def provider(reader, writer=None):
    p = object.__new__(Route53Provider)
    p.reader, p.writer_client, p.where, p.hosted_zone_id = reader, writer, 'Route 53', None
    p._ids, p._raw, p._special, p.calls, p.warnings = {ZONE: 'Z1'}, {}, set(), {}, []
    p.timeout, p._domain = 1.0, ''
    return p


def test_a_zone_of_one_page_is_read_whole():
    pages = Pages(10)
    snapshot = provider(pages).read_rrsets(ZONE, [ZONE])
    assert snapshot.method == 'api' and len(pages.asked) == 1 and len(snapshot.rrsets) == 11


def test_a_larger_zone_is_read_by_the_names_the_plan_needs():
    pages = Pages(700)
    snapshot = provider(pages).read_rrsets(ZONE, [ZONE, 'h0650.example.com.'])
    assert snapshot.method == 'api-names'
    assert set(snapshot.rrsets) == {(ZONE, 'MX'), ('h0650.example.com.', 'A')}
    # the first page, then one page from each name
    assert len(pages.asked) == 3 and pages.asked[2]['StartRecordName'] == 'h0650.example.com.'


def test_octal_escapes_are_route53s():
    assert _name({'Name': '\\052.example.com.'}) == '*.example.com.'
    assert _name({'Name': 'A\\055b.example.com.'}) == 'a-b.example.com.'


class Failing:
    def __init__(self, exc):
        self.exc = exc

    def change_resource_record_sets(self, **kwargs):
        raise self.exc


def server_error(status, code):
    return botocore.exceptions.ClientError(
        {'Error': {'Code': code, 'Message': 'try later'},
         'ResponseMetadata': {'HTTPStatusCode': status}}, 'ChangeResourceRecordSets')


@pytest.mark.parametrize('exc', [
    server_error(500, 'InternalFailure'), server_error(503, 'ServiceUnavailable'),
    botocore.exceptions.ReadTimeoutError(endpoint_url='https://route53.amazonaws.com'),
    botocore.exceptions.HTTPClientError(error='connection broken after sending'),
])
def test_a_change_that_may_have_arrived_is_not_taken_as_refused(exc):
    p = provider(None, Failing(exc))
    with pytest.raises(UpdateOutcomeUnknown):
        p.apply_changes(ZONE, [])


def test_a_change_that_never_left_changed_nothing():
    p = provider(None, Failing(botocore.exceptions.EndpointConnectionError(
        endpoint_url='https://route53.amazonaws.com')))
    with pytest.raises(Exception) as err:
        p.apply_changes(ZONE, [])
    assert not isinstance(err.value, UpdateOutcomeUnknown)
    assert 'Nothing was changed' in str(err.value)


def test_an_alias_in_the_plan_is_refused_before_anything_is_written():
    from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
        DnsError,
    )
    from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import Change
    from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RRset
    p = provider(None)
    p._special.add(('autodiscover.example.com.', 'CNAME'))
    change = Change(None, RRset('autodiscover.example.com.', 'CNAME', 3600,
                                ['autodiscover.outlook.com.']), 'create')
    with pytest.raises(DnsError) as err:
        p.check_plan([change])
    assert err.value.phase == 'plan' and 'alias or has a routing policy' in str(err.value)


class Writer:
    """change_resource_record_sets answering each batch with the error ``code``."""

    def __init__(self, code, status):
        self.code, self.status, self.batches = code, status, []

    def change_resource_record_sets(self, **kwargs):
        self.batches.append(kwargs['ChangeBatch']['Changes'])
        raise botocore.exceptions.ClientError(
            {'Error': {'Code': self.code, 'Message': 'answered by the test'},
             'ResponseMetadata': {'HTTPStatusCode': self.status}}, 'ChangeResourceRecordSets')


def test_preflight_asks_for_the_names_and_types_a_run_writes():
    """An IAM policy may restrict the record names and types: the preflight's batch holds the
    ones every pattern writes, with values no record has, so it proves the right for them and
    changes nothing."""
    writer = Writer('InvalidChangeBatch', 400)
    p = provider(None, writer)
    p._domain = ZONE
    p.prove_write(ZONE)
    changes = writer.batches[0]
    assert set(c['Action'] for c in changes) == {'DELETE'}
    assert [(c['ResourceRecordSet']['Name'], c['ResourceRecordSet']['Type'])
            for c in changes] == [(ZONE, 'MX'), (ZONE, 'TXT'), ('autodiscover.' + ZONE, 'CNAME')]
    denied = provider(None, Writer('AccessDenied', 403))
    with pytest.raises(Exception) as err:
        denied.prove_write(ZONE)
    assert 'AccessDenied' in str(err.value)
