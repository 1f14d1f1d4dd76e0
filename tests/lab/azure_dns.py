"""Azure DNS for tests: the lab's Microsoft 365 emulator serving Azure Resource Manager's DNS zones
(tests/lab/m365/azure_dns.py) with its own identity half, and the zones' name servers.

``AzureDnsLab(zones)`` starts an emulator, registers an app with a secret and the role DNS Zone
Contributor on the resource group, loads each zone file as a public zone and answers DNS for
them on ``dns_port`` (tests/lab/api_dns.py), so that ``mail_dns_check`` waits on what the API
holds. The same surface as the other lab servers: ``module_args()``, ``axfr``, ``rrset``,
``update_messages`` (record set writes that went in).
"""

import dns.rdatatype
import dns.zone

from tests.lab.api_dns import ApiDnsServer, ZoneViews
from tests.lab.m365.emulator import M365Emulator


def _relative(name, origin):
    return '@' if name == origin else name[:-(len(origin) + 1)]


def records_of(rdtype, rds):
    """The ARM JSON of an rdataset's records."""
    out = []
    for rd in rds:
        if rdtype == 'A':
            out.append({'ipv4Address': rd.address})
        elif rdtype == 'AAAA':
            out.append({'ipv6Address': rd.address})
        elif rdtype == 'MX':
            out.append({'preference': rd.preference,
                        'exchange': rd.exchange.to_text(omit_final_dot=True)})
        elif rdtype == 'TXT':
            out.append({'value': [s.decode() for s in rd.strings]})
        elif rdtype == 'CNAME':
            return {'cname': rd.target.to_text(omit_final_dot=True)}
        elif rdtype == 'NS':
            out.append({'nsdname': rd.target.to_text(omit_final_dot=True)})
        elif rdtype == 'SRV':
            out.append({'priority': rd.priority, 'weight': rd.weight, 'port': rd.port,
                        'target': rd.target.to_text(omit_final_dot=True)})
        else:
            raise ValueError('the lab does not load %s records into Azure DNS' % rdtype)
    return out


class AzureDnsLab(ZoneViews):
    def __init__(self, zones, workdir=None):
        self.zone_texts = dict(zones)
        self.workdir = workdir
        self.emu = None
        self.api = None
        self.app = None
        self.dns = None

    def start(self):
        self.emu = M365Emulator(workdir=self.workdir)
        self.emu.start()
        self.api = self.emu.azure_dns
        self.app = self.emu.add_app(roles=())
        self.api.grant(self.app['client_id'])
        for origin, text in self.zone_texts.items():
            self.load_zone(origin, text)
        self.dns = ApiDnsServer(self.served_zones).start()
        return self

    def stop(self):
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        if self.emu is not None:
            self.emu.stop()
            self.emu = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def dns_port(self):
        return self.dns.port

    def module_args(self, app=None):
        app = app or self.app
        return dict(provider='azure', azure_subscription_id=self.api.subscription,
                    azure_endpoint_url=self.emu.url, tenant_id=self.emu.tenant_id,
                    client_id=app['client_id'], client_secret=app['secret'],
                    authority_host=self.emu.url, ca_path=self.emu.ca_path)

    def load_zone(self, origin, text):
        origin = origin.rstrip('.') + '.'
        z = dns.zone.from_text(text, origin=origin, relativize=False)
        self.api.add_zone(origin)
        for name, node in z.nodes.items():
            for rds in node.rdatasets:
                rdtype = dns.rdatatype.to_text(rds.rdtype)
                if rdtype == 'SOA' or (rdtype == 'NS' and name.to_text() == origin):
                    continue  # Azure DNS's own
                prop = 'CNAMERecord' if rdtype == 'CNAME' else '%sRecords' % rdtype
                self.api.put_set(origin, _relative(name.to_text(), origin), rdtype, rds.ttl,
                                 {prop: records_of(rdtype, rds)})

    # -- what tests look at ---------------------------------------------------------------------
    def rrsets(self, zone):
        return self.api.presentation(zone)

    def zone_names(self):
        with self.api.lock:
            return [z + '.' for z in self.api.zones]

    def served_zones(self):
        with self.api.lock:
            names = list(self.api.zones)
        return dict((z + '.', self.rrsets(z)) for z in names)

    def update_messages(self, zone=None):
        return len(self.api.writes)
