"""migrate --check --diff and the verification TXT: what a user sees before the real run.

A domain the tenant already has (not verified yet): the diff shows the TXT record a real run
publishes, with the tenant's value. A domain not in the tenant yet: its value does not exist
before the real run adds the domain, and the plan says so. Nothing changes in either case.
"""

# lab is a pytest fixture: used by name, not read as a value here
from tests.integration.test_playbooks import lab, output  # noqa: F401  pylint: disable=unused-import


def test_migrate_check_diff_shows_the_verification_txt_or_says_why_not(lab):
    lab.m365.add_domain('contoso.test')  # added by hand earlier, not verified
    inventory = lab.inventory({'contoso.test': {'exo_pattern': 'full'},
                               'fabrikam.test': {'exo_pattern': 'partial'}})
    before = dict((d, lab.bind.axfr(d)) for d in ('contoso.test', 'fabrikam.test'))
    run = lab.run('migrate', inventory, check=True, diff=True)
    assert run.rc == 0, output(run)

    code = lab.m365.domains['contoso.test']['verificationCode']
    assert '+contoso.test. 3600 IN TXT "MS=%s"' % code in run.stdout
    assert ('fabrikam.test is not in the tenant yet, so its verification TXT is not known in '
            'check mode: a real run adds the domain, publishes the TXT record MS=ms######## that '
            'Microsoft gives it at fabrikam.test (nothing else in the zone changes), waits for '
            'every name server and verifies the domain.') in run.stdout
    assert 'contoso.test is not in the tenant yet' not in run.stdout
    # Nothing changed: no record, no domain added, none verified.
    for domain, zone in before.items():
        assert lab.bind.axfr(domain) == zone, domain
    assert lab.bind.updates_seen() == []
    assert 'fabrikam.test' not in lab.m365.domains
    assert lab.m365.domains['contoso.test']['isVerified'] is False
