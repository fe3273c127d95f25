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
