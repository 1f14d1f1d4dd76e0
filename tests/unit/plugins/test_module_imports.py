"""What importing a module of the collection loads, in a fresh Python (as its module process
does): a DNS module loads none of the collection's Microsoft 365 code and not msal. (requests
may come with an old dnspython, which offers DNS over HTTPS through it; the Microsoft 365
modules load dnspython too: Graph's DNS records are checked and rendered with it.)
tests/bench/bench_imports.py prints the import times."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import subprocess
import sys

import pytest

from tests.bench.bench_imports import DNS_MODULES, M365_MODULES, PACKAGE, PROBE

UTILS = 'ansible_collections.exchangeonline.mail.plugins.module_utils.'
M365_CODE = ('msal',) + tuple(UTILS + name for name in (
    '_identity', '_graph', '_exo_admin', '_domains', '_mailboxes', '_service_plans',
    '_smtp_delivery'))


@pytest.mark.parametrize('name', DNS_MODULES + M365_MODULES)
def test_a_dns_module_loads_no_microsoft_365_code(name):
    out = subprocess.run([sys.executable, '-c', PROBE, PACKAGE + name, 'dns'] + list(M365_CODE),
                         check=True, capture_output=True, text=True, timeout=60).stdout
    loaded = set(json.loads(out)['loaded'])
    if name in DNS_MODULES:
        assert loaded == {'dns'}, loaded
    else:  # the probe sees what is loaded
        assert {'msal', UTILS + '_identity'} <= loaded, loaded
