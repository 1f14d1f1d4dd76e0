"""For any value of any option, every module either does its work or fails with a message that
names the option: no exception escapes, nothing is reported as a bug.

Each call goes through the code ansible-playbook runs for a task: the action plugin's checks
(argument spec, then the collection's own option checks, plugins/plugin_utils/_inprocess.py),
then either the module's work in this process (EXO_MAIL_INPROCESS=1, connection: local) or the
module's main() as the module process runs it (EXO_MAIL_INPROCESS=0). Every call is in check mode
against a real BIND and the lab's Microsoft 365 emulator and SMTP server, started once for the
file. One guard is in place: a host name that is not an IP address or ``localhost`` gets "no such
name" from the resolver here, as from a resolver that does not know it, so that a random name
never becomes a query to a DNS server outside this machine.
"""

import contextlib
import importlib
import io
import json
import os
import socket

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from ansible.module_utils.testing import patch_module_args

from ansible_collections.exchangeonline.mail.plugins.module_utils._run import UNEXPECTED
from ansible_collections.exchangeonline.mail.plugins.plugin_utils._inprocess import (
    run_here,
    validate,
)
from tests.integration.conftest import ZONE, m365_args
from tests.lab.bind import BindServer, zone_template
from tests.lab.m365.emulator import M365Emulator

INPROCESS = os.environ.get('EXO_MAIL_INPROCESS', '1') != '0'
EXAMPLES = int(os.environ.get('EXO_PROPERTY_EXAMPLES', '150'))
SENDER = 'adele@contosolab.onmicrosoft.com'
ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'Exchange.ManageAsApp', 'SMTP.SendAsApp',
         'Mail.ReadBasic.All')

TRICKY = st.sampled_from([
    '', ' ', '\x00', 'a\x00b', '\n', 'nan', 'inf', '-inf', '-1', '0', '65536', '1e309', 'NaN',
    '../../domains/x', 'alice@contoso.test?$expand=manager#', '%2e%2e', 'é.test', 'a' * 300,
    'a' * 64 + '.test', '*', '@', '.', '..', 'contoso.test', '127.0.0.1', '::1', '[::1]:53',
    'file:///etc/passwd', 'http://127.0.0.1:9/', 'https://', '-all', 'v=DMARC1; p=reject',
    'selector1', '0 mx.example.', 'MS=ms12345678', '"quoted"', 'x' * 5000, '\udcff', '\u202e',
])
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2 ** 70, max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), TRICKY)
KEY = st.one_of(st.text(max_size=8), TRICKY)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEY, inner, max_size=3)), max_leaves=6)


def wild(spec):
    """Any value, with a bias to the option's own shape (choices, suboptions)."""
    options = [VALUE]
    if spec.get('choices'):
        options.append(st.sampled_from(list(spec['choices'])))
    if spec.get('options'):
        sub = st.fixed_dictionaries({}, optional=dict((k, VALUE) for k in spec['options']))
        options.append(st.lists(sub, max_size=3) if spec.get('type') == 'list' else sub)
    return st.one_of(options)


# -- the servers --------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    bind = BindServer({ZONE: zone_template('contoso.test.zone')},
                      workdir=str(tmp_path_factory.mktemp('bind')))
    bind.start()
    emu = M365Emulator(workdir=str(tmp_path_factory.mktemp('m365')),
                       dns_server=('127.0.0.1', bind.port))
    emu.start()
    emu.start_smtp()
    emu.add_user(SENDER)
    emu.smtp.reset(SENDER)  # SMTP AUTH on for the tenant (new tenants have it off)
    emu.add_domain(ZONE, verified=True, services=['Email'])
    app = emu.add_app(secret='property-test-secret-7c1d', roles=ROLES)
    workdir = tmp_path_factory.mktemp('files')
    backup = str(workdir / 'backup.json')
    out = {'bind': bind, 'emu': emu, 'app': app, 'backup': backup, 'dir': str(workdir)}
    # the zone as after a partial migration, so that the base calls succeed and change nothing
    code = module_code('mail_dns')
    applied = run_here(code, validate('mail_dns', code, base_args(out, 'mail_dns')).params, False,
                       False)
    assert applied.get('changed') is True, applied
    yield out
    emu.stop()
    bind.stop()


@pytest.fixture(scope='module', autouse=True)
def local_names_only():
    """Names other than IP addresses and localhost do not resolve (see the module docstring)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # pylint: disable=W0622
        if host in (None, 'localhost', b'localhost'):
            return real(host, port, family, type, proto, flags)
        try:
            return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except (socket.gaierror, UnicodeError, ValueError, TypeError):
            raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
    socket.getaddrinfo = getaddrinfo
    yield
    socket.getaddrinfo = real


def base_args(lab, module):
    bind, emu, app = lab['bind'], lab['emu'], lab['app']
    dns = bind.module_args()
    m365 = m365_args(emu, app, timeout=5)
    return {
        'mail_dns': dict(dns, domain=ZONE, pattern='partial', backup_path=lab['backup'],
                         timeout=2),
        'mail_dns_check': dict(dns, domain=ZONE, pattern='partial', timeout=1),
        'domain': dict(m365, domain=ZONE),
        'domain_info': dict(m365, domain=ZONE),
        'mailbox_info': dict(m365, mailboxes=[SENDER]),
        'mailbox_protocols': dict(m365, mailboxes=[SENDER], pop=True),
        'dkim': dict(m365, domain=ZONE, enabled=False),
        'accepted_domain': dict(m365, domain=ZONE, domain_type='internal_relay'),
        'connector': dict(m365, direction='inbound', name='From the old server',
                          sender_ip_addresses=['192.0.2.25'], ef_skip_ips=['192.0.2.25']),
        'smtp_test': dict(m365, host='127.0.0.1', port=emu.smtp.port, sender=SENDER,
                          to=[SENDER]),
    }[module]


# -- one call, as ansible-playbook makes it -------------------------------------------------------
def call(module, args):
    fqcn = 'exchangeonline.mail.%s' % module
    code = module_code(module)
    checked = validate(fqcn, code, args)
    if checked.problem is not None:
        return checked.problem
    if INPROCESS:
        return run_here(code, checked.params, True, False)
    try:
        json.dumps(args, ensure_ascii=False).encode('utf-8')
    except UnicodeError:  # a lone surrogate: ansible-playbook cannot hand it to a module process
        assume(False)
    out = io.StringIO()
    with patch_module_args(dict(args, _ansible_check_mode=True)), \
            contextlib.redirect_stdout(out):
        try:
            code.main()
        except SystemExit:
            pass
    return json.loads(out.getvalue())


# Options that are waits: a valid large value makes the module wait as long as it was told to.
# The tests keep such values small (or beyond the documented bound, which is refused at once).
WAITS = {'timeout': 600, 'wait_timeout': 86400, 'verify_timeout': 86400, 'interval': 3600,
         'max_interval': 3600}


def waits_long(option, value):
    if isinstance(value, dict) and option == 'confirm_delivery':
        return any(waits_long(k, v) for k, v in value.items() if k in ('timeout', 'interval'))
    if option not in WAITS:
        return False
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return 3 < number <= WAITS[option]


def names_option(msg, option):
    """The message names the option (``records`` also as ``records[0]``, IDN by its key)."""
    return option in msg or option.replace('_', ' ') in msg


def check(module, option, value, result):
    msg = str(result.get('msg', ''))
    assert isinstance(result, dict)
    # (a message may quote the value it refuses, and hypothesis may give "unexpected error")
    assert result.get('phase') != 'internal' and not msg.startswith(UNEXPECTED), \
        (option, value, msg, result.get('exception', '')[-3000:])
    assert 'Traceback' not in msg, (option, value, msg)
    assert len(msg) < 20000, (option, value, len(msg))
    if result.get('failed') and result.get('phase') in (None, 'input'):
        assert names_option(msg, option), (option, value, msg)


MODULES = ['mail_dns', 'mail_dns_check', 'accepted_domain', 'connector', 'dkim', 'domain', 'domain_info',
           'mailbox_info', 'mailbox_protocols', 'smtp_test']


def module_code(module):
    return importlib.import_module('ansible_collections.exchangeonline.mail.plugins.modules.'
                                   + module)


def examples(count):
    """Hypothesis settings: ``count`` examples, no deadline (the calls talk to servers), no
    database (nothing written into the collection copy)."""
    return settings(max_examples=count, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize('module', MODULES)
def test_any_value_of_any_option(lab, module):
    spec = module_code(module).module_kwargs()['argument_spec']
    base = base_args(lab, module)
    assert call(module, base).get('failed') is not True, call(module, base)  # the base works

    @examples(EXAMPLES)
    @given(st.sampled_from(sorted(spec)).flatmap(
        lambda option: st.tuples(st.just(option), wild(spec[option]))))
    def one(case):
        option, value = case
        assume(not waits_long(option, value))
        args = dict(base)
        args[option] = value
        check(module, option, value, call(module, args))

    one()


@pytest.mark.parametrize('module', MODULES)
def test_any_two_options_at_once(lab, module):
    """Two odd values together: the first failure still names one of them."""
    spec = module_code(module).module_kwargs()['argument_spec']
    base = base_args(lab, module)

    @examples(max(EXAMPLES // 3, 10))
    @given(st.lists(st.sampled_from(sorted(spec)), min_size=2, max_size=2, unique=True).flatmap(
        lambda pair: st.tuples(st.just(pair), wild(spec[pair[0]]), wild(spec[pair[1]]))))
    def two(case):
        (first, second), a, b = case
        assume(not waits_long(first, a) and not waits_long(second, b))
        args = dict(base, **{first: a, second: b})
        result = call(module, args)
        msg = str(result.get('msg', ''))
        assert result.get('phase') != 'internal' and not msg.startswith(UNEXPECTED), \
            (first, a, second, b, msg)
        if result.get('failed') and result.get('phase') in (None, 'input'):
            assert names_option(msg, first) or names_option(msg, second), (first, second, msg)

    two()


@pytest.mark.parametrize('module, option, value', [
    ('domain', 'verify_timeout', 'nan'), ('domain', 'timeout', 'inf'),
    ('domain_info', 'timeout', 0), ('mailbox_info', 'timeout', 'nan'),
    ('smtp_test', 'port', 70000), ('smtp_test', 'timeout', 'inf'),
    ('smtp_test', 'confirm_delivery', {'interval': 'nan'}),
    ('mail_dns', 'ttl', -1), ('mail_dns_check', 'wait_timeout', 'nan'),
    ('domain_info', 'tenant_id', 'contoso.onmicrosoft.com/../x?y=1'),
    ('mailbox_info', 'client_id', 'not-a-guid'),
])
def test_numbers_out_of_range_through_ansible_playbook(lab, play, module, option, value):
    """The cases the issue named, as a user meets them: a clear message at once, naming the
    option, on both execution paths."""
    args = dict(base_args(lab, module), **{option: value})
    run = play([{'exchangeonline.mail.%s' % module: args, 'register': 'out',
                 'ignore_errors': True}], timeout=120)
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['msg'].startswith('input: %s' % option), result['msg']
    assert 'Traceback' not in run.stdout + run.stderr
    assert run.seconds < 60
