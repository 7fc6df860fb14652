"""The whole system through its command lines, as a user runs it: one real smoke run.

synthetic videos -> python -m extraction -> python -m lipjax.train -> python -m lipjax.evaluate
-> python -m lipjax.predict. Real rendering, real FaceMesh, real shards, real training
steps, real orbax checkpoints; tiny sizes so it takes about a minute on 2 cores.
"""

import csv
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # videos to predictions through every command line

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ('BAT', 'PAT', 'FEW')


def _run(*args, ok_codes=(0,)):
  result = subprocess.run(
    [sys.executable, '-m', *args],
    capture_output=True,
    text=True,
    timeout=600,
    cwd=REPO,
    env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'},
  )
  assert result.returncode in ok_codes, (
    f'{args[0]} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
  )
  return result


def test_videos_to_predictions_through_the_command_lines(tmp_path):
  videos, data, workdir = (str(tmp_path / name) for name in ('videos', 'data', 'workdir'))
  generate = _run(
    'extraction.synthetic',
    'generate',
    '--out',
    videos,
    '--words',
    ','.join(WORDS),
    '--clips_per_speaker',
    '2',
    '--variants',
    '1',
    '--lfw_faces',
    '0',
    '--val_speakers',
    '1',
    '--test_speakers',
    '1',
    '--workers',
    '1',
  )
  with open(os.path.join(videos, 'generator.json')) as f:
    generated = json.load(f)
  assert 0 < generated['ceiling_accuracy'] < 1  # BAT and PAT look alike
  # FaceMesh on the photos: MediaPipe's glog start-up lines stay off the terminal.
  assert 'W0000' not in generate.stderr and 'absl::InitializeLog' not in generate.stderr

  extracted = _run(
    'extraction',
    '--input',
    os.path.join(videos, 'manifest.csv'),
    '--out',
    data,
    '--workers',
    '2',
    '--quiet',
  )
  # 3 words x 7 photos (the built-in ones, no LFW crops) x 2 clips.
  assert 'wrote 42 clips' in extracted.stdout and '0 skipped' in extracted.stdout
  with open(os.path.join(data, 'extraction_report.json')) as f:
    report = json.load(f)
  assert set(report['splits']['train']['speakers']).isdisjoint(report['splits']['test']['speakers'])

  _run(
    'lipjax.train', '--config', 'configs/test.py', '--workdir', workdir, f'--config.data_dir={data}'
  )
  for name in ('config.json', 'dataset_meta.json', 'metrics.jsonl', 'checkpoints'):
    assert os.path.exists(os.path.join(workdir, name)), name
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  # configs/test.py: 6 steps, evaluated every 3, on the one val speaker's 3 words x 2 clips.
  assert [(r['step'], r['val_examples']) for r in records] == [(3, 6), (6, 6)]
  best_step = max(records, key=lambda r: r['val_accuracy'])['step']

  evaluated = _run('lipjax.evaluate', '--workdir', workdir, '--split', 'test')
  with open(os.path.join(workdir, 'eval_test.json')) as f:
    evaluation = json.load(f)
  assert evaluation['examples'] == 6 and evaluation['step'] == best_step
  assert evaluated.stdout.startswith(f'test: accuracy {evaluation["accuracy"]:.4f}, ')
  assert f'on 6 clips (best checkpoint, step {best_step})' in evaluated.stdout

  with open(os.path.join(videos, 'manifest.csv')) as f:
    clip = next(row for row in csv.DictReader(f) if row['split'] == 'test')
  predicted = _run(
    'lipjax.predict',
    os.path.join(videos, clip['path']),
    '--workdir',
    workdir,
    '--start',
    clip['start'],
    '--end',
    clip['end'],
    '--top_k',
    '3',
    '--json',
  )
  (result,) = json.loads(predicted.stdout)
  assert sorted(w['word'] for w in result['top_k']) == sorted(WORDS)
  probabilities = [w['probability'] for w in result['top_k']]
  assert probabilities == sorted(probabilities, reverse=True)  # most likely word first
  assert result['checkpoint'] == {'which': 'best', 'step': best_step}
