"""Collection metadata that no sanity test checks: action groups agree with module docs."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import importlib
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def runtime_groups():
    with open(os.path.join(ROOT, 'meta', 'runtime.yml')) as f:
        return yaml.safe_load(f)['action_groups']


def module_names():
    pattern = os.path.join(ROOT, 'plugins', 'modules', '*.py')
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(pattern))


def test_action_groups_match_module_documentation():
    """The action_group attribute comes from the doc fragment attributes.<group>."""
    groups = runtime_groups()
    for name in module_names():
        code = importlib.import_module('ansible_collections.exchangeonline.mail.plugins.modules.'
                                       + name)
        doc = yaml.safe_load(code.DOCUMENTATION)
        documented = set('exchangeonline.mail.' + f.rsplit('.', 1)[1]
                         for f in doc['extends_documentation_fragment']
                         if f.startswith('exchangeonline.mail.attributes.'))
        declared = set('exchangeonline.mail.' + g for g, members in groups.items()
                       if name in members)
        assert documented == declared, name
        assert 'action_group' not in doc['attributes'], name


def test_every_module_has_an_action_plugin_for_the_in_process_path():
    for name in module_names():
        assert os.path.exists(os.path.join(ROOT, 'plugins', 'action', name + '.py')), name
        code = importlib.import_module('ansible_collections.exchangeonline.mail.plugins.modules.'
                                       + name)
        if not hasattr(code, 'main'):
            continue  # documentation of an action that runs on the controller only (check_variables)
        assert callable(code.module_kwargs) and callable(code.work), name
