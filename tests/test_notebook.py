"""The AI Studio notebook runs end to end (headless, small sizes), so that it cannot rot."""
import os

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
    assert any(name.endswith('.pdparams') for name in os.listdir(tmp_path / 'checkpoint' / 'notebook-demo'))
    # the pictures were drawn inline
    assert any(output.get('output_type') == 'display_data' and 'image/png' in output.get('data', {})
               for cell in notebook.cells for output in cell.get('outputs', []))
