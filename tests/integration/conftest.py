"""Fixtures for integration tests: a real BIND 9 (or Knot DNS) per test and ansible-playbook
runs."""

import os
import shutil

import pytest

from tests.lab.ansible_runner import run_playbook
from tests.lab.bind import BindServer, zone_template
from tests.lab.knot import KnotServer

# The in-process path runs modules in this process: the same AWS isolation as the playbook runs
# (tests/lab/ansible_runner.environment).
os.environ.update(AWS_EC2_METADATA_DISABLED='true', AWS_CONFIG_FILE=os.devnull,
                  AWS_SHARED_CREDENTIALS_FILE=os.devnull)
for _name in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'):
    os.environ.pop(_name, None)

ZONE = 'contoso.test'
IDN_ZONE = 'xn--bcher-kva.test'


def lab_zones():
    return {ZONE: zone_template('contoso.test.zone'),
            IDN_ZONE: zone_template('xn--bcher-kva.test.zone')}


@pytest.fixture
def bind(tmp_path):
    """named on 127.0.0.1 with the legacy contoso.test zone and the IDN zone bücher.test."""
    if not shutil.which('named') and not os.path.exists('/usr/sbin/named'):
        pytest.fail('named is not installed: run make test (it installs bind9)')
    server = BindServer(lab_zones(), workdir=str(tmp_path / 'bind'))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def knot(tmp_path):
    """knotd on 127.0.0.1 with the same zones; the key may update them, and zone transfers are
    allowed by address only (the transfer ACL names no key), so mail_dns reads by queries."""
    if not shutil.which('knotd') and not os.path.exists('/usr/sbin/knotd'):
        pytest.fail('knotd is not installed: run make test (it installs knot)')
    server = KnotServer(lab_zones(), workdir=str(tmp_path / 'knot'), transfer='address')
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=['bind', 'knot'])
def server(request):
    """Each lab authoritative server in turn: BIND 9, then Knot DNS (the fixtures above)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def play(tmp_path):
    """Run tasks with real ansible-playbook: play(tasks, check=, diff=, verbosity=)."""
    def run(tasks, **kwargs):
        kwargs.setdefault('workdir', str(tmp_path / 'ansible'))
        return run_playbook(tasks, **kwargs)
    return run


def dns_args(bind, **extra):
    """mail_dns/mail_dns_check connection options for the lab server."""
    args = bind.module_args()
    args.update(extra)
    return args


@pytest.fixture
def m365(tmp_path, bind):
    """The lab's Microsoft 365 emulator over HTTPS, verifying domains against the lab BIND."""
    from tests.lab.m365.emulator import M365Emulator
    emulator = M365Emulator(workdir=str(tmp_path / 'm365'), dns_server=('127.0.0.1', bind.port))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def emu(tmp_path):
    """The emulator alone (no BIND behind it), for tests of its endpoints and of the clients."""
    from tests.lab.m365.emulator import M365Emulator
    server = M365Emulator(workdir=str(tmp_path / 'm365'))
    server.start()
    yield server
    server.stop()


# The application permissions of an app that may run every m365 module.
APP_ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'Exchange.ManageAsApp')


def task(module, args, name=None):
    """A play task calling exchangeonline.mail.<module>, its result registered as ``out`` and
    its failure not ending the play."""
    return {'name': name or module, 'exchangeonline.mail.%s' % module: args,
            'register': 'out', 'ignore_errors': True}


def m365_args(emulator, app, **extra):
    """The M365 connection options of the collection's modules for an emulator app."""
    args = dict(tenant_id=emulator.tenant_id, client_id=app['client_id'],
                authority_host=emulator.url, graph_endpoint=emulator.url,
                exo_endpoint=emulator.url, ca_path=emulator.ca_path)
    if app.get('secret'):
        args['client_secret'] = app['secret']
    args.update(extra)
    return args


LEGACY_DOMAIN = 'legacy.test'
LEGACY_MAILBOXES = ('alice@legacy.test', 'bob@legacy.test')


@pytest.fixture
def postfix(tmp_path, m365):
    """A private real Postfix as the legacy server of LEGACY_DOMAIN (Maildir mailboxes
    LEGACY_MAILBOXES), relaying every other domain to the emulator's inbound MX listener
    (``m365.smtp.inbound_port``; SMTP started here if needed); STARTTLS with a certificate of
    the emulator's CA (``m365.ca_path``) for 127.0.0.1, localhost and mail.legacy.test. Its
    maillog is copied to tmp_path/postfix.maillog at teardown. See tests/lab/postfix.py."""
    from tests.lab.postfix import PostfixServer, lab_workdir
    if not os.path.exists('/usr/sbin/postfix'):
        pytest.fail('postfix is not installed: run make test (it installs postfix)')
    smtp = m365.smtp or m365.start_smtp()
    workdir = lab_workdir()  # pytest's tmp_path is not reachable by the postfix user
    server = PostfixServer(
        workdir=workdir, mydomains=(LEGACY_DOMAIN,), mailboxes=LEGACY_MAILBOXES,
        relay=('127.0.0.1', smtp.inbound_port),
        tls_cert=m365.ca.issue_cert('127.0.0.1', 'localhost', 'mail.' + LEGACY_DOMAIN))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if os.path.exists(server.maillog_file):
            shutil.copy(server.maillog_file, str(tmp_path / 'postfix.maillog'))
        shutil.rmtree(workdir, ignore_errors=True)
