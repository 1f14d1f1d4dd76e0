"""Import time of each module of the collection, as its module process (or the in-process path of
its action plugin) pays it: a fresh Python imports ``ansible.module_utils.basic`` (what every
module needs, printed apart), then the module file with its module_utils. Median of ``--repeat``
fresh processes per module; also says which heavy libraries the import loaded (a DNS module
must load neither msal nor requests). Prints figures; not a pass/fail test.

    python -m tests.bench.bench_imports [--repeat 7]
"""

import argparse
import json
import statistics
import subprocess
import sys

PACKAGE = 'ansible_collections.exchangeonline.mail.plugins.modules.'
DNS_MODULES = ('mail_dns', 'mail_dns_check')
M365_MODULES = ('accepted_domain', 'connector', 'dkim', 'domain', 'domain_info', 'mailbox_info',
                'mailbox_protocols', 'smtp_test')
HEAVY = ('msal', 'requests', 'dns', 'cryptography')

# Runs in the fresh process: the seconds of each step and the heavy libraries loaded.
PROBE = r'''
import importlib, json, sys, time
start = time.perf_counter()
import ansible.module_utils.basic
basic = time.perf_counter()
importlib.import_module(sys.argv[1])
end = time.perf_counter()
print(json.dumps({'basic': basic - start, 'module': end - basic,
                  'loaded': sorted(n for n in sys.argv[2:] if n in sys.modules)}))
'''


def measure(name, python=sys.executable):
    """One fresh process importing the module ``name``: its probe's figures."""
    out = subprocess.run([python, '-c', PROBE, PACKAGE + name] + list(HEAVY), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def median_row(name, repeat):
    runs = [measure(name) for dummy in range(repeat)]
    return {'module': statistics.median(r['module'] for r in runs),
            'basic': statistics.median(r['basic'] for r in runs),
            'loaded': runs[0]['loaded']}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--repeat', type=int, default=7)
    opts = parser.parse_args(argv)
    print('import time per module, median of %d fresh processes (Python %s)\n'
          % (opts.repeat, sys.version.split()[0]))
    print('%-8s %-18s %10s %12s  %s'
          % ('kind', 'module', 'module ms', '+ basic ms', 'heavy libraries loaded'))
    failed = False
    for kind, names in (('DNS', DNS_MODULES), ('M365', M365_MODULES)):
        for name in names:
            row = median_row(name, opts.repeat)
            print('%-8s %-18s %10.1f %12.1f  %s' % (
                kind, name, row['module'] * 1000, (row['module'] + row['basic']) * 1000,
                ', '.join(row['loaded']) or '-'))
            if kind == 'DNS' and set(row['loaded']) & {'msal', 'requests'}:
                failed = True
    print('\ntarget: a DNS module imports no Microsoft 365 code (msal, requests): %s'
          % ('MISSED' if failed else 'MET'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
