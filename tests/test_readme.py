"""README and CI agree: .ci/run runs exactly the README's quick-start test command."""
import os
import re

from conftest import ROOT


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding='utf-8') as f:
        return f.read()


def test_ci_runs_the_readme_test_command():
    readme = _read('README.md')
    quick_start = readme[readme.index('## 4. Quick start'):]
    block = re.search(r'```bash\n(.*?)```', quick_start, re.S).group(1)
    commands = [line for line in block.splitlines() if line and not line.startswith('#')]
    assert len(commands) == 2, commands
    ci = [line for line in _read('.ci', 'run').splitlines() if line and not line.startswith(('#', 'set ', 'cd '))]
    assert ci[-1] == commands[1]
    # before it, only the optional installs (web app extras, Chromium), each falling back to a warning
    for line in ci[:-1]:
        assert 'requirements-app.txt' in line or 'chromium' in line, line
        assert '|| echo "warning: ' in line, line
    assert commands[0].startswith('pip install -r requirements.txt && ')
    assert commands[1].startswith('pip install -r requirements-dev.txt && ')
    readme_cn = _read('README_cn.md')
    assert re.search(r'```bash\n(.*?)```', readme_cn[readme_cn.index('## 4.'):], re.S).group(1) == block


def _requirements(name):
    lines = [line.split('#')[0].strip() for line in _read(name).splitlines()]
    return [line for line in lines if line]


def test_requirements_split_run_and_dev():
    """requirements.txt: what the scripts need; requirements-dev.txt adds tests/notebook/plots."""
    run = {re.split('[=<>]', r)[0] for r in _requirements('requirements.txt')}
    dev = _requirements('requirements-dev.txt')
    assert dev[0] == '-r requirements.txt'
    assert not run & {'pytest', 'nbclient', 'nbformat', 'ipykernel', 'matplotlib'}
    assert {'paddlepaddle', 'imageio-ffmpeg', 'visualdl'} <= run
    pytest_pin = [r for r in dev if r.startswith('pytest')]
    assert len(pytest_pin) == 1 and re.fullmatch(r'pytest==\d+\.\d+\.\d+', pytest_pin[0])


def _structure_paths(readme, heading):
    """The file and folder paths drawn in the README's code-structure tree."""
    section = readme[readme.index(heading):]
    tree = re.search(r'```\n(.*?)```', section, re.S).group(1)
    paths, stack = set(), []
    for line in tree.splitlines():
        match = re.match(r'^((?:│   |    )*)[├└]── (\S+)', line)
        if not match:
            continue
        depth = len(match.group(1)) // 4
        name = match.group(2)
        stack[depth:] = [name.rstrip('/')]
        paths.add('/'.join(stack))
    return paths


def test_code_structure_lists_every_module():
    """Every module of model/, utils/ and dataset/ has its line in both READMEs' structure tree."""
    modules = set()
    for package in ('model', 'utils', 'dataset'):
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, package)):
            dirnames[:] = [d for d in dirnames if d not in ('__pycache__', 'samples')]
            for name in filenames:
                if name.endswith('.py') and name != '__init__.py':
                    modules.add(os.path.relpath(os.path.join(dirpath, name), ROOT).replace(os.sep, '/'))
    for readme, heading in (('README.md', '## 11. Code structure'), ('README_cn.md', '## 11.')):
        drawn = _structure_paths(_read(readme), heading)
        assert not modules - drawn, f'{readme} lacks {sorted(modules - drawn)}'
        stale = {p for p in drawn if p.endswith('.py') and not os.path.exists(os.path.join(ROOT, p))}
        assert not stale, f'{readme} lists modules that do not exist: {sorted(stale)}'
