"""The AI Studio notebook runs end to end (headless, small sizes), so that it cannot rot."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT

nbclient = pytest.importorskip('nbclient')
nbformat = pytest.importorskip('nbformat')


def test_notebook_runs(tmp_path, reference_weights, monkeypatch):
    default = os.path.join(ROOT, 'weights', 'bgmv2_mobilenetv2_synthetic.pdparams')
    monkeypatch.setenv('BGMV2_NOTEBOOK_SMALL', '1')
    monkeypatch.setenv('BGMV2_NOTEBOOK_OUT', str(tmp_path))
    # The official-format reference checkpoint stands in for a downloaded official .pth.
    monkeypatch.setenv('BGMV2_NOTEBOOK_OFFICIAL', reference_weights)
    if not os.path.exists(default):
        monkeypatch.setenv('BGMV2_NOTEBOOK_WEIGHTS', reference_weights)
    notebook = nbformat.read(os.path.join(ROOT, 'BackgroundMattingV2.ipynb'), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name='python3',
                                     resources={'metadata': {'path': ROOT}})
    client.execute()  # raises CellExecutionError naming the failing cell
    text = '\n'.join(output.get('text', '') for cell in notebook.cells if cell.cell_type == 'code'
                     for output in cell.get('outputs', []))
    assert 'Converted' in text  # the official-format checkpoint was converted
    for kind in ('pha', 'new'):
        assert len(os.listdir(tmp_path / 'image' / kind)) == 3
    assert (tmp_path / 'log' / 'notebook.csv').exists()
    assert 'device: cpu' in text or 'device: gpu' in text
    assert 'trained 2 steps' in text  # the training cell runs the steps it asks for
    assert len(os.listdir(tmp_path / 'image' / 'exported' / 'pha')) == 3  # under git-ignored image/
    assert not os.path.exists(tmp_path / 'image_exported')
    assert not os.path.exists(os.path.join(ROOT, 'image_exported'))
    assert any(name.endswith('.pdparams') for name in os.listdir(tmp_path / 'checkpoint' / 'notebook-demo'))
    # the pictures were drawn inline
    assert any(output.get('output_type') == 'display_data' and 'image/png' in output.get('data', {})
               for cell in notebook.cells for output in cell.get('outputs', []))


def _first_code_cell():
    notebook = nbformat.read(os.path.join(ROOT, 'BackgroundMattingV2.ipynb'), as_version=4)
    return next(cell.source for cell in notebook.cells if cell.cell_type == 'code')


def test_first_cell_finds_the_repository_or_says_how_to_get_it(tmp_path):
    """Outside the repository: one clear message; a copy in a subfolder is entered."""
    source = _first_code_cell()
    done = subprocess.run([sys.executable, '-c', source], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0 and 'predict.py not found' in done.stderr
    assert '<' not in done.stderr  # no placeholder to fill in
    (tmp_path / 'unpacked' / 'repo').mkdir(parents=True)
    (tmp_path / 'unpacked' / 'repo' / 'predict.py').write_text('')
    done = subprocess.run([sys.executable, '-c', source], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"repository: {tmp_path / 'unpacked' / 'repo'}"


def test_notebook_matches_its_generator(tmp_path, monkeypatch):
    """BackgroundMattingV2.ipynb is what tools/make_notebook.py writes (regenerate after edits)."""
    import runpy
    generator = runpy.run_path(os.path.join(ROOT, 'tools', 'make_notebook.py'))
    monkeypatch.setitem(generator['build'].__globals__, 'ROOT', str(tmp_path))
    (tmp_path / 'README.md').write_text(open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read())
    built = generator['build']()
    with open(built) as f1, open(os.path.join(ROOT, 'BackgroundMattingV2.ipynb')) as f2:
        assert f1.read() == f2.read()
