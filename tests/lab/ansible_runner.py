"""Run real ``ansible-playbook`` against the collection copy under test and collect results."""

import json
import os
import subprocess
import sys
import tempfile
import time

LAB_DIR = os.path.dirname(os.path.abspath(__file__))


def collection_root():
    """The ``.../ansible_collections`` directory that holds exchangeonline/mail (this tree)."""
    here = os.path.dirname(os.path.dirname(LAB_DIR))  # .../exchangeonline/mail
    root = os.path.dirname(os.path.dirname(here))
    if os.path.basename(root) != 'ansible_collections':
        raise RuntimeError('tests must run from a copy at .../ansible_collections/exchangeonline/'
                           'mail (make test does this), not from %s' % here)
    return root


class PlaybookRun:
    def __init__(self, rc, stdout, stderr, results, seconds):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.results = results
        self.seconds = seconds

    def task(self, name):
        """The last result of the task called ``name``."""
        found = [r for r in self.results if r['task'] == name]
        if not found:
            raise KeyError('no result for task %r; stdout:\n%s\n%s'
                           % (name, self.stdout, self.stderr))
        return found[-1]

    @property
    def last(self):
        return self.results[-1]


def environment(workdir, extra=None):
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': os.path.dirname(collection_root()),
        'ANSIBLE_CALLBACK_PLUGINS': os.path.join(LAB_DIR, 'callback_plugins'),
        'ANSIBLE_CALLBACKS_ENABLED': 'result_log',
        'ANSIBLE_LOCAL_TEMP': os.path.join(workdir, 'ansible-tmp'),
        'ANSIBLE_REMOTE_TEMP': os.path.join(workdir, 'ansible-tmp'),
        'ANSIBLE_HOME': os.path.join(workdir, 'ansible-home'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_HOST_KEY_CHECKING': 'False',
        'ANSIBLE_RETRY_FILES_ENABLED': 'False',
        'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
        'ANSIBLE_DEPRECATION_WARNINGS': 'False',
        # botocore's credential chain (provider route53) asks the instance metadata service at
        # 169.254.169.254 when it finds no keys: tests talk to loopback only, and never take the
        # machine's own AWS files.
        'AWS_EC2_METADATA_DISABLED': 'true',
        'AWS_CONFIG_FILE': os.devnull,
        'AWS_SHARED_CREDENTIALS_FILE': os.devnull,
    })
    env.pop('ANSIBLE_CONFIG', None)
    for name in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'):
        env.pop(name, None)
    env.update(extra or {})
    return env


def run_playbook(tasks=None, playbook=None, workdir=None, check=False, diff=False, verbosity=0,
                 extra_vars=None, inventory=None, forks=None, env=None, timeout=600):
    """Run tasks (a list of task dicts, on localhost) or a playbook file; return PlaybookRun."""
    workdir = workdir or tempfile.mkdtemp(prefix='exo-play-')
    os.makedirs(workdir, exist_ok=True)
    if playbook is None:
        playbook = os.path.join(workdir, 'play-%d.yml' % int(time.monotonic() * 1e6))
        with open(playbook, 'w') as f:
            json.dump([{'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
                        'tasks': tasks}], f, indent=1)
    log = os.path.join(workdir, 'results-%d.jsonl' % int(time.monotonic() * 1e6))
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), playbook]
    cmd += ['-i', inventory or 'localhost,']
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    if verbosity:
        cmd.append('-' + 'v' * verbosity)
    if forks:
        cmd += ['--forks', str(forks)]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                          env=environment(workdir, dict(env or {}, EXO_RESULT_LOG=log)),
                          cwd=workdir)
    seconds = time.monotonic() - start
    results = []
    if os.path.exists(log):
        with open(log) as f:
            results = [json.loads(line) for line in f if line.strip()]
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, results, seconds)
