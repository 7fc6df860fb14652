"""Export of a real workdir to TensorFlow, and the exported model run without JAX.

One export per session (of the carphone run: real extraction, a best checkpoint that
is not the latest) serves every test; JAX's logits come from the workdir itself.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lipjax import data_source
from lipjax import evaluate
from lipjax import evaluation
from lipjax import export
from lipjax import exported
from lipjax import input_pipeline
from lipjax import predict

pytestmark = pytest.mark.slow  # SavedModel and TFLite conversions

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}


@pytest.fixture(scope='session')
def shipped(carphone_run, tmp_path_factory):
  """(run, export folder, export.json) of the carphone run's workdir."""
  out = str(tmp_path_factory.mktemp('export') / 'model')
  info = export.export_workdir(carphone_run['workdir'], out)
  return carphone_run, out, info


@pytest.fixture(scope='session')
def saved_model(shipped):
  """The session's export loaded with the SavedModel backend."""
  return exported.load(shipped[1])


@pytest.fixture(scope='session')
def jax_reference(shipped):
  """Per split: the eval batches (one device), JAX's logits and evaluate_step's predictions."""
  import jax

  run, _, _ = shipped
  config, _, model, params, _, _ = evaluate.restore_model(run['workdir'])
  config.data_dir = run['data_dir']
  score = jax.jit(
    lambda params, batch: (
      model.apply({'params': params}, batch, train=False),
      evaluation.evaluate_step(params, batch, model.apply)['prediction'],
    )
  )
  splits = {}
  for split in ('train', 'val', 'test'):
    batches = [
      {key: value[0] for key, value in batch.items()}  # [1 device, B, ...] -> [B, ...]
      for batch in input_pipeline.eval_iterator(config, split, 1)
    ]
    logits, predictions = zip(*[jax.device_get(score(params, b)) for b in batches])
    splits[split] = {'batches': batches, 'logits': logits, 'predictions': predictions}
  return splits


def accuracy(batches, predictions) -> float:
  """Accuracy over real examples (example_mask 1) of per-batch predictions."""
  hits = sum(
    float(((p == b['label']) * b['example_mask']).sum()) for b, p in zip(batches, predictions)
  )
  return hits / sum(float(b['example_mask'].sum()) for b in batches)


def test_export_writes_its_files_and_records_the_best_checkpoint(shipped, saved_model):
  run, out, info = shipped
  assert sorted(os.listdir(out)) == info['written']
  assert {'saved_model', 'dataset_meta.json', 'export.json'} <= set(info['written'])
  assert json.loads(open(os.path.join(out, 'export.json')).read()) == info
  assert info['checkpoint'] == {'which': 'best', 'step': run['best_step']}
  assert run['best_step'] < run['latest_step']
  assert info['source_workdir'] == os.path.abspath(run['workdir'])
  # The metadata is the workdir's own file, byte for byte (classes, edges, extraction settings).
  with (
    open(os.path.join(run['workdir'], 'dataset_meta.json')) as a,
    open(os.path.join(out, 'dataset_meta.json')) as b,
  ):
    assert json.load(a) == json.load(b)
  model = saved_model
  assert model.meta.class_names == ['EARLY', 'LATE']
  assert (model.checkpoint, model.step, model.num_classes) == ('best', run['best_step'], 2)
  assert set(model.inputs) == set(data_source.MODEL_DTYPES) - {'label'}


@pytest.mark.parametrize('split', ['train', 'val', 'test'])
def test_saved_model_logits_equal_jax_on_every_split(saved_model, jax_reference, split):
  reference = jax_reference[split]
  # The eval batches carry label and example_mask too: logits() takes what the model reads.
  logits = [saved_model.logits(b) for b in reference['batches']]
  for got, want in zip(logits, reference['logits']):
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
  predictions = [np.argmax(g, -1) for g in logits]
  for got, want in zip(predictions, reference['predictions']):
    np.testing.assert_array_equal(got, want)
  assert accuracy(reference['batches'], predictions) == accuracy(
    reference['batches'], reference['predictions']
  )


def test_saved_model_takes_any_batch_size(shipped, saved_model, jax_reference):
  assert shipped[2]['formats']['saved_model']['batch_size'] is None
  assert saved_model.batch_size is None
  model = saved_model
  batch = jax_reference['train']['batches'][0]
  everything = model.logits(batch)  # the padded eval batch: eval_batch_size rows
  for size in (1,):  # each new batch size compiles once: keep them few
    part = {key: value[:size] for key, value in batch.items()}
    np.testing.assert_allclose(model.logits(part), everything[:size], atol=1e-5, rtol=0)
  assert len(everything) == len(batch['length']) > 3


def test_logits_name_a_missing_input_and_a_wrong_shape(saved_model, jax_reference):
  model = saved_model
  batch = dict(jax_reference['test']['batches'][0])
  with pytest.raises(ValueError, match=r'lacks the model input\(s\) \[.speech_mask.\]'):
    model.logits({k: v for k, v in batch.items() if k != 'speech_mask'})
  with pytest.raises(ValueError, match='input landmarks has shape'):
    model.logits(dict(batch, landmarks=batch['landmarks'][:, :-1]))


def test_tflite_converts_and_matches_jax(shipped, jax_reference):
  _, out, info = shipped
  tflite = info['formats']['tflite']
  # The model avoids scatter and batched gather so that TFLITE_BUILTINS alone converts it.
  assert tflite['status'] == 'ok', tflite
  model = exported.load(out, 'tflite')
  assert model.batch_size == 1 and os.path.isfile(os.path.join(out, 'model.tflite'))
  reference = jax_reference['test']
  for batch, want in zip(reference['batches'], reference['logits']):
    got = model.logits(batch)  # one example at a time
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(np.argmax(got, -1), np.argmax(want, -1))


def test_predict_with_the_export_matches_the_workdir_and_never_imports_jax(shipped):
  run, out, _ = shipped
  k = run['splits']['test'][0]
  video = str(run['root'] / 'videos' / f'clip{k:02d}.mp4')
  start, end = run['intervals'][k]
  (expected,) = predict.predict_videos(run['workdir'], [video], interval=(start, end), top_k=2)
  # runpy runs the real command line; the check runs at exit, after the prediction.
  script = (
    'import atexit, runpy, sys\n'
    "atexit.register(lambda: print('JAX IMPORTED' if 'jax' in sys.modules else 'no jax'))\n"
    "runpy.run_module('lipjax.predict', run_name='__main__')\n"
  )
  args = [video, '--model', out, '--json', '--top_k', '2', '--start', str(start), '--end', str(end)]
  result = subprocess.run(
    [sys.executable, '-c', script, *args],
    capture_output=True,
    text=True,
    timeout=300,
    cwd=REPO,
    env=ENV,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.rstrip().endswith('no jax'), result.stdout[-500:]
  (got,) = json.loads(result.stdout.rstrip()[: -len('no jax')])
  assert [w['word'] for w in got['top_k']] == [w['word'] for w in expected['top_k']]
  got_p = [w['probability'] for w in got['top_k']]
  expected_p = [w['probability'] for w in expected['top_k']]
  np.testing.assert_allclose(got_p, expected_p, atol=1e-4, rtol=0)
  # A confident model's runner-up probability is tiny: compare it relatively too.
  np.testing.assert_allclose(got_p, expected_p, rtol=1e-3, atol=0)
  assert got['checkpoint'] == expected['checkpoint'] == {'which': 'best', 'step': run['best_step']}


def test_export_refuses_a_missing_or_untrained_workdir_and_a_used_out(shipped, tmp_path):
  run, out, _ = shipped
  with pytest.raises(FileNotFoundError, match='--workdir .*nowhere does not exist'):
    export.export_workdir(str(tmp_path / 'nowhere'), str(tmp_path / 'a'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(FileNotFoundError, match='no config.json; is this a lipjax training workdir'):
    export.export_workdir(str(tmp_path / 'empty'), str(tmp_path / 'b'))
  used = tmp_path / 'used'
  used.mkdir()
  (used / 'notes.txt').write_text('mine')
  with pytest.raises(ValueError, match='is not an earlier export .*--overwrite only replaces'):
    export.export_workdir(run['workdir'], str(used), overwrite=True)
  assert os.listdir(used) == ['notes.txt']
  # Refused before writing anything: no --out, no staging folder beside it.
  assert sorted(os.listdir(tmp_path)) == ['empty', 'used']
  # The command line: one line naming the problem, exit status 2 (unusable input), no traceback.
  result = subprocess.run(
    [sys.executable, '-m', 'lipjax.export', '--workdir', run['workdir'], '--out', out],
    capture_output=True,
    text=True,
    timeout=300,
    cwd=REPO,
    env=ENV,
  )
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
    f'lipjax.export: error: --out {out} exists and is not empty; pass --overwrite or another --out'
  )
  assert 'Traceback' not in result.stderr
