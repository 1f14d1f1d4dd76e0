"""The collection as users get it: ansible-galaxy collection build, install the tarball into a
fresh path, and run the playbooks by FQCN from there against the lab's BIND."""

import json
import os
import subprocess
import sys
import tarfile

import yaml

from tests.integration.conftest import ZONE
from tests.lab.ansible_runner import collection_root, run_playbook

BIN = os.path.dirname(sys.executable)
COLLECTION = os.path.join(collection_root(), 'exchangeonline', 'mail')


def galaxy(*args, cwd=None, env=None):
    environ = dict(os.environ, **(env or {}))
    if env and 'PYTHONPATH' in env and not env['PYTHONPATH']:
        del environ['PYTHONPATH']
    proc = subprocess.run([os.path.join(BIN, 'ansible-galaxy')] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False,
                          env=environ)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_tarball_leaves_out_the_lab_installs_and_runs_migrate_and_check(tmp_path, bind):
    dist = tmp_path / 'dist'
    galaxy('collection', 'build', COLLECTION, '--output-path', str(dist))
    tarball, = [str(p) for p in dist.iterdir()]
    assert os.path.basename(tarball) == 'exchangeonline-mail-0.1.0.tar.gz'
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    top = {name.split('/')[0] for name in names}
    assert {'plugins', 'roles', 'playbooks', 'meta', 'MANIFEST.json', 'README.md'} <= top
    assert not top & {'tests', '.ci', 'Makefile', 'build', '.venv', 'demo-output', '.git'}
    assert 'plugins/modules/smtp_test.py' in names
    assert 'roles/legacy_forwarding/meta/argument_specs.yml' in names
    # Where users find the project, its documentation and its issue tracker (Galaxy shows them).
    with tarfile.open(tarball) as tar:
        info = json.load(tar.extractfile('MANIFEST.json'))['collection_info']
    assert info['repository'] == 'https://github.com/exchangeonline/mail'
    assert info['documentation'] == 'https://github.com/exchangeonline/mail/blob/main/README.md'
    assert info['issues'] == 'https://github.com/exchangeonline/mail/issues'
    assert info['homepage'] == 'https://github.com/exchangeonline/mail'
    assert info['authors'] == ['exchangeonline.mail maintainers (https://github.com/exchangeonline)']
    assert 'example.invalid' not in json.dumps(info)

    installed = tmp_path / 'installed'
    # Only the installed copy: not the tree under test on PYTHONPATH (sys.path is scanned).
    env = {'ANSIBLE_COLLECTIONS_PATH': str(installed), 'ANSIBLE_COLLECTIONS_SCAN_SYS_PATH': 'False',
           'PYTHONPATH': ''}
    out = galaxy('collection', 'install', tarball, '-p', str(installed), env=env,
                 cwd=str(tmp_path))
    assert 'exchangeonline.mail:0.1.0 was installed successfully' in out, out
    listing = galaxy('collection', 'list', 'exchangeonline.mail', env=env, cwd=str(tmp_path))
    assert str(installed / 'ansible_collections') in listing and '0.1.0' in listing
    assert collection_root() not in listing  # only the installed copy is found

    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(yaml.safe_dump({'all': {'hosts': {ZONE: {
        'exo_pattern': 'full', 'exo_use_tenant': False, 'exo_dns': bind.module_args(),
        'exo_wait_timeout': 20, 'exo_backup_dir': str(tmp_path / 'backups'),
        'exo_report_dir': str(tmp_path / 'report')}}}}))
    workdir = tmp_path / 'run'
    migrate = run_playbook(playbook='exchangeonline.mail.migrate', inventory=str(inventory),
                           workdir=str(workdir), env=env)
    assert migrate.rc == 0, migrate.stdout + migrate.stderr
    mx = bind.rrset(ZONE, 'MX')
    assert mx[1] == ['0 contoso-test.mail.protection.outlook.com.']
    check = run_playbook(playbook='exchangeonline.mail.check', inventory=str(inventory),
                         workdir=str(workdir), env=env)
    assert check.rc == 0, check.stdout + check.stderr
    assert (tmp_path / 'report' / 'exo-check.xml').exists()
    assert 'Every check passed for 1 domain(s)' in check.stdout
