"""experiments/colab_tpu.ipynb runs top to bottom on CPU with the tiny config and two pmap devices."""

import json
import os
import re

import nbclient
import nbformat
import pytest

pytestmark = pytest.mark.slow  # the notebook end to end

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = os.path.join(REPO, 'experiments', 'colab_tpu.ipynb')


def cell_text(cell) -> str:
  """Everything a code cell printed or displayed, as text."""
  parts = []
  for output in cell.get('outputs', []):
    if output['output_type'] == 'stream':
      parts.append(output['text'])
    elif 'data' in output:
      parts.append(output['data'].get('text/markdown') or output['data'].get('text/plain', ''))
  return ''.join(parts)


def test_notebook_trains_evaluates_and_diagnoses_on_cpu(dataset, tmp_path, monkeypatch):
  data_dir, meta = dataset
  workdir = str(tmp_path / 'notebook_run')
  monkeypatch.setenv('LIPJAX_NOTEBOOK_CONFIG', 'configs/test.py')
  monkeypatch.setenv('LIPJAX_NOTEBOOK_DATA', data_dir)
  monkeypatch.setenv('LIPJAX_NOTEBOOK_WORKDIR', workdir)
  monkeypatch.delenv('LIPJAX_NOTEBOOK_DRIVE_DATA', raising=False)
  # Two host devices, so the notebook's training really runs under pmap over several devices.
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
  with open(NOTEBOOK) as f:
    notebook = nbformat.read(f, as_version=4)
  nbclient.NotebookClient(
    notebook, timeout=240, kernel_name='python3', resources={'metadata': {'path': REPO}}
  ).execute()
  text = '\n'.join(cell_text(c) for c in notebook.cells if c.cell_type == 'code')

  assert 'lipjax already importable' in text  # the install cell was skipped
  assert 'devices: 2 x cpu' in text and 'global batch 8 -> 4 per device' in text
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [line for line in f if line.strip()]
  assert len(records) == 2  # configs/test.py: 6 steps, an evaluation every 3
  assert '"devices": 2' in records[-1]
  accuracy = re.search(
    r'test: accuracy (\d\.\d{4}), macro-F1 \d\.\d{4}, top-5 \d\.\d{4} on '
    rf'{meta.split_sizes["test"]} clips \(best checkpoint, step (\d)\)',
    text,
  )
  assert accuracy, text[-3000:]
  # The line reports the evaluation it wrote, of the first val-accuracy peak's checkpoint.
  with open(os.path.join(workdir, 'eval_test.json')) as f:
    report = json.load(f)
  assert accuracy.group(1) == f'{report["accuracy"]:.4f}'
  best = max((json.loads(r) for r in records), key=lambda r: r['val_accuracy'])['step']
  assert int(accuracy.group(2)) == report['step'] == best
  assert os.listdir(os.path.join(workdir, 'checkpoints', 'best')) == [str(best)]
  verdict = re.search(
    r'^(healthy|overfitting|underfitting/not learning): val accuracy peak '
    r'\d\.\d{3} at step \d.*wrote (\S+report\.md)$',
    text,
    re.M,
  )
  assert verdict, text[-3000:]
  assert os.path.exists(verdict.group(2))
  assert f'**Verdict: {verdict.group(1)}**' in text  # the report itself was displayed
  images = [
    o for c in notebook.cells for o in c.get('outputs', []) if 'image/png' in o.get('data', {})
  ]
  assert len(images) == 3  # learning curves, parameters, confusion
