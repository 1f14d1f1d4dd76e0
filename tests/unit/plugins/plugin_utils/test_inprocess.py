"""The in-process path of the action plugins (plugins/plugin_utils/_inprocess.py), on each
ansible-core version of the matrix: the no_log values it hides are the ones AnsibleModule hides,
the argument spec's warnings and deprecations reach the user exactly once, the task's
environment applies and is taken back. tests/integration/test_execution_paths.py runs both
paths end to end."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib
import logging
import os
import types
import warnings

import pytest

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.utils.display import Display

from ansible_collections.exchangeonline.mail.plugins.plugin_utils._inprocess import (
    no_log_values,
    quiet_libraries,
    task_environment,
    validate,
)

MODULES = ('domain', 'domain_info', 'mail_dns', 'mail_dns_check', 'mailbox_info',
           'mailbox_protocols', 'smtp_test')

NESTED = dict(
    token=dict(type='str', no_log=True),
    pin=dict(type='int', no_log=True),
    flag=dict(type='bool', no_log=True),
    keys=dict(type='list', elements='str', no_log=True),
    servers=dict(type='list', elements='dict', options=dict(
        host=dict(type='str'),
        secret=dict(type='str', no_log=True),
        auth=dict(type='dict', options=dict(password=dict(type='str', no_log=True))),
    )),
    mapping=dict(type='dict', no_log=True),
    plain=dict(type='str'),
)


def code_of(name):
    return importlib.import_module('ansible_collections.exchangeonline.mail.plugins.modules.' + name)


def core_no_log_values(spec, params):
    # AnsibleModule's own set (a private attribute of ansible-core: this test is the guard
    # that tells when ansible-core starts hiding other values than the in-process path does)
    return ArgumentSpecValidator(spec).validate(params)._no_log_values


def secret_params(spec):
    """A value for each option of a spec: texts for strings, numbers and lists as typed."""
    values = {}
    for name, option in spec.items():
        kind = option.get('type', 'str')
        if option.get('choices'):
            values[name] = option['choices'][0] if kind != 'list' else [option['choices'][0]]
        elif kind in ('str', 'path'):
            values[name] = 'value-of-%s' % name
        elif kind == 'int':
            values[name] = 4711
        elif kind == 'float':
            values[name] = 2.5
        elif kind == 'bool':
            values[name] = True
    return values


@pytest.mark.parametrize('module', MODULES)
def test_each_module_hides_what_ansiblemodule_hides(module):
    spec = code_of(module).module_kwargs()['argument_spec']
    params = secret_params(spec)
    assert no_log_values(spec, params) == core_no_log_values(spec, params)
    assert no_log_values(spec, params), 'every module has a secret option'


def test_nested_lists_numbers_and_dicts_are_hidden_as_ansiblemodule_hides_them():
    params = dict(token='t0ken', pin=1234, flag=True, keys=['k1', 'k2', ''],
                  servers=[dict(host='h', secret='s1', auth=dict(password='p1')),
                           dict(host='h2', secret=None)],
                  mapping=dict(a='m1', b=dict(c='m2'), n=7), plain='shown')
    assert no_log_values(NESTED, params) == core_no_log_values(NESTED, params) == {
        't0ken', '1234', 'k1', 'k2', 's1', 'p1', 'm1', 'm2', '7'}


def test_defaults_and_environment_fallbacks_of_no_log_options_are_hidden(monkeypatch):
    monkeypatch.setenv('AZURE_CLIENT_SECRET', 'from-the-environment')
    code = code_of('domain_info')
    checked = validate('exchangeonline.mail.domain_info', code,
                       dict(tenant_id='t', client_id='c', domain='contoso.test'))
    assert checked.problem is None
    assert 'from-the-environment' in checked.no_log_values
    assert checked.params['client_secret'] == 'from-the-environment'


def fake_module(spec):
    return types.SimpleNamespace(
        module_kwargs=lambda: dict(argument_spec=spec), LIMITS={},
        work=lambda params, check_mode, diff_mode: {'changed': False})


def test_alias_warnings_and_deprecations_of_the_spec_reach_the_user_once(monkeypatch):
    shown = []
    # ansible-core 2.19 and later show them through Display in the controller (the task's
    # warning context puts them in its result); earlier versions collect them as AnsibleModule
    # does, and the in-process path puts them in the result.
    monkeypatch.setattr(Display, 'warning', lambda self, msg, *a, **k: shown.append(msg))
    monkeypatch.setattr(Display, 'deprecated', lambda self, msg, *a, **k: shown.append(msg))
    spec = dict(name=dict(type='str', aliases=['label']),
                old=dict(type='str', removed_in_version='2.0.0',
                         removed_from_collection='exchangeonline.mail'))
    checked = validate('exchangeonline.mail.fake', fake_module(spec),
                       dict(name='a', label='b', old='c'))
    assert checked.problem is None
    texts = checked.warnings + [d['msg'] for d in checked.deprecations] + shown
    assert sorted(texts) == ["Both option name and its alias label are set.",
                             "Param 'old' is deprecated. See the module docs for more information"]
    for deprecation in checked.deprecations:
        assert deprecation['version'] == '2.0.0'


def test_a_refused_value_names_the_option_and_hides_the_secrets_given():
    code = code_of('mail_dns')
    checked = validate('exchangeonline.mail.mail_dns', code,
                       dict(server='127.0.0.1', domain='contoso.test', key_secret='c2VjcmV0',
                            timeout='soon'))
    assert checked.problem['failed'] and 'timeout' in checked.problem['msg']
    assert checked.no_log_values == {'c2VjcmV0'}


def test_the_task_environment_applies_in_the_block_and_is_taken_back(monkeypatch):
    monkeypatch.setenv('EXO_TEST_KEPT', 'before')
    monkeypatch.delenv('EXO_TEST_NEW', raising=False)
    with task_environment({'EXO_TEST_KEPT': 'during', 'EXO_TEST_NEW': 8080, 'EXO_TEST_FLAG': True}):
        assert os.environ['EXO_TEST_KEPT'] == 'during'
        assert os.environ['EXO_TEST_NEW'] == '8080'  # as text, as a process gets it
        assert os.environ['EXO_TEST_FLAG'] == 'True'
    assert os.environ['EXO_TEST_KEPT'] == 'before'
    assert 'EXO_TEST_NEW' not in os.environ and 'EXO_TEST_FLAG' not in os.environ
    with pytest.raises(RuntimeError):
        with task_environment({'EXO_TEST_KEPT': 'again'}):
            raise RuntimeError('the work failed')
    assert os.environ['EXO_TEST_KEPT'] == 'before'


def test_a_nul_in_the_task_environment_is_a_clear_failure(monkeypatch):
    monkeypatch.delenv('EXO_TEST_A', raising=False)
    with pytest.raises(AnsibleActionFail) as caught:
        with task_environment({'EXO_TEST_A': 'set', 'EXO_TEST_B': 'a\x00b'}):
            pass  # pragma: no cover
    assert 'environment: EXO_TEST_B cannot be set' in str(caught.value)
    assert 'EXO_TEST_A' not in os.environ


@pytest.mark.parametrize('secret', [{'a': 'INNER-1'}, ['INNER-1', 'INNER-2'], 'INNER-1'])
def test_a_secret_of_another_type_is_hidden_item_by_item_as_ansiblemodule_does(secret):
    code = code_of('domain_info')
    args = dict(tenant_id='t', client_id='c', domain='contoso.test', client_secret=secret)
    checked = validate('exchangeonline.mail.domain_info', code, args)
    spec = code.module_kwargs()['argument_spec']
    assert core_no_log_values(spec, dict(args)) <= checked.no_log_values
    assert 'INNER-1' in checked.no_log_values


def test_a_refused_raw_value_still_hides_the_secrets_given():
    code = code_of('mail_dns')
    checked = validate('exchangeonline.mail.mail_dns', code,
                       dict(server='127.0.0.1', domain='contoso.\x00test', key_secret='c2VjcmV0'))
    assert checked.problem and checked.no_log_values == {'c2VjcmV0'}


def test_the_libraries_log_records_and_warnings_stay_out_of_sight_in_process():
    seen = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    root = logging.getLogger()
    catch = Catch()
    root.addHandler(catch)
    try:
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter('always')
            with quiet_libraries():
                logging.getLogger('msal.oauth2cli').error('Token response is not json: secret')
                logging.getLogger('urllib3.connectionpool').warning('retrying')
                warnings.warn('Unverified HTTPS request')
            logging.getLogger('msal').error('after the work')
            warnings.warn('after the work too')
    finally:
        root.removeHandler(catch)
    assert seen == ['after the work']
    assert [str(w.message) for w in shown] == ['after the work too']
