"""A real Postfix on loopback as the lab's "legacy" mail server (Debian's postfix package).

Each instance is private: its own config_directory, queue_directory, data_directory and
maillog_file (postlogd) under one work directory, smtpd on 127.0.0.1 and a free port given in
master.cf, chroot off everywhere, its own syslog_name/multi_instance_name. Nothing of the system
Postfix is used or needed (no /etc/postfix/main.cf, nothing on port 25); several instances can run
at once. Run as root (Postfix's daemons drop to the package's ``postfix`` user; virtual(8) writes
the Maildirs as ``nobody``).

    from tests.lab.postfix import PostfixServer
    with PostfixServer(mydomains=('legacy.test',), mailboxes=('bob@legacy.test',),
                       relay=('127.0.0.1', emu.smtp.inbound_port),
                       tls_cert=emu.ca.issue_cert('127.0.0.1', 'localhost',
                                                  'mail.legacy.test')) as pf:
        smtplib.SMTP('127.0.0.1', pf.port)...          # STARTTLS offered (level "may")
        pf.mailbox('bob@legacy.test')                   # [email.message.EmailMessage, ...]
        pf.set_forwarding({'alice@legacy.test': 'alice@contosolab.mail.onmicrosoft.com'})
        pf.log_text(), pf.queue_ids_seen()              # the instance's maillog_file

Mail:
- ``mydomains``: this server is the final destination for them (virtual_mailbox_domains).
  Mailboxes (``mailboxes=``, ``add_mailbox()``) are Maildirs under ``<workdir>/mail/<domain>/
  <local part>/``; other recipients in these domains get smtpd's ``550 5.1.1 ... User unknown
  in virtual mailbox table``.
- ``virtual_alias_maps = hash:<config_dir>/exo_forwarding``: starts empty (postmapped). This is
  the map the collection's ``legacy_forwarding`` role writes, one line per account
  (``user@domain  routing@tenant.mail.onmicrosoft.com``); after ``postmap`` and ``reload()``
  mail for ``user@domain`` goes to the routing address instead of the local mailbox.
- Every other domain goes to ``relay`` (``relayhost = [host]:port``, an IPv4 address or a name
  in /etc/hosts; never DNS), e.g. the emulator's inbound MX listener; the smtp client uses
  STARTTLS when offered (level "may"). Without ``relay`` such mail bounces (5.4.4).
- No local(8) delivery at all: mydestination is empty and local_transport is ``error:``.
- Clients in ``mynetworks`` (127.0.0.0/8, [::1]/128) may relay; others only send to mydomains.

Life cycle: ``start()`` (``postfix -c DIR start``, which creates the queue with its owners and
checks the instance like ``postfix check``; waits until the port answers), ``reload()``,
``stop()`` (``postfix -c DIR stop``, then SIGKILL for the master from its pid file and for any
process left whose MAIL_CONFIG is this config_directory; also run at interpreter exit; safe to call
twice). A work directory made by the class (``workdir=None``) is removed by ``stop()`` unless
``keep=True``.

The work directory must be reachable by the ``postfix`` and ``nobody`` users: pytest's
``tmp_path`` (under a 0700 directory) is not; ``lab_workdir()`` makes a suitable one under /tmp.
"""

import atexit
import email
import email.policy
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid

POSTFIX = '/usr/sbin/postfix'
POSTMAP = '/usr/sbin/postmap'
POSTCONF = '/usr/sbin/postconf'

# master.cf of an instance: Debian's services, chroot "n" everywhere, smtpd on 127.0.0.1:PORT
# only (no port 25, no submission, no pickup from a world-writable maildrop being used).
MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
%(listen)s inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
# A private lab instance (tests/lab/postfix.py); not the system's Postfix.
compatibility_level = 3.6
multi_instance_name = %(name)s
syslog_name = %(name)s
config_directory = %(config_dir)s
queue_directory = %(queue_dir)s
data_directory = %(data_dir)s
meta_directory = %(meta_dir)s
mail_owner = postfix
setgid_group = postdrop
maillog_file = %(maillog)s
maillog_file_prefixes = %(workdir)s
myhostname = %(myhostname)s
mydomain = %(mydomain)s
myorigin = $mydomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8 [::1]/128
smtpd_banner = $myhostname ESMTP Postfix (lab)
biff = no
append_dot_mydomain = no
readme_directory = no

# No local(8) delivery to system users: nothing is local, local_transport refuses.
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled on this lab server

# The legacy server's own domains: virtual mailboxes as Maildirs under mail/.
virtual_mailbox_domains = %(mydomains)s
virtual_mailbox_base = %(mail_dir)s
virtual_mailbox_maps = hash:%(config_dir)s/vmailbox
virtual_minimum_uid = 100
virtual_uid_maps = static:%(uid)d
virtual_gid_maps = static:%(gid)d
# What the collection's legacy_forwarding role maintains (one line per account).
virtual_alias_maps = hash:%(config_dir)s/exo_forwarding

# Everything else goes to the relay (the M365 emulator's inbound MX listener), no DNS; without
# a relay it is refused (never looked up in DNS).
relayhost = %(relayhost)s
default_transport = %(default_transport)s
smtp_host_lookup = native
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtp_connect_timeout = 5s
smtp_helo_timeout = 10s

# STARTTLS offered, not required.
smtpd_tls_security_level = %(tls_level)s
smtpd_tls_chain_files = %(tls_chain)s
smtpd_tls_loglevel = 1
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination

# Fast retries: a lab, not the Internet.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 5s
delay_warning_time = 0h
"""


def lab_workdir(prefix='exo-postfix-'):
    """A fresh directory under /tmp that Postfix's users can reach (mode 0755)."""
    for base in (tempfile.gettempdir(), '/tmp'):
        if _reachable(base):
            path = tempfile.mkdtemp(prefix=prefix, dir=base)
            os.chmod(path, 0o755)
            return path
    raise RuntimeError('no directory reachable by the postfix user for a lab instance')


def _reachable(path):
    """True when every directory from / to ``path`` is searchable by others."""
    path = os.path.abspath(path)
    while True:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _alive(pid):
    """True for a running process; the master daemonizes, so once it exits it stays a zombie
    until init reaps it (up to a second or so here): a zombie counts as gone."""
    if not pid:
        return False
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as f:
            state = f.read().rpartition(')')[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ('Z', 'X')


def _split(address):
    local, dummy, domain = address.strip().rpartition('@')
    return local, domain.lower()


class PostfixError(RuntimeError):
    pass


class PostfixServer:
    """A private Postfix instance; see the module docstring."""

    def __init__(self, workdir=None, mydomains=('legacy.test',), mailboxes=(), relay=None,
                 tls_cert=None, myhostname='mail.legacy.test', keep=False):
        self.own_workdir = workdir is None
        self.workdir = os.path.abspath(workdir or lab_workdir())
        self.keep = keep
        self.mydomains = [d.strip().rstrip('.').lower() for d in mydomains]
        self.relay = tuple(relay) if relay else None
        self.tls_cert = tls_cert
        self.myhostname = myhostname
        self.name = 'postfix-lab-%s' % uuid.uuid4().hex[:8]
        self.port = None
        self.mailboxes = []
        for address in mailboxes:
            self._add_mailbox_entry(address)

    # -- paths ---------------------------------------------------------------------------------
    @property
    def config_dir(self):
        return os.path.join(self.workdir, 'etc')

    @property
    def queue_dir(self):
        return os.path.join(self.workdir, 'spool')

    @property
    def data_dir(self):
        return os.path.join(self.workdir, 'lib')

    @property
    def mail_dir(self):
        return os.path.join(self.workdir, 'mail')

    @property
    def maillog_file(self):
        return os.path.join(self.workdir, 'maillog')

    @property
    def forwarding_map(self):
        """The source file of ``virtual_alias_maps`` (``hash:`` + this; postmap it)."""
        return os.path.join(self.config_dir, 'exo_forwarding')

    @property
    def mailbox_map(self):
        return os.path.join(self.config_dir, 'vmailbox')

    postmap_path = POSTMAP  # the postmap(1) command; run it with -c config_dir
    postfix_path = POSTFIX

    # -- configuration -------------------------------------------------------------------------
    def _add_mailbox_entry(self, address):
        local, domain = _split(address)
        if not local or domain not in self.mydomains:
            raise ValueError('%r is not in one of mydomains %s' % (address, self.mydomains))
        address = '%s@%s' % (local, domain)
        if address not in self.mailboxes:
            self.mailboxes.append(address)
        return address

    def maildir(self, address):
        local, domain = _split(address)
        return os.path.join(self.mail_dir, domain, local)

    def _write(self, path, text, mode=0o644):
        with open(path + '.tmp', 'w', encoding='utf-8') as f:
            f.write(text)
        os.chmod(path + '.tmp', mode)
        # Postfix re-reads main.cf while its mtime is within the last second (in 0.3 s naps,
        # up to ~2 s per command: dict_load_file's guard against editors): date it back.
        past = time.time() - 5
        os.utime(path + '.tmp', (past, past))
        os.replace(path + '.tmp', path)

    def _write_config(self):
        if not _reachable(self.workdir):
            raise PostfixError('%s is not reachable by the postfix user (a parent directory is '
                               'not searchable by others); use lab_workdir()' % self.workdir)
        nobody = pwd.getpwnam('nobody')
        for path in (self.workdir, self.config_dir, self.queue_dir):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o755)
        os.makedirs(self.mail_dir, exist_ok=True)
        os.chown(self.mail_dir, nobody.pw_uid, nobody.pw_gid)
        os.chmod(self.mail_dir, 0o755)
        tls_chain = ''
        if self.tls_cert is not None:
            tls_chain = os.path.join(self.config_dir, 'smtpd-key-chain.pem')
            self._write(tls_chain, self.tls_cert.private_key_and_cert_chain_pem.bytes().decode(),
                        0o600)
        relayhost = '[%s]:%d' % self.relay if self.relay else ''
        self._write(os.path.join(self.config_dir, 'main.cf'), MAIN_CF % dict(
            name=self.name, config_dir=self.config_dir, queue_dir=self.queue_dir,
            data_dir=self.data_dir, meta_dir=self._meta_directory(), maillog=self.maillog_file,
            workdir=self.workdir, myhostname=self.myhostname,
            mydomain=self.mydomains[0] if self.mydomains else 'legacy.test',
            mydomains=', '.join(self.mydomains), mail_dir=self.mail_dir,
            uid=nobody.pw_uid, gid=nobody.pw_gid, relayhost=relayhost,
            default_transport='smtp' if relayhost else
            'error:5.4.4 this lab instance has no relay for other domains',
            tls_level='may' if tls_chain else 'none', tls_chain=tls_chain))
        self._write(os.path.join(self.config_dir, 'master.cf'),
                    MASTER_CF % dict(listen='127.0.0.1:%d' % self.port))
        if not os.path.exists(self.forwarding_map):
            self._write(self.forwarding_map,
                        '# user@domain  routing@tenant.mail.onmicrosoft.com\n')
        self.postmap(self.forwarding_map)
        self._write_mailbox_map()

    def _meta_directory(self):
        """Where the package keeps postfix-files and dynamicmaps.cf (Debian: /etc/postfix)."""
        out = self._run([POSTCONF, '-dh', 'meta_directory'], check=False)
        path = out.stdout.strip()
        return path if path and os.path.isdir(path) else '/etc/postfix'

    def _write_mailbox_map(self):
        lines = ['%s  %s/%s/\n' % (a, _split(a)[1], _split(a)[0]) for a in self.mailboxes]
        self._write(self.mailbox_map, ''.join(lines))
        self.postmap(self.mailbox_map)

    def add_mailbox(self, address):
        """A new Maildir mailbox in one of mydomains (map rebuilt; reload when running)."""
        address = self._add_mailbox_entry(address)
        if os.path.isdir(self.config_dir):
            self._write_mailbox_map()
            if self.running():
                self.reload()
        return address

    def postmap(self, path=None):
        """``postmap -c config_dir hash:<path>`` (default: the forwarding map)."""
        self._run([POSTMAP, '-c', self.config_dir, 'hash:%s' % (path or self.forwarding_map)])

    def set_forwarding(self, mapping):
        """Write the forwarding map ({address: target}), postmap it and reload."""
        text = ''.join('%s  %s\n' % (k, v) for k, v in sorted(mapping.items()))
        self._write(self.forwarding_map, text)
        self.postmap()
        if self.running():
            self.reload()

    def postconf(self, *names):
        """{name: value} as this instance sees them (``postconf -c DIR -h``)."""
        out = self._run([POSTCONF, '-c', self.config_dir] + list(names))
        return dict(line.split(' = ', 1) if ' = ' in line else (line.rstrip(' ='), '')
                    for line in out.stdout.splitlines())

    # -- life cycle ----------------------------------------------------------------------------
    def _run(self, cmd, check=True, timeout=60):
        env = dict(os.environ)
        env.pop('MAIL_CONFIG', None)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
        if check and proc.returncode != 0:
            raise PostfixError('%s failed (%d): %s%s%s' % (
                ' '.join(cmd), proc.returncode, proc.stdout, proc.stderr, self._log_tail()))
        return proc

    def _log_tail(self):
        try:
            text = self.log_text()
        except OSError:
            return ''
        return '\n-- maillog:\n' + text[-3000:] if text else ''

    def start(self, timeout=20):
        if not os.path.exists(POSTFIX):
            raise PostfixError('Postfix is not installed: run tests/bootstrap-system.sh')
        if os.geteuid() != 0:
            raise PostfixError('a lab Postfix instance needs root')
        self.port = self.port or _free_port()
        self._write_config()
        atexit.register(self.stop)  # an aborted test run leaves no instance behind
        try:
            # "start" runs post-install create-missing (queue and data directories, owners,
            # modes) and the integrity checks of "postfix check" first.
            self._run([POSTFIX, '-c', self.config_dir, 'start'])
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with socket.create_connection(('127.0.0.1', self.port), timeout=2) as s:
                        s.settimeout(2)
                        if s.recv(512).startswith(b'220'):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise PostfixError('smtpd did not answer on 127.0.0.1:%d within %d s%s'
                                       % (self.port, timeout, self._log_tail()))
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, 'pid', 'master.pid'), encoding='ascii') as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self):
        return _alive(self.master_pid())

    def processes(self):
        """Pids of every process of this instance (its MAIL_CONFIG is our config_dir)."""
        mine = ('MAIL_CONFIG=%s' % self.config_dir).encode()
        found = []
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open('/proc/%s/environ' % entry, 'rb') as f:
                    env = f.read().split(b'\0')
            except OSError:
                continue
            if mine in env:
                found.append(int(entry))
        return sorted(found)

    def reload(self):
        self._run([POSTFIX, '-c', self.config_dir, 'reload'])

    def stop(self, timeout=10):
        """Stop the instance; whatever is left of it afterwards gets SIGKILL (by pid)."""
        atexit.unregister(self.stop)
        if os.path.isdir(self.config_dir) and os.path.exists(
                os.path.join(self.config_dir, 'main.cf')):
            master = self.master_pid()
            if self.running():
                self._run([POSTFIX, '-c', self.config_dir, 'stop'], check=False,
                          timeout=timeout + 5)
            deadline = time.monotonic() + timeout
            while _alive(master) and time.monotonic() < deadline:
                time.sleep(0.05)
            for pid in ([master] if _alive(master) else []) + self.processes():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            deadline = time.monotonic() + 5
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.own_workdir and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what tests look at --------------------------------------------------------------------
    def log_text(self):
        try:
            with open(self.maillog_file, encoding='utf-8', errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def queue_ids_seen(self):
        """Queue ids in the maillog, in order of first appearance."""
        seen = []
        pat = re.compile(r'\b%s/[\w/-]+\[\d+\]: ([0-9A-F]{6,}|[0-9A-Za-z]{10,}z[0-9A-Za-z]+): '
                         % re.escape(self.name))
        for m in pat.finditer(self.log_text()):
            if m.group(1) not in seen:
                seen.append(m.group(1))
        return seen

    def log_lines(self, queue_id):
        return [line for line in self.log_text().splitlines() if ': %s: ' % queue_id in line]

    def mailbox(self, address):
        """The messages delivered to ``address``'s Maildir (new/ and cur/), oldest first."""
        base = self.maildir(address)
        found = []
        for sub in ('new', 'cur'):
            folder = os.path.join(base, sub)
            if not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                found.append((os.stat(path).st_mtime, name, path))
        messages = []
        for dummy, dummy, path in sorted(found):
            with open(path, 'rb') as f:
                messages.append(email.message_from_binary_file(f, policy=email.policy.default))
        return messages

    def wait_for_mail(self, address, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            messages = self.mailbox(address)
            if len(messages) >= count or time.monotonic() > deadline:
                return messages
            time.sleep(0.05)
