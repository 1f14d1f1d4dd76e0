"""A big zone read both ways on a real BIND 9: the whole zone by (TSIG-signed) AXFR, and signed
queries for the names a mail_dns plan needs; then which way the RFC 2136 provider chooses.

    python -m tests.bench.bench_zone_read [--records 20000]

Prints figures (the median of 5 reads each); not a pass/fail test. Also part of
tests.bench.bench_mailboxes (the issue's one run).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    DnsServer)
from ansible_collections.exchangeonline.mail.plugins.module_utils import _rfc2136
from tests.lab.bind import BindServer

ZONE = 'big.test'
# the names a full pattern's plan reads (mail_dns spec names)
NAMES = ['big.test', 'autodiscover.big.test', '_dmarc.big.test']


def zone_text(records):
    lines = ['$TTL 3600', '@ IN SOA ns1.big.test. hostmaster.big.test. 1 3600 600 86400 300',
             '@ IN NS ns1.big.test.', 'ns1 IN A 127.0.0.1', '@ IN MX 10 mail.big.test.',
             '@ IN TXT "v=spf1 mx -all"', 'mail IN A 192.0.2.1']
    lines += ['host%05d IN A 198.51.%d.%d' % (i, (i // 250) % 250, i % 250 + 1)
              for i in range(max(0, records - len(lines) + 1))]
    return '\n'.join(lines) + '\n'


def timed(fn, runs=5):
    times = []
    for dummy in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def read_both_ways(records, workdir):
    bind = BindServer({ZONE: zone_text(records)}, workdir=workdir)
    bind.start()
    try:
        server = DnsServer.from_params(dict(bind.module_args(), protocol='udp', timeout=10.0))
        provider = _rfc2136.Rfc2136Provider(server)
        count = len(server.transfer(ZONE)[1])
        axfr = timed(lambda: server.transfer(ZONE))
        queries = timed(lambda: provider._read_queries(ZONE, NAMES))  # pylint: disable=protected-access
        chosen = provider.read_rrsets(ZONE, NAMES)
        auto = timed(lambda: provider.read_rrsets(ZONE, NAMES))
    finally:
        bind.stop()
    print('%d records (%d rrsets): AXFR of the whole zone %.3f s; signed queries for the %d '
          'names a plan reads %.3f s (%.0fx faster); mail_dns reads it by %s (transfer limit '
          '%d records) in %.3f s' % (records, count, axfr, len(NAMES), queries,
                                     axfr / queries, chosen.method, _rfc2136.TRANSFER_LIMIT,
                                     auto))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--records', type=int, action='append')
    opts = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix='exo-bench-zone-')
    for records in opts.records or [1000, 20000]:
        read_both_ways(records, os.path.join(work, str(records)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
