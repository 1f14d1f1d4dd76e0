"""The roles domain, dns_migration and mailbox_protocols, run by real ansible-playbook against a
real BIND 9 and the lab's Microsoft 365 emulator.

Assertions are about what a user sees: the records the servers serve, the tenant's state, the
message of a failed run.
"""

import os
import re

import yaml

from tests.integration.conftest import ZONE, dns_args, m365_args
from tests.lab.ansible_runner import run_playbook
from tests.lab.bind import BindServer, zone_template

DOMAIN_ROLES = ('Domain.ReadWrite.All',)
MAILBOX_ROLES = ('User.Read.All', 'Exchange.ManageAsApp')
LEGACY_MX = '10 mail.contoso.test.'


def play_file(workdir, plays):
    """Write plays (a list of play dicts) as a playbook file; return its path."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, 'site.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(plays, f, sort_keys=False)
    return path


def role_play(role, role_vars, module_defaults=None, tasks_from=None):
    include = {'name': 'exchangeonline.mail.' + role}
    if tasks_from:
        include['tasks_from'] = tasks_from
    play = {'name': 'role ' + role, 'hosts': 'all', 'connection': 'local', 'gather_facts': False,
            'tasks': [{'name': 'run the role', 'ansible.builtin.include_role': include,
                       'vars': role_vars}]}
    if module_defaults:
        play['module_defaults'] = module_defaults
    return play


def run_role(tmp_path, name, *plays, **kwargs):
    workdir = str(tmp_path / name)
    kwargs.setdefault('inventory', 'localhost,')
    return run_playbook(playbook=play_file(workdir, list(plays)), workdir=workdir, **kwargs)


def role_results(run, role):
    """Results of the role's tasks (named 'exchangeonline.mail.<role> : <task>')."""
    prefix = 'exchangeonline.mail.%s : ' % role
    return [r for r in run.results if r['task'].startswith(prefix)]


def role_task(run, role, name):
    return run.task('exchangeonline.mail.%s : %s' % (role, name))


def failure_text(run):
    return run.stdout + run.stderr


# -- argument specs -------------------------------------------------------------------------------
def test_argument_specs_reject_a_wrong_pattern_and_a_missing_domain(tmp_path):
    """Bad role variables fail before any task of the role runs, with the variable named."""
    wrong_pattern = run_role(tmp_path, 'pattern', role_play('dns_migration', {
        'dns_migration_domain': ZONE, 'dns_migration_pattern': 'hybrid'}))
    no_domain = run_role(tmp_path, 'domain', role_play('dns_migration', {
        'dns_migration_pattern': 'full'}))
    no_name = run_role(tmp_path, 'name', role_play('domain', {}))
    bad_switch = run_role(tmp_path, 'switch', role_play('mailbox_protocols', {
        'mailbox_protocols_mailboxes': ['a@contoso.test'], 'mailbox_protocols_smtp_auth': 'on'}))
    no_rollback_domain = run_role(tmp_path, 'rollback', role_play(
        'dns_migration', {}, tasks_from='rollback'))

    for run in (wrong_pattern, no_domain, no_name, bad_switch, no_rollback_domain):
        assert run.rc != 0
        # Only the validation task ran: no module was called.
        tasks = [r for r in run.results if r['task'].startswith('exchangeonline.mail.')]
        assert len(tasks) == 1, tasks
        assert 'Validating arguments against arg spec' in tasks[0]['task']
        assert tasks[0]['status'] == 'failed'

    def message(run):
        return [r for r in run.results if 'Validating' in r['task']][0]['result']['msg']

    msg = message(wrong_pattern)
    assert 'Validation of arguments failed' in msg
    assert ('value of dns_migration_pattern must be one of: full, partial, legacy_forward, '
            'got: hybrid') in msg
    assert 'missing required arguments: dns_migration_domain' in message(no_domain)
    assert 'missing required arguments: domain_name' in message(no_name)
    assert ('value of mailbox_protocols_smtp_auth must be one of: enabled, disabled, inherit, '
            'None, got: on') in message(bad_switch)
    assert 'missing required arguments: dns_migration_domain' in message(no_rollback_domain)
    # ... and the user reads it in the normal output, too.
    assert 'dns_migration_pattern must be one of' in wrong_pattern.stdout


# -- domain ----------------------------------------------------------------------------------------
def test_domain_role_with_the_callers_module_defaults(bind, m365, tmp_path):
    """Connection options from the caller's group module_defaults only (no role dicts)."""
    app = m365.add_app(secret='roles-domain-secret', roles=DOMAIN_ROLES)
    backup_root = tmp_path / 'backups'
    backups = backup_root / ZONE
    defaults = {'group/exchangeonline.mail.dns': dns_args(bind),
                'group/exchangeonline.mail.m365': m365_args(m365, app)}
    play = role_play('domain', {'domain_name': ZONE, 'domain_backup_dir': str(backup_root),
                                'domain_dns_wait_timeout': 10, 'domain_verify_timeout': 10},
                     module_defaults=defaults)
    run = run_role(tmp_path, 'first', play)
    assert run.rc == 0, failure_text(run)[-3000:]
    dom = m365.domains[ZONE]
    assert dom['isVerified'] is True and dom['supportedServices'] == ['Email']
    txt = 'MS=' + dom['verificationCode']
    assert any(txt in v for v in bind.rrset(ZONE, 'TXT')[1])
    # Only the TXT was published: MX untouched.
    assert bind.rrset(ZONE, 'MX')[1] == [LEGACY_MX]
    written = sorted(os.listdir(str(backups)))
    assert len(written) == 1 and written[0].endswith('-verification.json')
    result = role_task(run, 'domain', 'Verify the domain and set its services')['result']
    assert result['actions'] == ['verify', 'set supported services']

    again = run_role(tmp_path, 'second', play)
    assert again.rc == 0, failure_text(again)[-3000:]
    assert [r['task'] for r in role_results(again, 'domain') if r['result'].get('changed')] == []
    assert sorted(os.listdir(str(backups))) == written


# -- dns_migration ---------------------------------------------------------------------------------
def test_dns_migration_with_role_dicts_over_the_callers_defaults(bind, m365, tmp_path):
    """The caller's group defaults name a wrong port; dns_migration_dns overrides just that."""
    m365.add_domain(ZONE, verified=True, services=['Email'])
    app = m365.add_app(secret='roles-migration-secret', roles=DOMAIN_ROLES)
    backup_root = tmp_path / 'backups'
    backups = backup_root / ZONE
    zone_before = bind.axfr(ZONE)
    wrong = dict(dns_args(bind), port=1)
    play = role_play('dns_migration', {
        'dns_migration_domain': ZONE, 'dns_migration_pattern': 'partial',
        'dns_migration_backup_dir': str(backup_root), 'dns_migration_wait_timeout': 10,
        'dns_migration_dns': {'port': bind.port},
        'dns_migration_m365': m365_args(m365, app),
    }, module_defaults={'group/exchangeonline.mail.dns': wrong})
    run = run_role(tmp_path, 'apply', play)
    assert run.rc == 0, failure_text(run)[-3000:]
    exo_mx = '20 %s.' % m365.mx_host(ZONE)  # the host Graph gives (added today: mx.microsoft)
    assert bind.rrset(ZONE, 'MX')[1] == sorted([LEGACY_MX, exo_mx])
    assert bind.rrset('autodiscover.' + ZONE, 'CNAME')[1] == ['autodiscover.outlook.com.']
    assert bind.update_messages(ZONE) == 1
    # The plan is shown before anything is applied.
    shown = role_task(run, 'dns_migration', 'Show the plan')['result']['msg']
    assert [(c['action'], c['type']) for c in shown['changes']] == [
        ('create', 'CNAME'), ('update', 'MX'), ('update', 'TXT')]
    assert '+contoso.test. 3600 IN MX %s' % exo_mx in run.stdout
    # The plan task (check mode, no backup_path) does not warn about a backup the apply writes.
    assert 'no backup_path was given' not in run.stdout + run.stderr
    verified = role_task(run, 'dns_migration',
                         'Wait until every authoritative name server serves the records')['result']
    assert verified['ok'] is True
    assert [s['name'] for s in verified['servers']] == ['ns1.contoso.test']

    again = run_role(tmp_path, 'again', play)
    assert again.rc == 0, failure_text(again)[-3000:]
    assert [r['task'] for r in role_results(again, 'dns_migration')
            if r['result'].get('changed')] == []
    assert bind.update_messages(ZONE) == 1
    assert len(os.listdir(str(backups))) == 1

    # The rollback entry point restores the zone and archives the backup; a second one is a no-op.
    rollback = role_play('dns_migration', {
        'dns_migration_domain': ZONE, 'dns_migration_backup_dir': str(backup_root),
        'dns_migration_dns': {'port': bind.port}},
        module_defaults={'group/exchangeonline.mail.dns': wrong}, tasks_from='rollback')
    run = run_role(tmp_path, 'rollback', rollback)
    assert run.rc == 0, failure_text(run)[-3000:]
    assert bind.axfr(ZONE) == zone_before
    assert [n for n in os.listdir(str(backups)) if n.endswith('.json')] == []
    assert len(os.listdir(str(backups / 'rolled-back'))) == 1
    run = run_role(tmp_path, 'rollback-again', rollback)
    assert run.rc == 0, failure_text(run)[-3000:]
    assert 'nothing was pending' in run.stdout
    assert bind.axfr(ZONE) == zone_before


def test_dns_migration_of_a_domain_added_before_july_2026_keeps_the_classic_host(
        bind, m365, tmp_path):
    """MC1048624 gives *.mx.microsoft hosts to domains added from July 2026 only: a domain the
    tenant got in March 2025 keeps <dashed>.mail.protection.outlook.com. The role publishes the
    host Graph gives, today (the lab's clock gives a domain added now the new form) and again."""
    m365.add_domain(ZONE, verified=True, services=['Email'], added='2025-03-10')
    assert m365.mx_host(m365.add_domain('fabrikam.test')).endswith('-v1.mx.microsoft')  # today
    app = m365.add_app(secret='roles-classic-secret', roles=DOMAIN_ROLES)
    play = role_play('dns_migration', {
        'dns_migration_domain': ZONE, 'dns_migration_pattern': 'full',
        'dns_migration_backup_dir': str(tmp_path / 'backups'), 'dns_migration_wait_timeout': 10,
        'dns_migration_dns': dns_args(bind), 'dns_migration_m365': m365_args(m365, app)})
    run = run_role(tmp_path, 'apply', play)
    assert run.rc == 0, failure_text(run)[-3000:]
    assert bind.rrset(ZONE, 'MX')[1] == ['0 contoso-test.mail.protection.outlook.com.']
    assert '+contoso.test. 3600 IN MX 0 contoso-test.mail.protection.outlook.com.' in run.stdout
    applied = role_task(run, 'dns_migration', 'Apply the plan (one UPDATE for the zone, backup '
                        'first)')['result']
    assert applied['mx_host'].rstrip('.') == 'contoso-test.mail.protection.outlook.com'
    assert 'mx_host_computed' not in applied  # taken from Graph's records, not computed
    again = run_role(tmp_path, 'again', play)
    assert again.rc == 0, failure_text(again)[-3000:]
    assert [r['task'] for r in role_results(again, 'dns_migration')
            if r['result'].get('changed')] == []
    assert bind.rrset(ZONE, 'MX')[1] == ['0 contoso-test.mail.protection.outlook.com.']
    assert bind.update_messages(ZONE) == 1


def test_dns_migration_rolls_back_when_a_server_does_not_follow(bind, tmp_path):
    """A second authoritative server keeps serving the old zone (its transfers are broken): the
    verification fails on it, the role restores the primary from the backup and says so."""
    stale = BindServer({ZONE: zone_template('contoso.test.zone')},
                       workdir=str(tmp_path / 'stale-bind'))
    stale.start()
    try:
        zone_before = bind.axfr(ZONE)
        serial = bind.soa_serial(ZONE)
        backup_root = tmp_path / 'backups'
        backups = backup_root / ZONE
        primary, secondary = '127.0.0.1:%d' % bind.port, '127.0.0.1:%d' % stale.port
        play = role_play('dns_migration', {
            'dns_migration_domain': ZONE, 'dns_migration_pattern': 'full',
            'dns_migration_from_tenant': False, 'dns_migration_backup_dir': str(backup_root),
            'dns_migration_nameservers': [primary, secondary],
            'dns_migration_wait_timeout': 2,
        }, module_defaults={'group/exchangeonline.mail.dns': dns_args(bind)})
        run = run_role(tmp_path, 'run', play)
    finally:
        stale.stop()
    assert run.rc != 0
    # It was applied (one UPDATE), then rolled back (a second one): the zone is as before.
    applied = role_task(run, 'dns_migration',
                        'Apply the plan (one UPDATE for the zone, backup first)')
    assert applied['status'] == 'ok' and applied['result']['changed'] is True
    rolled = role_task(run, 'dns_migration', "Roll the change back from this run's backup")
    assert rolled['status'] == 'ok' and rolled['result']['changed'] is True
    assert bind.axfr(ZONE) == zone_before
    assert bind.soa_serial(ZONE) == serial + 2
    assert bind.update_messages(ZONE) == 2
    # The message says what failed where, and that the zone is back.
    msg = role_task(run, 'dns_migration', 'Fail with what went wrong')['result']['msg']
    assert re.match(r'dns_migration: verification failed for contoso.test \(full\) after \d+ s of '
                    r'asking every server in rounds: contoso.test.: ', msg), msg
    assert 'mx failed on %s: found 10 mail.contoso.test.' % secondary in msg
    assert 'failed on %s' % primary not in msg
    assert 'The change was rolled back from %s' % backups in msg
    assert 'serial %d -> %d' % (serial + 1, serial + 2) in msg
    assert 'the records are as they were before this run' in msg
    # The backup that was used moved aside, so a later rollback does not apply it again.
    assert [n for n in os.listdir(str(backups)) if n.endswith('.json')] == []
    assert len(os.listdir(str(backups / 'rolled-back'))) == 1


def test_dns_migration_conflict_stops_at_the_plan(bind, tmp_path):
    """An A record where the autodiscover CNAME must go: the plan names it, nothing is sent."""
    apex = ZONE + '.'
    bind.update(ZONE, lambda u: u.add('autodiscover.' + apex, 3600, 'A', '192.0.2.1'))
    zone_before = bind.axfr(ZONE)
    updates = bind.update_messages(ZONE)
    play = role_play('dns_migration', {
        'dns_migration_domain': ZONE, 'dns_migration_pattern': 'full',
        'dns_migration_from_tenant': False, 'dns_migration_backup_dir': str(tmp_path / 'b'),
    }, module_defaults={'group/exchangeonline.mail.dns': dns_args(bind)})
    run = run_role(tmp_path, 'run', play)
    assert run.rc != 0
    assert bind.axfr(ZONE) == zone_before
    assert bind.update_messages(ZONE) == updates
    failed = role_task(run, 'dns_migration', 'Plan the changes (check mode, nothing is sent)')
    assert failed['status'] == 'failed'
    assert 'autodiscover.contoso.test.: has A 192.0.2.1' in failed['result']['msg']
    assert 'nothing was changed' in failed['result']['msg']
    assert not os.path.exists(str(tmp_path / 'b'))


def test_dns_migration_check_mode_only_plans(bind, tmp_path):
    zone_before = bind.axfr(ZONE)
    play = role_play('dns_migration', {
        'dns_migration_domain': ZONE, 'dns_migration_pattern': 'legacy_forward',
        'dns_migration_from_tenant': False, 'dns_migration_backup_dir': str(tmp_path / 'b'),
    }, module_defaults={'group/exchangeonline.mail.dns': dns_args(bind)})
    run = run_role(tmp_path, 'run', play, check=True)
    assert run.rc == 0, failure_text(run)[-3000:]
    shown = role_task(run, 'dns_migration', 'Show the plan')['result']['msg']
    assert [(c['action'], c['type']) for c in shown['changes']] == [
        ('create', 'CNAME'), ('update', 'TXT')]
    assert bind.axfr(ZONE) == zone_before
    assert bind.updates_seen() == []
    assert not os.path.exists(str(tmp_path / 'b'))


# -- mailbox_protocols -----------------------------------------------------------------------------
def test_mailbox_protocols_role_sets_and_confirms(m365, tmp_path):
    for upn in ('adele@contoso.test', 'alex@contoso.test'):
        m365.add_user(upn, licensed=True, mailbox=True)
        m365.cas_mailbox(upn)['PopEnabled'] = False
        m365.cas_mailbox(upn)['ImapEnabled'] = True
    app = m365.add_app(secret='roles-mailbox-secret', roles=MAILBOX_ROLES)
    role_vars = {'mailbox_protocols_mailboxes': ['adele@contoso.test', 'alex@contoso.test'],
                 'mailbox_protocols_pop': True, 'mailbox_protocols_imap': False,
                 'mailbox_protocols_smtp_auth': 'enabled',
                 'mailbox_protocols_m365': m365_args(m365, app)}
    run = run_role(tmp_path, 'set', role_play('mailbox_protocols', role_vars))
    assert run.rc == 0, failure_text(run)[-3000:]
    for upn in ('adele@contoso.test', 'alex@contoso.test'):
        cas = m365.cas_mailbox(upn)
        assert (cas['PopEnabled'], cas['ImapEnabled'], cas['SmtpClientAuthenticationDisabled']) == (
            True, False, False)
    confirm = role_task(run, 'mailbox_protocols', 'Confirm every mailbox has what was asked')
    assert confirm['result']['msg'] == '2 mailbox(es) confirmed (2 changed)'

    again = run_role(tmp_path, 'again', role_play('mailbox_protocols', role_vars))
    assert again.rc == 0, failure_text(again)[-3000:]
    assert [r['task'] for r in role_results(again, 'mailbox_protocols')
            if r['result'].get('changed')] == []


def test_mailbox_protocols_role_fails_naming_the_mailbox(m365, tmp_path):
    m365.add_user('adele@contoso.test', licensed=True, mailbox=True)
    m365.add_user('nobox@contoso.test', licensed=False, mailbox=False)
    app = m365.add_app(secret='roles-mailbox-secret-2', roles=MAILBOX_ROLES)
    role_vars = {'mailbox_protocols_mailboxes': ['adele@contoso.test', 'nobox@contoso.test'],
                 'mailbox_protocols_imap': True, 'mailbox_protocols_m365': m365_args(m365, app)}
    run = run_role(tmp_path, 'set', role_play('mailbox_protocols', role_vars))
    assert run.rc != 0
    failed = [r for r in role_results(run, 'mailbox_protocols') if r['status'] == 'failed']
    assert len(failed) == 1
    assert 'nobox@contoso.test: no Exchange Online mailbox' in failed[0]['result']['msg']
    assert m365.cas_mailbox('adele@contoso.test')['ImapEnabled'] is True
