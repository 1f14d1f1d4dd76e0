"""The mail authentication chain (role mail_authentication, and migrate with it on by default),
run by real ansible-playbook against a real BIND 9 and the lab's Microsoft 365 emulator.

What a user sees: the CNAMEs on the server before Exchange Online is asked to enable signing,
the signing config in the tenant, the DMARC stage record, and nothing sent in check mode.
"""

import time

from tests.integration.conftest import ZONE, dns_args, m365_args
from tests.integration.test_roles import failure_text, role_play, role_results, role_task, run_role

ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'Exchange.ManageAsApp')
CHANGING = ('New-DkimSigningConfig', 'Set-DkimSigningConfig', 'Rotate-DkimSigningConfig')


def dkim_cmdlets(m365):
    return [r['cmdlet'] for r in m365.requests if 'Dkim' in (r.get('cmdlet') or '')]


def chain_play(bind, m365, app, tmp_path, **extra):
    role_vars = {
        'mail_authentication_domain': ZONE,
        'mail_authentication_backup_dir': str(tmp_path / 'backups'),
        'mail_authentication_wait_timeout': 20, 'mail_authentication_wait_interval': 1,
        'mail_authentication_dns': dns_args(bind),
        'mail_authentication_m365': m365_args(m365, app),
    }
    role_vars.update(extra)
    return role_play('mail_authentication', role_vars)


def test_the_whole_chain_for_a_new_domain(bind, m365, tmp_path):
    """Created disabled, CNAMEs published and served, then enabled: Exchange never sees an enable
    before the CNAMEs are in DNS. A second run changes nothing; the DMARC stage is published."""
    m365.add_domain(ZONE, verified=True, services=['Email'])
    app = m365.add_app(secret='auth-chain-secret', roles=ROLES)
    play = chain_play(bind, m365, app, tmp_path, mail_authentication_dmarc_policy='none',
                      mail_authentication_dmarc_rua=['dmarc-reports@' + ZONE])
    started = time.monotonic()
    run = run_role(tmp_path, 'chain', play)
    seconds = time.monotonic() - started
    assert run.rc == 0, failure_text(run)[-3000:]
    enabled = role_task(run, 'mail_authentication', 'Enable DKIM signing')['result']
    assert enabled['enabled'] is True and enabled['status'] == 'Valid'
    targets = enabled['dkim']
    assert sorted(targets) == ['selector1', 'selector2']
    for selector, target in targets.items():
        assert bind.rrset('%s._domainkey.%s' % (selector, ZONE), 'CNAME')[1] == [
            target.rstrip('.') + '.']
    assert bind.rrset('_dmarc.' + ZONE, 'TXT')[1] == [
        '"v=DMARC1; p=none; rua=mailto:dmarc-reports@%s"' % ZONE]
    # New (disabled), then Set -Enabled only after the CNAMEs were published.
    changing = [c for c in dkim_cmdlets(m365) if c in CHANGING]
    assert changing == ['New-DkimSigningConfig', 'Set-DkimSigningConfig'], dkim_cmdlets(m365)
    print('chain for one domain: %.1f s' % seconds)

    again = run_role(tmp_path, 'again', play)
    assert again.rc == 0, failure_text(again)[-3000:]
    assert [r['task'] for r in role_results(again, 'mail_authentication')
            if r['result'].get('changed')] == []
    assert [c for c in dkim_cmdlets(m365) if c in CHANGING] == changing

    # The next stage replaces the record; the old one is in the backup.
    quarantine = chain_play(bind, m365, app, tmp_path, mail_authentication_dmarc_policy='quarantine',
                            mail_authentication_dmarc_rua=['dmarc-reports@' + ZONE])
    staged = run_role(tmp_path, 'quarantine', quarantine)
    assert staged.rc == 0, failure_text(staged)[-3000:]
    assert bind.rrset('_dmarc.' + ZONE, 'TXT')[1] == [
        '"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@%s"' % ZONE]


def test_check_mode_sends_no_changing_cmdlet_and_no_update(bind, m365, tmp_path):
    m365.add_domain(ZONE, verified=True, services=['Email'])
    app = m365.add_app(secret='auth-check-secret', roles=ROLES)
    updates = bind.update_messages(ZONE)
    run = run_role(tmp_path, 'check', chain_play(bind, m365, app, tmp_path,
                                                 mail_authentication_dmarc_policy='none',
                                                 mail_authentication_dmarc_rua=['d@' + ZONE]),
                   check=True, diff=True)
    assert run.rc == 0, failure_text(run)[-3000:]
    assert [c for c in dkim_cmdlets(m365) if c in CHANGING] == []
    assert bind.update_messages(ZONE) == updates
    assert bind.rrset('_dmarc.' + ZONE, 'TXT') is None


def test_p_none_without_reports_is_refused_before_anything(bind, m365, tmp_path):
    m365.add_domain(ZONE, verified=True, services=['Email'])
    app = m365.add_app(secret='auth-none-secret', roles=ROLES)
    run = run_role(tmp_path, 'none', chain_play(bind, m365, app, tmp_path,
                                                mail_authentication_dmarc_policy='none'))
    assert run.rc != 0
    assert 'without mail_authentication_dmarc_rua' in failure_text(run)
    assert dkim_cmdlets(m365) == []


def test_an_external_report_destination_with_and_without_its_authorization(bind, play):
    """rua in another domain (the lab's second zone): without
    contoso.test._report._dmarc.<destination> the dmarc check warns naming the record to
    publish (RFC 7489 7.1); with it, the check passes."""
    from tests.integration.conftest import IDN_ZONE, task
    record = 'v=DMARC1; p=none; rua=mailto:reports@%s,mailto:me@%s' % (IDN_ZONE, ZONE)
    assert bind.update(ZONE, lambda u: u.replace('_dmarc', 300, 'TXT', '"%s"' % record)) \
        == 'NOERROR'
    check = task('mail_dns_check', dns_args(bind, domain=ZONE, checks=['dmarc'], dmarc=record))
    run = play([check])
    dmarc = run.last['result']['checks'][0]
    assert run.last['status'] == 'ok'
    assert dmarc['status'] == 'warn'
    owner = '%s._report._dmarc.%s' % (ZONE, IDN_ZONE)
    assert 'reports go to %s, which does not authorize them: %s has no TXT v=DMARC1' % (
        IDN_ZONE, owner) in dmarc['message']
    assert ZONE + '._report' not in dmarc['message'].split(owner)[-1]  # own domain: no check

    assert bind.update(IDN_ZONE, lambda u: u.add(owner + '.', 300, 'TXT', '"v=DMARC1"')) \
        == 'NOERROR'
    run = play([check])
    dmarc = run.last['result']['checks'][0]
    assert dmarc['status'] == 'pass', dmarc['message']


def test_mta_sts_and_tls_rpt_in_the_chain_wait_for_the_policy_host(bind, m365, tmp_path):
    """MTA-STS with the chain: while the web server does not serve the policy, the run stops
    before its one UPDATE (no CNAME, no DMARC, no _mta-sts published; the signing config stays
    disabled) and
    prints the policy to serve; served, the same run publishes all of it, waits until every
    server serves it and the policy host serves the policy, then enables signing."""
    from tests.lab.mta_sts_web import PolicyWeb
    web = PolicyWeb(str(tmp_path / 'web'), [ZONE]).start()
    try:
        m365.add_domain(ZONE, verified=True, services=['Email'])
        app = m365.add_app(secret='auth-sts-secret', roles=ROLES)
        play = chain_play(bind, m365, app, tmp_path, mail_authentication_dmarc_policy='none',
                          mail_authentication_dmarc_rua=['dmarc@' + ZONE],
                          mail_authentication_mta_sts={'mode': 'enforce', 'address': web.address,
                                                       'ca_path': web.ca_path},
                          mail_authentication_tls_rpt=['tls@' + ZONE])
        updates = bind.update_messages(ZONE)
        stopped = run_role(tmp_path, 'unserved', play)
        text = failure_text(stopped)
        assert stopped.rc != 0
        assert 'https://mta-sts.%s/.well-known/mta-sts.txt answers HTTP 404' % ZONE in text
        assert 'version: STSv1 | mode: enforce | mx: mail.%s | max_age: 604800' % ZONE in text
        assert bind.update_messages(ZONE) == updates
        assert bind.rrset('_mta-sts.' + ZONE, 'TXT') is None
        assert [c for c in dkim_cmdlets(m365) if c in CHANGING] == ['New-DkimSigningConfig']

        web.serve(ZONE, {'mode': 'enforce', 'mx': ['mail.' + ZONE]})
        run = run_role(tmp_path, 'served', play)
        assert run.rc == 0, failure_text(run)[-3000:]
        published = role_task(run, 'mail_authentication',
                              'Publish the DKIM CNAMEs, DMARC, MTA-STS and TLS-RPT records '
                              '(one UPDATE, backup first)')['result']
        assert published['mta_sts']['served'] is True
        record = '"v=STSv1; id=%s"' % published['mta_sts']['id']
        assert bind.rrset('_mta-sts.' + ZONE, 'TXT')[1] == [record]
        assert bind.rrset('_smtp._tls.' + ZONE, 'TXT')[1] == [
            '"v=TLSRPTv1; rua=mailto:tls@%s"' % ZONE]
        served = role_task(run, 'mail_authentication',
                           'Wait until every authoritative name server serves the records')
        names = dict((c['name'], c['status']) for c in served['result']['checks'])
        assert names == {'dkim': 'pass', 'dmarc': 'pass', 'mta_sts': 'pass', 'tls_rpt': 'pass'}
        assert bind.update_messages(ZONE) == updates + 1
        assert role_task(run, 'mail_authentication', 'Enable DKIM signing')['result']['enabled']
    finally:
        web.stop()
