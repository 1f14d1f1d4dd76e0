"""Offline stand-in for ansible-test's get-pip-<ver>.py bootstrap script.

ansible-test (sanity/units/--venv) creates venvs with `--without-pip`, then runs
  <venv-python> quiet_pip.py --disable-pip-version-check pip==<ver> --no-setuptools --no-wheel
with GET_PIP=<this file>. Instead of the real (downloaded) get-pip, run pip straight from
the wheel bundled with the interpreter's ensurepip and let it install the requested pip
from the configured index (PyPI). Falls back to `ensurepip` + `pip install`.
"""
import glob
import os
import subprocess
import sys


def main():
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    import ensurepip
    wheels = (glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), '_bundled', 'pip-*.whl'))
              or glob.glob('/usr/share/python-wheels/pip-*.whl'))  # Debian's python3-venv keeps them here
    if wheels:
        # a pip wheel is importable as a zip: `python pip.whl/pip install ...`
        subprocess.check_call([sys.executable, os.path.join(wheels[0], 'pip'), 'install', '-q'] + args)
    else:
        subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'], stdout=subprocess.DEVNULL)
        subprocess.check_call([sys.executable, '-m', 'pip', 'install', '-q'] + args)


if __name__ == '__main__':
    main()
