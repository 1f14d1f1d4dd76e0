"""The variable check of the playbooks (plugins/plugin_utils/_variables.py) without a network,
and the one-source rule: playbooks/vars/exo_variables.yml, the playbooks, their headers and the
README's Playbooks table name the same variables."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

import pytest
import yaml

from ansible_collections.exchangeonline.mail.plugins.plugin_utils._variables import (
    ROOT,
    Known,
    check_host,
    closest,
    value_problem,
)

PLAYBOOKS = ('migrate', 'check', 'rollback', 'smtp_test', 'enable_pop')
EXO = re.compile(r'\b(exo_[a-z0-9_]+)')
# Names with the exo_ prefix that are not variables: the group of old servers.
NOT_VARIABLES = {'exo_legacy_servers'}


@pytest.fixture(scope='module')
def known():
    return Known()


def check(known, playbook='migrate', **variables):
    problems, warnings, dummy = check_host('contoso.test', playbook, list(variables),
                                           variables.__getitem__, known)
    return problems, warnings


def playbook_text(name):
    with open(os.path.join(ROOT, 'playbooks', name + '.yml'), encoding='utf-8') as f:
        return f.read()


def header_and_body(name):
    lines = playbook_text(name).splitlines()
    header = [line for line in lines if line.startswith('#')]
    body = [line for line in lines if not line.lstrip().startswith('#')]
    return '\n'.join(header), '\n'.join(body)


# -- one source -------------------------------------------------------------------------------------
def test_every_source_of_the_variable_list_resolves(known):
    for name in known.variables:
        spec, limits = known.source(name)
        assert spec.get('type') or spec.get('choices'), name
        known.keys(name)
    assert set(known.keys('exo_dns')) == set(known.fragment_options('dns'))
    assert 'tenant_id' in known.keys('exo_m365') and 'pattern' not in known.keys('exo_dns')
    # the hosted providers' options are the group's too (fragment dns.provider)
    assert {'server', 'provider', 'api_key', 'aws_secret_access_key', 'hosted_zone_id'} <= set(
        known.keys('exo_dns'))
    assert known.source('exo_ttl')[1]['exo_ttl'].high == 2147483647
    assert known.source('exo_legacy_mx')[1]['exo_legacy_mx.preference'].high == 65535


def test_the_playbooks_read_exactly_the_listed_variables(known):
    """Every exo_* name a playbook (or its templates) reads is in the list, and every listed
    variable is read somewhere."""
    read = set()
    for name in PLAYBOOKS:
        read |= set(EXO.findall(header_and_body(name)[1]))
    templates = os.path.join(ROOT, 'playbooks', 'templates')
    for name in os.listdir(templates):
        with open(os.path.join(templates, name), encoding='utf-8') as f:
            read |= set(EXO.findall(f.read()))
    read -= NOT_VARIABLES
    assert read - set(known.variables) == set()
    assert set(known.variables) - read == {'exo_ignore_variables'}  # read by the check itself


def test_each_playbook_header_names_the_variables_it_reads(known):
    migrate_header = header_and_body('migrate')[0]
    for name in PLAYBOOKS:
        header, body = header_and_body(name)
        documented = set(EXO.findall(header))
        if 'as for exchangeonline.mail.migrate' in header:
            documented |= set(EXO.findall(migrate_header))
        missing = set(EXO.findall(body)) - NOT_VARIABLES - documented
        if name == 'check':  # the test-send's variables are those of smtp_test.yml
            missing -= set(EXO.findall(header_and_body('smtp_test')[0]))
        assert missing == set(), (name, missing)
    assert set(known.variables) - set(EXO.findall(migrate_header)) <= {
        'exo_rollback_force', 'exo_report_dir', 'exo_check_wait_timeout', 'exo_check_smtp'}


def test_the_readme_playbooks_table_lists_every_variable(known):
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    table = readme.split('The playbooks read these host or group variables')[1].split('\n## ')[0]
    rows = [line for line in table.splitlines() if line.startswith('| `')]
    listed = set()
    for row in rows:
        listed |= set(EXO.findall(row.split('|')[1]))
    assert listed == set(known.variables)


def test_the_role_variables_a_playbook_sets_are_found_from_its_tasks(known):
    settings = known.settings('migrate')
    assert settings['dns_migration_primary'] == ['exo_primary']
    assert settings['dns_migration_ttl'] == ['exo_ttl']
    assert settings['domain_name'] == ['exo_domain']  # through the play var migrate_domain
    assert settings['legacy_forwarding_domains'] == []
    assert settings['smtp_test_sender'] == ['exo_smtp_test']  # the imported smtp_test.yml
    assert known.settings('rollback')['dns_migration_rollback_force'] == ['exo_rollback_force']


def test_the_defaults_of_the_dict_variables_have_every_key_of_the_role(known):
    defaults = known.defaults()
    assert defaults['exo_protocols'] == {'pop': None, 'imap': None, 'smtp_auth': None,
                                         'tenant_smtp_auth': None}
    with open(os.path.join(ROOT, 'roles', 'smtp_test', 'meta', 'argument_specs.yml')) as f:
        options = yaml.safe_load(f)['argument_specs']['main']['options']
    assert set(defaults['exo_smtp_test']) == set(
        o[len('smtp_test_'):] for o in options) - {'m365', 'fail'}
    assert defaults['exo_smtp_test']['host'] == 'smtp.office365.com'
    assert set(defaults) == {'exo_protocols', 'exo_smtp_test'}


# -- a user's keys are never read as attributes -----------------------------------------------------
# Jinja looks ``d.pop`` up as an attribute first and ``d['pop']`` falls back to one when the key is
# missing: with exo_protocols {smtp_auth: enabled}, exo_protocols['pop'] was the dict's pop method.
DICT_METHODS = frozenset(n for n in dir(dict) if not n.startswith('_'))
CONDITIONALS = ('when', 'that', 'failed_when', 'changed_when', 'until')


def _strings(node, key=None):
    """(key, template text) of every string of a YAML document; bare conditionals in {{ }}."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, key)
    elif isinstance(node, str):
        if key in CONDITIONALS and '{{' not in node:
            yield key, '{{ %s }}' % node
        elif '{{' in node or '{%' in node:
            yield key, node


def templates_of_the_collection(root=ROOT):
    """{path: [template text]} of every playbook, role task/defaults/vars file and .j2 file."""
    out = {}
    for top, dirs, files in os.walk(os.path.join(root, 'playbooks')):
        for name in files:
            out[os.path.join(top, name)] = None
    roles = os.path.join(root, 'roles')
    for role in os.listdir(roles):
        for part in ('tasks', 'defaults', 'vars', 'handlers', 'templates'):
            for top, dirs, files in os.walk(os.path.join(roles, role, part)):
                for name in files:
                    out[os.path.join(top, name)] = None
    for path in list(out):
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if path.endswith('.j2'):
            out[path] = [text]
        elif path.endswith(('.yml', '.yaml')):
            out[path] = [t for k, t in _strings(yaml.safe_load(text))]
        else:
            del out[path]
    return out


def attribute_reads(text, user_dicts):
    """The reads in a template that can return a dict's own attribute: ``x.<dict method>``, and
    any ``.key`` or ``['key']`` on a dict the user gives (read it over the defaults instead)."""
    from jinja2 import Environment, nodes
    env = Environment(extensions=['jinja2.ext.do', 'jinja2.ext.loopcontrols'])
    found = []
    for node in env.parse(text).find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if isinstance(node, nodes.Getattr) and node.attr in DICT_METHODS \
                and not isinstance(target, nodes.Dict):
            found.append('.%s' % node.attr)
        elif isinstance(target, nodes.Name) and target.name in user_dicts:
            found.append('%s[...]' % target.name if isinstance(node, nodes.Getitem)
                         else '%s.%s' % (target.name, node.attr))
    return found


def user_dicts(known):
    """The dict variables a user sets: the playbooks' and the roles' options of type dict."""
    # exo_dkim (raw) is true, false or a dict of selector targets: a dict the user gives too
    names = set(n for n in known.variables if known.source(n)[0].get('type') == 'dict'
                or n == 'exo_dkim')
    for entries in known.roles.values():
        for options in entries.values():
            names.update(n for n, spec in options.items() if spec.get('type') == 'dict')
    return names


def test_no_playbook_or_role_reads_a_users_key_as_an_attribute(known):
    dicts = user_dicts(known)
    assert {'exo_protocols', 'exo_smtp_test', 'exo_dkim', 'exo_dns', 'exo_m365',
            'exo_auth_check', 'dns_migration_dkim', 'smtp_test_m365',
            'mail_authentication_m365'} <= dicts
    files = templates_of_the_collection()
    assert len([p for p in files if '/roles/' in p]) >= 10 and len(files) > 20
    found = dict((os.path.relpath(path, ROOT), reads) for path, reads in (
        (path, [r for t in texts for r in attribute_reads(t, dicts)])
        for path, texts in files.items()) if reads)
    assert found == {}
    # What used to be in migrate.yml and check.yml is found.
    assert attribute_reads("{{ exo_protocols['pop'] | default(none) }}", dicts) == [
        'exo_protocols[...]']
    assert attribute_reads('{{ m.protocols.pop }}', dicts) == ['.pop']
    assert attribute_reads("{{ {'a': 1}.get(x, 2) }} {{ r.records }}", dicts) == []


# -- the check ------------------------------------------------------------------------------------
def test_an_unknown_exo_name_is_named_with_the_closest_one(known):
    problems, warnings = check(known, exo_patern='full')
    assert problems == ['exo_patern: unknown variable; did you mean exo_pattern? If it is a '
                        'variable of your own, add it to exo_ignore_variables.',
                        'Set exo_pattern (full, partial or legacy_forward) for contoso.test']
    assert warnings == []
    problems, dummy = check(known, 'check', exo_zzzz=1)
    assert problems == ['exo_zzzz: unknown variable; the exo_* variables of the playbooks are '
                        'listed in playbooks/vars/exo_variables.yml (and README.md). If it is a '
                        'variable of your own, add it to exo_ignore_variables.']


def test_role_prefixed_names_are_typos_only_when_close(known):
    problems, dummy = check(known, exo_pattern='full', dns_migration_primry='exo',
                            domain_controller='dc1', smtp_test_window='night',
                            dns_migration_plan={'plan': []}, domain_added={})
    assert problems == [
        'dns_migration_primry: unknown variable of the role exchangeonline.mail.dns_migration; '
        'did you mean dns_migration_primary? (the playbook migrate sets dns_migration_primary '
        'itself from exo_primary: set exo_primary instead) If it is a variable of your own, add '
        'it to exo_ignore_variables.']
    assert check(known, exo_pattern='full', domain_nam='x',
                 exo_ignore_variables=['domain_nam'])[0] == []
    assert closest('domain_controller', known.role_names('domain'), 0.8) == (None, 0.0)


def test_names_of_a_shared_inventory_that_only_share_a_roles_prefix_are_no_typos(known):
    """What follows the prefix is compared, with the role's options only: an AD inventory's
    domain_fqdn is not a typo of domain_dns, domain_realm not one of the output domain_result."""
    names = dict((name, 'x') for name in (
        'domain_fqdn', 'domain_admin', 'domain_mode', 'domain_dns_servers', 'domain_realm',
        'smtp_test_from', 'dns_migration_zone'))
    assert check(known, exo_pattern='full', **names) == ([], [])
    problems, dummy = check(known, exo_pattern='full', domain_nam='x', smtp_test_sendr='x')
    assert [p.split(';')[1].split('?')[0] for p in problems] == [
        ' did you mean domain_name', ' did you mean smtp_test_sender']


@pytest.mark.parametrize('text', [
    '{key_secret: s3cr3t-tsig-value, server: 127.0.0.1}',
    'key_secret=s3cr3t-tsig-value server=127.0.0.1',
    '{"key_secret": "s3cr3t-tsig-value", "server": "127.0.0.1"}',
])
def test_a_dict_variable_written_as_text_is_refused_without_showing_it(known, text):
    problems, dummy = check(known, exo_pattern='full', exo_dns=text)
    assert problems == ['exo_dns must be a dict (a YAML mapping), got text (not shown: it may '
                        'hold secrets); write it as a mapping, without quotes']


def test_a_known_role_variable_the_playbook_sets_itself_is_a_warning(known):
    problems, warnings = check(known, exo_pattern='full', dns_migration_primary='exo',
                               legacy_forwarding_domains=['x.test'])
    assert problems == []
    assert warnings == [
        'dns_migration_primary is set for contoso.test, but the playbook migrate sets it itself '
        'from exo_primary: set exo_primary instead, so this value is not used',
        'legacy_forwarding_domains is set for contoso.test, but the playbook migrate sets it '
        'itself, so this value is not used']
    assert check(known, 'check', dns_migration_primary='exo') == ([], [])


def test_dict_keys_and_values(known):
    problems, dummy = check(known, exo_pattern='full',
                            exo_dns={'sever': 'ns1', 'port': 53},
                            exo_protocols={'smtp-auth': 'enabled', 'pop': 'maybe'},
                            exo_smtp_test={'to': ['a@b.test'], 'prot': 25},
                            exo_dkim={'anything': 'selector1-x._domainkey.y.onmicrosoft.com'})
    assert problems == [
        'exo_dns has an unknown key sever; did you mean server?',
        'exo_protocols.pop must be true or false, got \'maybe\'',
        'exo_protocols has an unknown key smtp-auth; did you mean smtp_auth?',
        'Set exo_smtp_test.sender for contoso.test',
        'exo_smtp_test has an unknown key prot; did you mean port?']


@pytest.mark.parametrize('name, value, message', [
    ('exo_spf', 'replce', 'Set exo_spf (merge, replace or keep) for contoso.test, not replce'),
    ('exo_ttl', -1, 'exo_ttl must be from 0 to 2147483647 seconds, got -1'),
    ('exo_ttl', 'soon', "exo_ttl must be a whole number, got 'soon'"),
    ('exo_mx_preference', 70000, 'exo_mx_preference must be from 0 to 65535, got 70000'),
    ('exo_legacy_mx', [{'host': 'mx.test', 'preference': 70000}],
     'exo_legacy_mx[0].preference must be from 0 to 65535, got 70000'),
    ('exo_wait_timeout', 'nan', 'exo_wait_timeout must be a finite number from 0 to 86400 seconds, '
                                'got nan'),
    ('exo_use_tenant', 'perhaps', "exo_use_tenant must be true or false, got 'perhaps'"),
    ('exo_mailboxes', {'a': 1}, "exo_mailboxes must be a list of text, got {'a': 1}"),
    ('exo_primary', 'exo', None), ('exo_ttl', '300', None), ('exo_spf_all', None, None),
])
def test_values_are_checked_against_their_source(known, name, value, message):
    spec, limits = known.source(name)
    assert value_problem(name, value, spec, limits, 'contoso.test') == message


def test_secrets_are_never_shown(known):
    """Secrets are text options, and text takes any value: only other keys can fail, and the
    problems show no value but theirs."""
    problems, dummy = check(known, 'smtp_test',
                            exo_smtp_test={'sender': 'a@b.test', 'password': 's3cr3t-value',
                                           'port': 'smtp'},
                            exo_m365={'client_secret': 's3cr3t-value', 'tenant': 't'})
    assert problems == ["exo_m365 has an unknown key tenant; did you mean tenant_id?",
                        "exo_smtp_test.port must be a whole number, got 'smtp'"]
