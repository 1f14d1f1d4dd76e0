"""make demo, as the README's first command runs it (one pattern, to keep it short): the lab
starts, migrate.yml and check.yml run by FQCN, the old Postfix forwards, and the lab stops."""

import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from tests.lab.ansible_runner import collection_root

COLLECTION = os.path.join(collection_root(), 'exchangeonline', 'mail')


def lab_processes(marker):
    """PIDs of processes whose command line or environment names `marker` (the demo's own
    temporary directory: named, Postfix, the emulator), read from /proc (a fresh Debian has no
    pgrep: procps is not in its base system)."""
    found = set()
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        for part in ('cmdline', 'environ'):
            try:
                with open('/proc/%s/%s' % (pid, part), 'rb') as f:
                    if marker in f.read():
                        found.add(pid)
            except OSError:  # gone meanwhile, or not ours to read
                continue
    return found


def test_demo_legacy_forward_end_to_end(tmp_path):
    output = tmp_path / 'demo'
    # The lab's directories go into a temporary directory of the demo's own (short, reachable by
    # Postfix's users), which tells its processes from those of another demo running meanwhile
    # (make test runs the integration tests of each Python side by side).
    own_tmp = tempfile.mkdtemp(prefix='exo-t-', dir='/tmp')
    os.chmod(own_tmp, 0o755)
    try:
        demo_end_to_end(output, own_tmp)
    finally:
        shutil.rmtree(own_tmp, ignore_errors=True)


def demo_end_to_end(output, own_tmp):
    proc = subprocess.run([sys.executable, '-m', 'tests.lab.demo', '--pattern', 'legacy_forward',
                           '--output', str(output)], cwd=COLLECTION, capture_output=True,
                          text=True, timeout=600, check=False,
                          env=dict(os.environ, TMPDIR=own_tmp))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-5000:]
    # plan and diff were shown, the records applied, the forwarding and the test-send proven
    assert 'TASK [exchangeonline.mail.dns_migration : Show the plan]' in text
    assert '+autodiscover.northwind.test.' in text
    assert 'alice@northwind.test\talice' in text  # the forwarding map's diff
    assert 'at the old Postfix arrived in her Exchange Online mailbox' in text
    assert 'alice@northwind.test -> bob@northwind.test: delivered in' in text
    report = output / 'report' / 'exo-check.xml'
    suites = ET.parse(str(report)).getroot()
    assert suites.get('failures') == '0' and int(suites.get('tests')) > 5
    # The whole Markdown report is printed, down to the last section, and no warning of the
    # lab's SMTP server (aiosmtpd) or of the plan step is in the way.
    markdown = (output / 'report' / 'exo-check.md').read_text()
    assert markdown.strip() in proc.stdout
    assert '### Mailboxes' in markdown and '### SMTP test-send' in markdown
    assert '| alice@northwind.test | yes |' in proc.stdout
    assert 'Session.login_data is deprecated' not in text
    assert 'no backup_path was given' not in text
    # It ends with what to do next: make lab, the commands to run against it, make lab-stop.
    tail = proc.stdout[proc.stdout.index('Next, to run the playbooks yourself'):]
    assert '  make lab ' in tail and '  make lab-stop ' in tail
    for name in ('migrate', 'check', 'smtp_test', 'rollback'):
        assert 'ansible-playbook exchangeonline.mail.%s -i %s' % (
            name, os.path.join(COLLECTION, 'lab', 'inventory.yml')) in tail
    # the lab it started is gone again
    assert own_tmp in text  # its directories were where the test looks for its processes
    assert not lab_processes(own_tmp.encode())
