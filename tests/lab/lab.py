"""The lab that make demo, make lab and the README examples' test share.

A real BIND 9 serving the lab domains' zones (a TSIG key may update them), the Microsoft 365
emulator over HTTPS with its SMTP listeners (mailboxes in every lab domain, one app with the roles
the playbooks need, a client secret and a certificate credential) and a private real Postfix as
the old mail server of every lab domain, which relays other mail to the emulator's inbound MX::

    lab = Lab(DOMAINS, workdir)
    lab.start()
    inventory = lab.write_inventory(directory)  # and group_vars/all/lab-secrets.yml (mode 0600)
    ...  # ansible-playbook exchangeonline.mail.migrate -i inventory
    lab.stop()

``start()`` stops what it started when a later part fails. Postfix needs a work directory that
its users can reach, so it gets one under /tmp (``lab_workdir``); the rest lives in ``workdir``.
"""

import os
import secrets
import shlex
import shutil
import tempfile

import yaml
from cryptography.hazmat.primitives import serialization

from tests.lab.bind import BindServer, zone_template
from tests.lab.m365.emulator import M365Emulator, make_client_certificate
from tests.lab.postfix import PostfixServer, lab_workdir

DOMAINS = (('contoso.test', 'full'), ('fabrikam.test', 'partial'),
           ('northwind.test', 'legacy_forward'))
USERS = ('alice', 'bob')
ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'Exchange.ManageAsApp', 'SMTP.SendAsApp',
         'Mail.ReadBasic.All')
LEGACY_HOST = 'legacy-mail.lab'  # the old Postfix's inventory host


def write_private(path, text):
    """Write ``text`` to a new file only its owner may read (mode 0600)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
        f.write(text)


class Lab:
    """BIND, the Microsoft 365 emulator with SMTP and Postfix for ``domains`` [(domain, pattern)],
    with the mailboxes ``users`` @ every domain."""

    def __init__(self, domains=DOMAINS, workdir=None, users=USERS, key_name='exo-lab-key'):
        self.domains = [tuple(d) for d in domains]
        self.users = tuple(users)
        self.workdir = os.path.abspath(workdir or tempfile.mkdtemp(prefix='exo-lab-'))
        template = zone_template('contoso.test.zone')
        self.bind = BindServer(dict((d, template.replace('contoso.test', d))
                                    for d, dummy in self.domains),
                               workdir=os.path.join(self.workdir, 'bind'), key_name=key_name)
        self.emu = M365Emulator(workdir=os.path.join(self.workdir, 'm365'))
        self.postfix = None
        self.app = None
        # The app's certificate credential: a PEM file with the certificate and its key,
        # encrypted with certificate_password.
        self.certificate_path = os.path.join(self.workdir, 'm365', 'app-certificate.pem')
        self.certificate_password = None

    @property
    def mailboxes(self):
        return ['%s@%s' % (user, domain) for domain, dummy in self.domains for user in self.users]

    # -- life cycle ----------------------------------------------------------------------------
    def start(self, on_process=None):
        """Start the three servers; ``on_process()`` is called after each one that runs as a
        process of its own (named, Postfix), so that a caller can record it at once."""
        try:
            self.bind.start()
            if on_process:
                on_process()
            self.emu.dns_server = ('127.0.0.1', self.bind.port)
            self.emu.start()
            self.emu.start_smtp()
            for address in self.mailboxes:
                self.emu.add_user(address)
            cert_pem, key_pem, dummy = make_client_certificate()
            self.app = self.emu.add_app(certificate_pem=cert_pem, roles=ROLES)
            self.certificate_password = secrets.token_urlsafe(16)
            key = serialization.load_pem_private_key(key_pem.encode(), password=None)
            write_private(self.certificate_path, cert_pem + key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(self.certificate_password.encode()))
                .decode())
            self.postfix = PostfixServer(
                workdir=lab_workdir('exo-lab-postfix-'),
                mydomains=[d for d, dummy in self.domains], mailboxes=self.mailboxes,
                relay=('127.0.0.1', self.emu.smtp.inbound_port),
                tls_cert=self.emu.ca.issue_cert('127.0.0.1', 'localhost', 'mail.lab.test'))
            self.postfix.start()
            if on_process:
                on_process()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.postfix is not None:
            self.postfix.stop()
            shutil.rmtree(self.postfix.workdir, ignore_errors=True)
            self.postfix = None
        self.emu.stop()
        self.bind.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what runs -----------------------------------------------------------------------------
    def processes(self):
        """The processes of their own that the lab runs: named, and Postfix's master (whose
        children carry MAIL_CONFIG=config_dir in their environment)."""
        found = []
        if self.bind.proc is not None:
            found.append({'name': 'named', 'pid': self.bind.proc.pid,
                          'pid_file': os.path.join(self.bind.workdir, 'named.pid')})
        if self.postfix is not None and self.postfix.master_pid():
            found.append({'name': 'postfix', 'pid': self.postfix.master_pid(),
                          'pid_file': os.path.join(self.postfix.queue_dir, 'pid', 'master.pid'),
                          'config_dir': self.postfix.config_dir,
                          'workdir': self.postfix.workdir})
        return found

    def ports(self):
        """{what: TCP port on 127.0.0.1} of every listener (BIND also answers on UDP)."""
        smtp = self.emu.smtp
        return {'dns': self.bind.port, 'm365 https': self.emu.port,
                'smtp submission': smtp.port, 'smtp implicit tls': smtp.implicit_port,
                'smtp wrong name': smtp.wrong_name_port, 'inbound mx': smtp.inbound_port,
                'old postfix': self.postfix.port}

    def describe(self):
        """What runs where, for people."""
        return '\n'.join([
            'The lab:',
            '  BIND 9            127.0.0.1 port %d, TSIG key %s'
            % (self.bind.port, self.bind.key_name),
            '  Microsoft 365     %s (tenant %s), SMTP submission 127.0.0.1:%d'
            % (self.emu.url, self.emu.tenant_domain, self.emu.smtp.port),
            '  old mail server   Postfix on 127.0.0.1:%d (config %s)'
            % (self.postfix.port, self.postfix.config_dir),
            '  domains           %s' % ', '.join('%s (%s)' % d for d in self.domains),
            '  mailboxes         %s, each with a mailbox in Exchange Online and on the old '
            'server' % ', '.join(u + '@<domain>' for u in self.users)])

    # -- the inventory of a user ---------------------------------------------------------------
    def m365_options(self, token_dir):
        """The exchangeonline.mail.m365 options of the lab app (secrets by variable name)."""
        return {'tenant_id': self.emu.tenant_id, 'client_id': '{{ lab_client_id }}',
                'client_secret': '{{ lab_client_secret }}', 'authority_host': self.emu.url,
                'graph_endpoint': self.emu.url, 'exo_endpoint': self.emu.url,
                'ca_path': self.emu.ca_path,
                'token_cache_path': os.path.join(token_dir, 'tokens-{{ inventory_hostname }}.json')}

    def dns_options(self):
        """The exchangeonline.mail.dns options of the lab BIND (the secret by variable name)."""
        return dict(self.bind.module_args(), key_secret='{{ lab_tsig_secret }}')

    def secret_vars(self):
        return {'lab_client_id': self.app['client_id'], 'lab_client_secret': self.app['secret'],
                'lab_tsig_secret': self.bind.key_secret}

    def write_inventory(self, directory, header='the lab'):
        """inventory.yml for the collection's playbooks, as a user writes one (one host per
        domain, the old Postfix in exo_legacy_servers), with the secrets in
        group_vars/all/lab-secrets.yml beside it (mode 0600). Returns the inventory's path."""
        directory = os.path.abspath(directory)
        hosts = {}
        for domain, pattern in self.domains:
            hosts[domain] = {
                'exo_pattern': pattern,
                'exo_mailboxes': ['alice@' + domain],
                'exo_protocols': {'pop': True, 'imap': True, 'smtp_auth': 'enabled'},
                'exo_smtp_test': {'sender': 'alice@' + domain, 'to': ['bob@' + domain],
                                  'host': '127.0.0.1', 'port': self.emu.smtp.port,
                                  'delivery_timeout': 30}}
        data = {'all': {
            'vars': {'ansible_python_interpreter': '{{ ansible_playbook_python }}',
                     'exo_m365': self.m365_options(directory),
                     'exo_backup_dir': os.path.join(directory, 'backups'),
                     'exo_report_dir': os.path.join(directory, 'report')},
            'children': {
                'mail_domains': {'hosts': hosts, 'vars': {
                    'ansible_connection': 'local', 'exo_dns': self.dns_options(),
                    'exo_wait_timeout': 30, 'exo_check_smtp': True}},
                'exo_legacy_servers': {'hosts': {LEGACY_HOST: {
                    'ansible_connection': 'local',
                    'legacy_forwarding_postfix_config_dir': self.postfix.config_dir}}}}}}
        group_vars = os.path.join(directory, 'group_vars', 'all')
        os.makedirs(group_vars, mode=0o700, exist_ok=True)
        write_private(os.path.join(group_vars, 'lab-secrets.yml'),
                      '# The secrets of %s (its app and TSIG key). With a real tenant, keep them '
                      'in a vault:\n# ansible-vault create group_vars/all/vault.yml\n%s'
                      % (header, yaml.safe_dump(self.secret_vars(), sort_keys=False)))
        path = os.path.join(directory, 'inventory.yml')
        with open(path, 'w', encoding='utf-8') as f:
            f.write('# Written for %s; its secrets are in group_vars/all/lab-secrets.yml.\n'
                    % header)
            yaml.safe_dump(data, f, sort_keys=False)
        return path


# The playbooks a user runs against a lab inventory, in the order make lab prints them.
PLAYBOOKS = (('migrate', '--diff', 'move the domains: tenant, DNS, mailboxes, old server, '
                                   'test-send'),
             ('check', '', 'read-only check; JUnit and Markdown reports in exo_report_dir'),
             ('smtp_test', '', 'one more test-send, with delivery proof'),
             ('rollback', '', 'undo the DNS changes from the backups'))


def commands(inventory, collections_path, bin_dir):
    """The shell lines that run the collection's playbooks against ``inventory``: the
    environment they need, then one line per playbook (each with a comment)."""
    lines = ['export ANSIBLE_COLLECTIONS_PATH=%s' % shlex.quote(collections_path)]
    playbook = shlex.quote(os.path.join(bin_dir, 'ansible-playbook'))
    for name, extra, what in PLAYBOOKS:
        line = '%s exchangeonline.mail.%s -i %s' % (playbook, name, shlex.quote(inventory))
        lines.append('%s%s   # %s' % (line, ' ' + extra if extra else '', what))
    return lines
