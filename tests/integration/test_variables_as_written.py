"""Review of issue 11 (the variable check), as a user and an attacker would try it.

Real BIND 9, the lab's Microsoft 365 emulator over HTTPS, real ansible-playbook with
exchangeonline.mail.migrate. What is asserted is what a user sees: the variable check's message,
the zones on the server, the requests the tenant received, and that no secret is printed.
"""

import pytest

from tests.integration.test_playbook_inputs import (  # noqa: F401  pylint: disable=unused-import
    assert_untouched, before, lab, variable_messages)
from tests.integration.test_playbooks import output


# -- a dict variable written as text ------------------------------------------------------------
# A quoted flow mapping (a YAML slip), key=value text and JSON text (what -e or an environment
# lookup gives): none is a dict. The check must say so, naming the variable, and never echo the
# text, which holds the TSIG secret.
DNS_AS_TEXT = {
    'flow mapping in quotes': '{{key_secret: {secret}, key_name: {name}, server: 127.0.0.1, '
                              'port: {port}}}',
    'key=value text': 'server=127.0.0.1 port={port} key_name={name} key_secret={secret}',
    'JSON text': '{{"server": "127.0.0.1", "port": {port}, "key_name": "{name}", '
                 '"key_secret": "{secret}"}}',
}


@pytest.mark.parametrize('form', sorted(DNS_AS_TEXT))
def test_exo_dns_written_as_text_is_refused_by_the_check_without_showing_the_secret(lab, form):
    """Today: the flow mapping is refused but its text, TSIG secret included, is printed
    ("exo_dns must be a dict, got '{key_secret: <secret>, ...'", cut at 80 characters: every
    secret in the first 80 is shown); key=value and JSON
    text pass the check and the preflight fails with Python's "dictionary update sequence
    element #0 has length 1; 2 is required", which names no variable."""
    state = before(lab)
    bind = lab.bind
    text = DNS_AS_TEXT[form].format(port=bind.port, name=bind.key_name, secret=bind.key_secret)
    inventory = lab.inventory({'contoso.test': {'exo_pattern': 'full', 'exo_use_tenant': False,
                                                'exo_dns': text}})
    run = lab.run('migrate', inventory, verbosity=3)
    assert_untouched(lab, run, state)
    message = variable_messages(run).get('contoso.test', '')
    assert 'exo_dns must be a dict' in message, output(run)
    text = run.stdout + run.stderr
    assert bind.key_secret[:12] not in text  # not even the part before a cut


def test_exo_protocols_written_as_json_text_is_checked_before_the_cut_over(lab):
    """exo_protocols as JSON text with the typo smtp-auth. Today the check takes the text for a
    dict (the validator parses JSON) but checks no key of it; the domain is added, the MX is
    moved, and only then the mailbox step fails with "The filter plugin
    'ansible.builtin.combine' failed: failed to combine variables, expected dicts but got ...":
    the failure of issue 11 item 1, after the DNS cut-over, naming neither the variable nor the
    typo."""
    lab.m365.add_user('adele@contoso.test')
    state = before(lab)
    inventory = lab.inventory({'contoso.test': {
        'exo_pattern': 'full', 'exo_mailboxes': ['adele@contoso.test'],
        'exo_protocols': '{"pop": false, "smtp-auth": "enabled"}'}})
    run = lab.run('migrate', inventory)
    assert lab.bind.updates_seen() == [], 'the zone was updated before the run failed: ' + output(run)
    message = variable_messages(run).get('contoso.test', '')
    assert 'exo_protocols' in message, output(run)  # a dict expected, or its key smtp-auth named
    assert_untouched(lab, run, state)


# -- false positives -----------------------------------------------------------------------------
def test_a_shared_inventorys_own_domain_variables_do_not_stop_migrate(lab):
    """A site inventory that also runs Windows / AD playbooks has group variables such as
    domain_fqdn, domain_admin, domain_mode and domain_dns_servers. They are not misspelt
    variables of the role exchangeonline.mail.domain (whose options are domain_name,
    domain_dns, domain_nameservers, ...), yet today each stops migrate ("domain_fqdn: unknown
    variable of the role exchangeonline.mail.domain; did you mean domain_dns?"), because the
    difflib ratio is taken over the whole name and the shared prefix "domain_" alone reaches
    0.8. Compared without the prefix (fqdn / dns: 0.57) none of them is close, while every
    typo the README names still is (primry / primary 0.92, nam / name 0.86)."""
    inventory = lab.inventory(
        {'contoso.test': {'exo_pattern': 'full', 'exo_use_tenant': False}},
        domain_fqdn='corp.contoso.test', domain_admin='CORP\\svc-join', domain_mode='WinThreshold',
        domain_dns_servers=['192.0.2.53'])
    run = lab.run('migrate', inventory, check=True)
    assert variable_messages(run) == {}, output(run)
    assert run.rc == 0, output(run)


def test_an_unknown_exo_variable_says_how_to_keep_a_variable_of_ones_own(lab):
    """exo_owner (the team that owns the domain, a variable of the site's own): the message
    suggests exo_resolvers and does not say that exo_ignore_variables keeps it, although
    exo_ignore_variables: [exo_owner] is what makes the run go on (the role-variable message
    does say it)."""
    state = before(lab)
    inventory = lab.inventory({'contoso.test': {'exo_pattern': 'full', 'exo_owner': 'mail-team'}})
    run = lab.run('migrate', inventory)
    assert_untouched(lab, run, state)
    message = variable_messages(run)['contoso.test']
    assert 'exo_owner' in message and 'exo_ignore_variables' in message, message
