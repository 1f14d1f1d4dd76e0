"""Both execution paths on the ansible-core under test: one ansible-playbook run as module
processes (EXO_MAIL_INPROCESS=0) and one through the in-process path of the action plugins
(EXO_MAIL_INPROCESS=1, connection: local), each calling every module of the collection once
against the lab (a real BIND 9, the Microsoft 365 emulator and its SMTP submission listener).
The two runs must give the same results, warnings and deprecations included, and print the same
warnings. tests/run.sh runs this file on every ansible-core version the collection claims."""

import os
import re
import sys

from tests.integration.conftest import ZONE, dns_args, m365_args, task

SENDER = 'adele@contoso.test'
ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'Exchange.ManageAsApp', 'SMTP.SendAsApp',
         'Mail.ReadBasic.All')
# The modules of the collection (tests/integration/test_module_docs.py lists them too).
MODULES = ('accepted_domain', 'check_variables', 'connector', 'dkim', 'domain', 'domain_info',
           'mail_dns', 'mail_dns_check', 'mailbox_info', 'mailbox_protocols', 'smtp_test')


# dns_migration_primary is set by the migrate playbook itself: a warning
EXTRA_VARS = {'exo_pattern': 'full', 'dns_migration_primary': 'legacy'}
# The credentials of one task, given through the task keyword ``environment:`` only.
CREDENTIALS = ('tenant_id', 'client_id', 'client_secret')


def tasks(bind, m365, app):
    m = m365_args(m365, app)
    calls = [
        task('check_variables', {'playbook': 'migrate'}),  # its variables: EXTRA_VARS
        task('domain', dict(m, domain=ZONE, supported_services=['Email'])),
        # the credentials from the task's environment: (the options' AZURE_* fallbacks)
        dict(task('domain_info', dict((k, v) for k, v in dict(m, domain=ZONE).items()
                                      if k not in CREDENTIALS)),
             environment=dict(('AZURE_' + k.upper(), m[k]) for k in CREDENTIALS)),
        # the zone has no SPF record (see below): a warning
        task('mail_dns', dns_args(bind, domain=ZONE, pattern='partial',
                                  records='{{ out.records }}')),
        task('mail_dns_check', dns_args(bind, domain=ZONE, pattern='full')),
        task('mailbox_info', dict(m, mailboxes=[SENDER, 'nobody@contoso.test'])),
        task('mailbox_protocols', dict(m, mailboxes=[SENDER], pop=True)),
        task('dkim', dict(m, domain=ZONE, enabled=False)),
        task('accepted_domain', dict(m, domain=ZONE, domain_type='internal_relay')),
        task('connector', dict(m, direction='outbound', name='To the old server',
                               smart_hosts=['mail.' + ZONE], recipient_domains=[ZONE])),
        # check mode does not prove Send As: a warning
        task('smtp_test', dict(m, host='127.0.0.1', port=m365.smtp.port, sender=SENDER,
                               to=[SENDER], timeout=10)),
    ]
    assert sorted(t['name'] for t in calls) == sorted(MODULES)
    return calls


def comparable(value, key=''):
    """A result without what differs from one run to the next whatever the path: durations
    (floats, ``*_ms``), and the servers' times, queue and session IDs in texts."""
    if isinstance(value, dict):
        # the values of timings_ms are durations too
        return dict((k, comparable(v, key if key.endswith('_ms') else k))
                    for k, v in value.items())
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, float) or (key in ('ms', 'elapsed_ms') or key.endswith('_ms')) and isinstance(value, int):
        return 'a duration'
    if isinstance(value, str):
        value = re.sub(r'\d{4}-\d\d-\d\dT[\d:.]+Z', 'TIME', value)
        return re.sub(r'\b[0-9A-F]{16,}\b|(queued as )\S+', r'\1ID', value)
    return value


def printed_warnings(run):
    """The [WARNING] and [DEPRECATION WARNING] texts as printed (on stderr, where -vvv prints
    nothing), whatever the line breaks."""
    text = ' '.join(run.stderr.split())
    return sorted(re.findall(r'\[(?:DEPRECATION )?WARNING\]: (.*?)(?= \[|TASK |PLAY |$)', text))


def paths_printed(run):
    """{module: [the -vvv lines of the collection's action plugins that say which path ran it]}"""
    found = {}
    for module, line in re.findall(r'exchangeonline\.mail\.(\w+): (runs [^\n]*)', run.stdout):
        found.setdefault(module, []).append(line.strip())
    return found


def test_module_process_and_in_process_paths_agree(bind, m365, play):
    assert bind.update(ZONE, lambda u: u.delete(ZONE + '.', 'TXT')) == 'NOERROR'
    m365.add_domain(ZONE, verified=True, services=['Email'])
    m365.add_user(SENDER)
    if m365.smtp is None:
        m365.start_smtp()
    app = m365.add_app(secret='execution-paths-secret-7c1d', roles=ROLES)
    calls = tasks(bind, m365, app)
    updates = len(bind.updates_seen())
    runs = dict((path, play(calls, check=True, diff=True, extra_vars=EXTRA_VARS, verbosity=3,
                            env={'EXO_MAIL_INPROCESS': path}))
                for path in ('0', '1'))
    for path, run in runs.items():
        assert [r['task'] for r in run.results] == [t['name'] for t in calls], \
            (path, run.stdout[-3000:], run.stderr[-3000:])
    module, inproc = runs['0'], runs['1']
    # which path ran each task, as -vvv says it (check_variables has no module process)
    modules = [name for name in MODULES if name != 'check_variables']
    assert paths_printed(module) == dict(
        (name, ['runs as a module process (EXO_MAIL_INPROCESS=0)']) for name in modules)
    assert paths_printed(inproc) == dict(
        (name, ['runs in this process (connection local)']) for name in modules)
    assert module.stdout.count('AnsiballZ_') > 0 and 'AnsiballZ_' not in inproc.stdout
    # the secret given through environment: shows nowhere (-vvv prints the module process's
    # command line, with its environment, on that path only)
    assert app['secret'] not in inproc.stdout + inproc.stderr
    for name in MODULES:
        a, b = module.task(name), inproc.task(name)
        assert a['status'] == b['status'], (name, a['result'].get('msg'), b['result'].get('msg'))
        assert comparable(a['result']) == comparable(b['result']), name
    # the lab's state asks for warnings: they must reach the user on both paths
    warned = printed_warnings(module)
    assert any('contoso.test. had no SPF record' in w for w in warned), warned
    assert printed_warnings(inproc) == warned
    assert len(bind.updates_seen()) == updates  # check mode: no UPDATE


def test_another_python_interpreter_runs_the_module_process(bind, play):
    """ansible_python_interpreter naming another Python than the controller's (its user,
    namespace or libraries may differ) runs the module there, even another name of the same
    one; the controller's own, as the README's inventory sets it, runs in-process."""
    here = os.path.dirname(sys.executable)
    other = os.path.join(here, 'python3' if os.path.basename(sys.executable) != 'python3'
                         else 'python')
    assert os.path.exists(other)
    args = dns_args(bind, domain=ZONE, pattern='full')
    calls = [dict(task('mail_dns_check', args, name='other'),
                  vars={'ansible_python_interpreter': other}),
             dict(task('mail_dns_check', args, name='own'),
                  vars={'ansible_python_interpreter': '{{ ansible_playbook_python }}'})]
    run = play(calls, verbosity=3, env={'EXO_MAIL_INPROCESS': '1'})
    assert paths_printed(run) == {'mail_dns_check': [
        'runs as a module process (ansible_python_interpreter is %s)' % other,
        'runs in this process (connection local)']}, run.stdout[-2000:]
    first, second = run.task('other'), run.task('own')
    assert first['result']['msg'] == second['result']['msg'] and 'mx failed' in first['result']['msg']
