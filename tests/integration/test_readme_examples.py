"""The README's examples are code that runs: every YAML block of README.md and README.ja.md carries
a marker, on the line before it, that says how this test uses it, and the runnable ones run
against the lab (tests/lab/lab.py), so an example that stops working fails the tests.

    <!-- example: inventory -->      an inventory file, named by its first line (# inventory.yml);
                                     the blocks below name it
    <!-- example: commands NAME -->  (a sh block) the commands, in order, next to inventory NAME
    <!-- example: playbook NAME -->  a playbook, run with inventory NAME
    <!-- example: ci github -->      a GitHub Actions workflow, and
    <!-- example: ci gitlab -->      a GitLab CI job: its steps in order, after a migration with
                                     the README's inventory.yml, as the CI system runs them
    <!-- example: tasks -->          tasks, run in a play on localhost with module_defaults for the
                                     two action groups
    <!-- example: fragment -->       a part of a larger file, not run: parsed as YAML, and its
                                     variables must be ones the playbooks document
    <!-- example: provider NAME -->  mail_dns tasks for a hosted DNS provider (powerdns, route53),
                                     run against the lab's own (a real PowerDNS, moto behind the
                                     Route 53 front) with its connection options put in

A YAML block without a marker fails the tests, so a new example cannot slip past. The README
names real things (contoso.com, ns1.contoso.com, vault variables, CI secrets): the tables below
say what stands for each of them in the lab, which options the lab needs besides (its ports, its
endpoints and CA), and what this machine does instead of what it cannot do (answer a vault
password prompt, install from PyPI, run a CI action). Nothing else of an example is changed.
An example that fails for a known reason is in KNOWN_FAILURES (a strict xfail).
"""

import contextlib
import copy
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest
import yaml

from tests.lab.ansible_runner import collection_root
from tests.lab.lab import Lab

COLLECTION = os.path.join(collection_root(), 'exchangeonline', 'mail')
READMES = ('README.md', 'README.ja.md')
BIN = os.path.dirname(sys.executable)
YAML_LANGS = ('yaml', 'yml')
MARKER = re.compile(r'^\s*<!-- example: (.+?) -->\s*$')
KINDS = {'inventory': 0, 'commands': 1, 'playbook': 1, 'ci': 1, 'tasks': 0, 'fragment': 0,
         'provider': 1}

# -- what stands for what -------------------------------------------------------------------------
# The lab's domains and mailboxes (in every domain).
DOMAINS = {'contoso.com': 'contoso.test', 'fabrikam.com': 'fabrikam.test',
           'tailspintoys.com': 'tailspintoys.test', 'northwind.com': 'northwind.test'}
USERS = ('scanner', 'helpdesk', 'adele.vance', 'alex.wilber', 'alice')
KEY_NAME = 'exo-migration'  # the README's TSIG key name is the lab BIND's


def names(lab, tmp):
    """The README's names and paths -> the lab's, replaced as text in every block."""
    table = dict(DOMAINS)
    table.update({
        'ns1.contoso.com': '127.0.0.1',   # the zones' primary: the lab BIND (port: lab_options)
        'ns1.fabrikam.com': '127.0.0.1',  # "another primary": the same lab BIND
        '/etc/ansible/exo/exo-migration.key': lab.bind.key_file,  # tsig-keygen's file
        '/etc/ansible/exo/fabrikam.key': lab.bind.key_file,
        '/etc/ansible/exo/exo-migration.pem': lab.certificate_path,  # the app's certificate
        '/var/backups/': os.path.join(tmp, 'var-backups') + '/',
        '/var/tmp/': os.path.join(tmp, 'var-tmp') + '/',
    })
    return table


def vault(lab):
    """group_vars/all/vault.yml beside inventory.yml (encrypted with ansible-vault)."""
    return {'vault_exo_tenant_id': lab.emu.tenant_id,
            'vault_exo_client_id': lab.app['client_id'],
            'vault_exo_cert_password': lab.certificate_password,
            'vault_tsig_secret': lab.bind.key_secret}


def ci_secrets(lab, reader):
    """The CI system's secrets: the read-only app of the README's Permissions section."""
    return {'AZURE_TENANT_ID': lab.emu.tenant_id, 'AZURE_CLIENT_ID': reader['client_id'],
            'AZURE_CLIENT_SECRET': reader['secret']}


READER_ROLES = ('Domain.Read.All', 'User.Read.All', 'Exchange.ManageAsApp')


def lab_options(lab):
    """What the lab needs besides, added to the dicts under these keys: Microsoft's endpoints
    and port 53 are the defaults there, the lab's ports and endpoints here."""
    m365 = {'authority_host': lab.emu.url, 'graph_endpoint': lab.emu.url,
            'exo_endpoint': lab.emu.url, 'ca_path': lab.emu.ca_path}
    dns = {'port': lab.bind.port}
    return {'exo_dns': dns, 'group/exchangeonline.mail.dns': dns,
            'exo_m365': m365, 'group/exchangeonline.mail.m365': m365,
            'exo_smtp_test': {'host': '127.0.0.1', 'port': lab.emu.smtp.port}}


def old_server(lab):
    """A host of exo_legacy_servers is this machine, with its lab Postfix (the test runs as
    root, and the Python that runs ansible-playbook is the machine's)."""
    return {'ansible_connection': 'local', 'ansible_become': False,
            'ansible_python_interpreter': '{{ ansible_playbook_python }}',
            'legacy_forwarding_postfix_config_dir': lab.postfix.config_dir}


def playbook_vars(lab):
    """The variables a playbook example takes from the user's own inventory."""
    return {'dns_primary': '127.0.0.1', 'pop_mailboxes': ['alice@{{ inventory_hostname }}'],
            'smtp_test_host': '127.0.0.1', 'smtp_test_port': lab.emu.smtp.port}


# Commands: what the test machine does instead. Nothing is downloaded or installed into the
# test's virtualenv (it has the packages): pip only proves that the requirements are met.
COMMANDS = {'--ask-vault-pass': '--vault-password-file vault-password',
            'python -m pip install': 'python -m pip install --dry-run --no-index'}

# Examples that fail for a known reason, until it is fixed, as 'README.md: <marker>': reason
# (a strict xfail: once an example passes, its line here must go).
KNOWN_FAILURES = {}


# -- the README's blocks --------------------------------------------------------------------------
class Block:
    def __init__(self, readme, line, lang, marker, text):
        self.readme, self.line, self.lang, self.marker, self.text = (
            readme, line, lang, marker, text)

    @property
    def kind(self):
        return self.marker.split()[0] if self.marker else None

    @property
    def args(self):
        return self.marker.split()[1:] if self.marker else []

    @property
    def name(self):
        """An inventory's file name, from its first line (# inventory.yml)."""
        first = self.text.splitlines()[0]
        return first[1:].strip() if first.startswith('#') else None

    @property
    def id(self):
        """README: marker, and for an inventory its name, for a fragment its first line."""
        name = {'inventory': self.name, 'fragment': self.text.split(':')[0]}.get(self.kind)
        return '%s: %s%s' % (self.readme, self.marker, ' ' + name if name else '')

    def mapped(self, table):
        return replace_names(self.text, table)


def replace_names(text, table):
    """``text`` with every key of ``table`` replaced by its value, the longest keys first."""
    for key in sorted(table, key=len, reverse=True):
        text = text.replace(key, table[key])
    return text


def blocks(readme):
    """Every fenced block of a README, with the marker on the line before it."""
    with open(os.path.join(COLLECTION, readme), encoding='utf-8') as f:
        return blocks_of(readme, f.read())


def blocks_of(readme, text):
    lines = text.splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = re.match(r'^(\s*)```(\S*)\s*$', lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == '```')
        marker = MARKER.match(lines[i - 1]) if i else None
        found.append(Block(readme, i + 1, fence.group(2), marker and marker.group(1),
                           textwrap.dedent('\n'.join(lines[i + 1:end])) + '\n'))
        i = end + 1
    return found


def examples(kind):
    params = []
    for readme in READMES:
        for block in blocks(readme):
            if block.kind == kind:
                reason = KNOWN_FAILURES.get(block.id)
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                params.append(pytest.param(block, id=block.id, marks=marks))
    return params


def marker_problems(found):
    """What is wrong with the markers of one README's blocks: a YAML block without one, an
    unknown kind, a name that is not there, an inventory that no example runs."""
    problems = []
    inventories = [b.name for b in found if b.kind == 'inventory']
    runs = [b for b in found if b.kind in ('commands', 'playbook', 'ci')]
    for block in found:
        where = '%s line %d' % (block.readme, block.line)
        if block.marker is None:
            if block.lang in YAML_LANGS:
                problems.append('%s: a YAML block without a marker; put one of '
                                '<!-- example: %s --> on the line before it'
                                % (where, ' | '.join(KINDS)))
            continue
        if block.kind not in KINDS or len(block.args) != KINDS[block.kind]:
            problems.append('%s: unknown marker %r' % (where, block.marker))
            continue
        try:
            data = yaml.safe_load(block.text) if block.lang in YAML_LANGS else None
        except yaml.YAMLError as err:
            problems.append('%s: not YAML: %s' % (where, err))
            continue
        if block.kind == 'inventory':
            if not (block.name and isinstance(data, dict) and 'all' in data):
                problems.append('%s: an inventory starts with # <file name> and has all:'
                                % where)
            elif not any(block.name in b.args or '-i %s' % block.name in b.text for b in runs):
                problems.append('%s: no example runs inventory %s' % (where, block.name))
        if block.kind in ('commands', 'playbook') and block.args[0] not in inventories:
            problems.append('%s: no inventory %s in %s' % (where, block.args[0], block.readme))
        if block.kind == 'ci' and block.args[0] not in CI_RUNNERS:
            problems.append('%s: no CI runner %s' % (where, block.args[0]))
    return problems


def test_every_yaml_block_is_marked():
    """Each YAML block says how this test uses it; the names its marker gives exist; every
    inventory is run by an example; the ids are unique and every known failure is one."""
    found = [block for readme in READMES for block in blocks(readme)]
    assert [b for b in found if b.lang in YAML_LANGS]
    assert [p for readme in READMES for p in marker_problems(blocks(readme))] == []
    ids = [block.id for block in found if block.marker]
    assert len(ids) == len(set(ids)), ids
    assert set(KNOWN_FAILURES) <= set(ids), set(KNOWN_FAILURES) - set(ids)


def test_a_yaml_block_without_a_marker_fails():
    """The check above fails for a new, unmarked example, and for an inventory nothing runs."""
    text = textwrap.dedent("""\
        Some text.

        ```yaml
        exo_pattern: full
        ```

        <!-- example: inventory -->
        ```yml
        # other.yml
        all: {}
        ```

        ```sh
        make lab
        ```
        """)
    assert marker_problems(blocks_of('NEW.md', text)) == [
        'NEW.md line 3: a YAML block without a marker; put one of <!-- example: %s --> on the '
        'line before it' % ' | '.join(KINDS),
        'NEW.md line 8: no example runs inventory other.yml']


@pytest.mark.parametrize('block', examples('fragment'))
def test_fragment_is_yaml_of_documented_variables(block):
    documented = set()
    for name in os.listdir(os.path.join(COLLECTION, 'playbooks')):
        if name.endswith('.yml'):
            with open(os.path.join(COLLECTION, 'playbooks', name), encoding='utf-8') as f:
                documented.update(re.findall(r'^#\s+(exo_\w+)', f.read(), re.M))
    data = yaml.safe_load(block.text)
    assert isinstance(data, dict) and data
    assert set(data) <= documented, set(data) - documented


# -- the lab and the user's directory -------------------------------------------------------------
@pytest.fixture
def lab(tmp_path):
    with Lab([(d, 'full') for d in DOMAINS.values()], workdir=str(tmp_path / 'lab'),
             users=USERS, key_name=KEY_NAME) as running:
        yield running


def add_lab_options(data, options):
    """Add the lab's options to every dict under a key of ``options``, anywhere in data."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in options and isinstance(value, dict):
                value.update(options[key])
            else:
                add_lab_options(value, options)
    elif isinstance(data, list):
        for item in data:
            add_lab_options(item, options)


class Workspace:
    """A user's directory: the README's inventories under their names (with the lab's names and
    options), the vault beside inventory.yml, and the environment to run commands in."""

    def __init__(self, readme, lab, tmp_path):
        self.lab, self.path = lab, str(tmp_path / 'work')
        self.table = names(lab, str(tmp_path))
        self.env = dict(os.environ, PATH=BIN + os.pathsep + os.environ['PATH'],
                        ANSIBLE_COLLECTIONS_PATH=os.path.dirname(collection_root()))
        self.env.pop('PYTHONPATH', None)
        os.makedirs(self.path)
        for stand_in in ('var-backups', 'var-tmp'):  # /var/backups and /var/tmp are there
            os.makedirs(os.path.join(str(tmp_path), stand_in))
        for block in blocks(readme):
            if block.kind == 'inventory':
                self.write_inventory(block)
        with open(os.path.join(self.path, 'vault-password'), 'w', encoding='utf-8') as f:
            f.write('readme-examples-vault-password\n')
        group_vars = os.path.join(self.path, 'group_vars', 'all')
        os.makedirs(group_vars)
        with open(os.path.join(group_vars, 'vault.yml'), 'w', encoding='utf-8') as f:
            yaml.safe_dump(vault(lab), f)
        self.run('ansible-vault encrypt --vault-password-file vault-password '
                 'group_vars/all/vault.yml')

    def write_inventory(self, block):
        data = yaml.safe_load(block.mapped(self.table))
        add_lab_options(data, lab_options(self.lab))
        top = data['all'].setdefault('vars', {})
        top.setdefault('exo_m365', dict(lab_options(self.lab)['exo_m365']))
        old = data['all'].get('children', {}).get('exo_legacy_servers', {}).get('hosts', {})
        for host in old.values():
            host.update(old_server(self.lab))
        path = os.path.join(self.path, block.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            yaml.safe_dump(data, f, sort_keys=False)

    def command(self, line):
        line = replace_names(line, self.table)
        for key, value in COMMANDS.items():
            line = line.replace(key, value)
        return line

    def run(self, line, env=None):
        """One shell line of an example, in this directory (bash -e, pipefail)."""
        proc = subprocess.run(['bash', '-e', '-o', 'pipefail', '-c', self.command(line)],
                              cwd=self.path, env=dict(self.env, **(env or {})),
                              capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, '%s\n-> exit %d\n%s' % (
            self.command(line), proc.returncode, (proc.stdout + proc.stderr)[-6000:])
        return proc.stdout


def commands_of(block):
    return [line for line in block.text.splitlines() if line.strip()
            and not line.lstrip().startswith('#')]


def junit_ok(path):
    suites = ET.parse(path).getroot()
    assert suites.get('failures') == '0' and suites.get('errors') == '0', ET.tostring(suites)
    assert int(suites.get('tests')) > 5
    return suites


def served(lab, name, rdtype):
    found = lab.bind.rrset(name, rdtype)
    return sorted(found[1]) if found else []


# -- the examples that run ------------------------------------------------------------------------
@pytest.mark.parametrize('block', examples('commands'))
def test_commands_with_the_inventory(block, lab, tmp_path):
    """The commands of a migration run, in order, next to the README's inventory.yml."""
    work = Workspace(block.readme, lab, tmp_path)
    outputs = [work.run(line) for line in commands_of(block)]
    assert any(' --check' in line for line in commands_of(block))
    # What the runs left: every pattern's records, the report of the check (exo-report)...
    assert served(lab, 'autodiscover.northwind.test', 'CNAME') == ['autodiscover.outlook.com.']
    assert served(lab, 'northwind.test', 'MX') == ['10 mail.northwind.test.']
    assert served(lab, 'fabrikam.test', 'MX') == sorted([
        '10 mail.fabrikam.test.', '20 %s.' % lab.emu.mx_host('fabrikam.test')])
    assert served(lab, 'tailspintoys.test', 'MX') == sorted([
        '0 %s.' % lab.emu.mx_host('tailspintoys.test'), '10 mail.tailspintoys.test.'])
    junit_ok(os.path.join(work.path, 'exo-report', 'exo-check.xml'))
    # ... the old server forwards northwind's accounts, and the test-send arrived.
    with open(os.path.join(lab.postfix.config_dir, 'exo_forwarding'), encoding='utf-8') as f:
        assert 'scanner@northwind.test' in f.read()
    assert any('scanner@contoso.test -> ' in out and 'delivered in' in out for out in outputs)
    rollback = [line for line in commands_of(block) if 'mail.rollback' in line]
    if rollback:  # ... and the rollback gave the domain its old records back
        assert '--limit contoso.com' in rollback[-1]
        assert served(lab, 'contoso.test', 'MX') == ['10 mail.contoso.test.']
    else:
        assert served(lab, 'contoso.test', 'MX') == ['0 %s.' % lab.emu.mx_host('contoso.test')]


@pytest.mark.parametrize('block', examples('playbook'))
def test_playbook_with_the_inventory(block, lab, tmp_path):
    """The roles in an existing playbook, with the README's inventory and the user's own
    variables (playbook_vars)."""
    work = Workspace(block.readme, lab, tmp_path)
    data = yaml.safe_load(block.mapped(work.table))
    add_lab_options(data, lab_options(lab))
    with open(os.path.join(work.path, 'playbook.yml'), 'w', encoding='utf-8') as f:
        yaml.safe_dump(data, f, sort_keys=False)
    with open(os.path.join(work.path, 'my-vars.yml'), 'w', encoding='utf-8') as f:
        yaml.safe_dump(playbook_vars(lab), f)
    out = work.run('ansible-playbook playbook.yml -i %s --ask-vault-pass -e @my-vars.yml'
                   % shlex.quote(block.args[0]))
    assert [play['hosts'] for play in data] == ['mail_domains']
    for domain in DOMAINS.values():
        assert served(lab, domain, 'MX') == sorted([
            '0 %s.' % lab.emu.mx_host(domain), '10 mail.%s.' % domain])
        assert served(lab, '_dmarc.' + domain, 'TXT') == [
            '"v=DMARC1; p=none; rua=mailto:dmarc@%s"' % domain]
        cas = lab.emu.cas_mailbox('scanner@' + domain)
        assert cas['PopEnabled'] and cas['ImapEnabled']
        assert cas['SmtpClientAuthenticationDisabled'] is False
        assert lab.emu.cas_mailbox('alice@' + domain)['PopEnabled']
    assert out.count('delivered: True') == len(DOMAINS), out[-3000:]


@pytest.mark.parametrize('block', examples('tasks'))
def test_tasks_in_a_play(block, lab, tmp_path):
    """The modules used directly: the tasks in a play whose module_defaults connect them."""
    work = Workspace(block.readme, lab, tmp_path)
    defaults = lab_options(lab)
    play = [{'name': 'The modules directly', 'hosts': 'localhost', 'connection': 'local',
             'gather_facts': False, 'module_defaults': {
                 'group/exchangeonline.mail.dns': lab.bind.module_args(),
                 'group/exchangeonline.mail.m365': dict(
                     defaults['exo_m365'], tenant_id=lab.emu.tenant_id,
                     client_id=lab.app['client_id'], client_secret=lab.app['secret'])},
             'tasks': yaml.safe_load(block.mapped(work.table))}]
    path = str(tmp_path / 'tasks-play.yml')  # not beside the vault: these tasks need none
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(play, f, sort_keys=False)
    work.run('ansible-playbook %s' % shlex.quote(path))
    assert lab.emu.domains['contoso.test']['isVerified'] is True
    # the host the tenant gives a domain added today (MC1048624), as the README's comment says
    assert lab.emu.mx_host('contoso.test').endswith('-v1.mx.microsoft')
    assert served(lab, 'contoso.test', 'MX') == ['0 %s.' % lab.emu.mx_host('contoso.test')]
    assert os.path.exists(os.path.join(str(tmp_path), 'var-backups', 'mail_dns',
                                       'contoso.test.json'))


@pytest.mark.parametrize('block', examples('provider'))
def test_hosted_provider_tasks(block, tmp_path):
    """A hosted provider's example on the lab's provider: the connection options (the API's
    address and key or token, the AWS endpoint and keys, the Azure subscription and app) are the
    lab's; everything else as written."""
    from tests.integration.conftest import lab_zones
    from tests.integration.test_mail_dns import EXPECTED, served
    from tests.lab.ansible_runner import run_playbook
    from tests.lab.azure_dns import AzureDnsLab
    from tests.lab.cloudflare import CloudflareLab
    from tests.lab.powerdns import PowerDnsServer
    from tests.lab.route53 import Route53Lab
    kind = block.args[0]
    server = {'powerdns': PowerDnsServer, 'route53': Route53Lab, 'azure': AzureDnsLab,
              'cloudflare': CloudflareLab}[kind](lab_zones(), workdir=str(tmp_path / kind))
    server.start()
    try:
        tasks = yaml.safe_load(replace_names(block.text, {
            'contoso.com': 'contoso.test', '/var/backups': str(tmp_path / 'var-backups')}))
        patterns = []
        for task in tasks:
            args = task['exchangeonline.mail.mail_dns']
            assert args['provider'] == kind
            args.update(server.module_args())
            patterns.append(args['pattern'])
        run = run_playbook(tasks, workdir=str(tmp_path / 'ansible'))
        assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert served(server) == EXPECTED[patterns[-1]]
        assert os.path.exists(str(tmp_path / 'var-backups' / 'mail_dns' / 'contoso.test.json'))
    finally:
        server.stop()


# -- CI ------------------------------------------------------------------------------------------
def github(job_file, work, secrets, steps_env):
    """Run a GitHub Actions workflow's jobs as the runner does: each step in order, a step with
    ``if: always()`` also after a failed one; ``uses:`` steps by the stand-ins below."""
    failed = []
    for name, job in job_file['jobs'].items():
        for step in job['steps']:
            if failed and step.get('if') != 'always()':
                continue
            assert step.get('if') in (None, 'always()'), step
            env = {k: re.sub(r'\$\{\{ secrets\.(\w+) \}\}', lambda m: secrets[m.group(1)], v)
                   for k, v in step.get('env', {}).items()}
            assert not any('${{' in v for v in env.values()), env
            try:
                if 'uses' in step:
                    action = step['uses'].split('@')[0]
                    assert action in GITHUB_ACTIONS, 'no stand-in for %s' % action
                    GITHUB_ACTIONS[action](step.get('with', {}), work)
                else:
                    work.run(step['run'], env=dict(steps_env, **env))
            except AssertionError as err:
                failed.append('%s / %s: %s' % (name, step.get('name', step.get('uses')), err))
    assert not failed, '\n'.join(failed)


def junit_report(options, work):
    for path in options['report_paths'].split(','):
        junit_ok(os.path.join(work.path, path.strip()))


def upload_artifact(options, work):
    assert os.listdir(os.path.join(work.path, options['path'])), options


GITHUB_ACTIONS = {
    'actions/checkout': lambda options, work: None,  # the workspace holds the repository
    'actions/setup-python': lambda options, work: None,  # this Python is first on PATH
    'mikepenz/action-junit-report': junit_report,
    'actions/upload-artifact': upload_artifact,
}


def gitlab(job_file, work, secrets, steps_env):
    """Run each GitLab CI job's script lines in order; then its artifacts must be there and its
    JUnit report free of failures."""
    for name, job in job_file.items():
        for line in job.get('before_script', []) + job['script']:
            work.run(line, env=dict(steps_env, **secrets))
        artifacts = job.get('artifacts', {})
        for path in artifacts.get('paths', []):
            assert os.path.exists(os.path.join(work.path, path)), (name, path)
        for path in [artifacts.get('reports', {}).get('junit')] if artifacts.get(
                'reports') else []:
            junit_ok(os.path.join(work.path, path))


CI_RUNNERS = {'github': github, 'gitlab': gitlab}


@pytest.fixture(scope='module')
def migrated(tmp_path_factory):
    """get(readme): a lab and a workspace after the README's migration run (its commands'
    migrate of every domain) and with the built collection in dist/; one for all CI jobs, which
    only read."""
    done = {}
    with contextlib.ExitStack() as stack:
        def get(readme):
            if readme not in done:
                tmp = tmp_path_factory.mktemp('migrated')
                lab = stack.enter_context(Lab([(d, 'full') for d in DOMAINS.values()],
                                              workdir=str(tmp / 'lab'), users=USERS,
                                              key_name=KEY_NAME))
                work = Workspace(readme, lab, tmp)
                commands, = [b for b in blocks(readme) if b.marker == 'commands inventory.yml']
                migrate, = [line for line in commands_of(commands) if 'mail.migrate' in line
                            and '--check' not in line and '--limit' not in line]
                work.run(migrate)
                work.run('ansible-galaxy collection build %s --output-path dist'
                         % shlex.quote(COLLECTION))
                done[readme] = (lab, work, tmp)
            return done[readme]
        yield get


@pytest.mark.parametrize('block', examples('ci'))
def test_ci_job_after_a_migration(block, migrated):
    """A CI job file: after the README's migration run, its steps in order in a checkout that
    holds the inventories and the built collection (dist/), with a home of its own (the job
    installs the collection there), the CI secrets of a read-only app, and ansible-playbook on
    PATH as after pip install."""
    lab, work, tmp = migrated(block.readme)
    job = copy.copy(work)
    job.env = dict(work.env)
    del job.env['ANSIBLE_COLLECTIONS_PATH']  # the job installs the collection itself
    home, summary = str(tmp / ('home-' + block.args[0])), str(tmp / 'step-summary.md')
    os.makedirs(home)
    shutil.rmtree(os.path.join(work.path, 'exo-report'), ignore_errors=True)
    steps_env = {'HOME': home, 'CI': 'true', 'GITHUB_STEP_SUMMARY': summary}
    reader = lab.emu.add_app(roles=READER_ROLES, display_name='exo-check (read-only)')
    CI_RUNNERS[block.args[0]](yaml.safe_load(block.text), job, ci_secrets(lab, reader),
                              steps_env)
    assert os.path.exists(os.path.join(home, '.ansible', 'collections', 'ansible_collections',
                                       'exchangeonline', 'mail', 'requirements.txt'))
    junit_ok(os.path.join(work.path, 'exo-report', 'exo-check.xml'))
    if block.args[0] == 'github':
        with open(summary, encoding='utf-8') as f:
            assert f.read().startswith('# Exchange Online mail check')
