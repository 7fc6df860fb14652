"""End-to-end training on the synthetic shards: devices, resumption, evaluation, CLI errors."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

from checkpoint_files import checkpoint_dir
from checkpoint_files import checkpoint_progress
from checkpoint_files import latest
from checkpoint_files import read_metrics
import numpy as np
import pytest

from lipjax import evaluate
from lipjax import input_pipeline
from lipjax import models
from lipjax import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(args, env_extra=None, timeout=240):
  """Runs `python args...` from the repo root; returns the CompletedProcess."""
  env = dict(os.environ, PYTHONPATH=REPO, **(env_extra or {}))
  return subprocess.run(
    [sys.executable] + args,
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
    check=False,
  )


@pytest.mark.slow
def test_one_and_two_devices_give_the_same_loss_trajectory(test_config, tmp_path):
  # Same global batch; dropout off because its masks are drawn per device.
  test_config.model.dropout_rate = 0.0
  test_config.eval_every_steps = 1
  one = str(tmp_path / 'one')
  train.train_and_evaluate(test_config, one)
  two = str(tmp_path / 'two')
  result = run_python(
    [
      '-m',
      'lipjax.train',
      '--config',
      'configs/test.py',
      '--workdir',
      two,
      f'--config.data_dir={test_config.data_dir}',
      '--config.model.dropout_rate=0.0',
      '--config.eval_every_steps=1',
    ],
    env_extra={'XLA_FLAGS': '--xla_force_host_platform_device_count=2'},
  )
  assert result.returncode == 0, result.stderr[-3000:]
  one_metrics, two_metrics = read_metrics(one), read_metrics(two)
  assert [m['devices'] for m in one_metrics] == [1] * 6
  assert [m['devices'] for m in two_metrics] == [2] * 6
  for key in ('train_loss', 'val_loss'):
    np.testing.assert_allclose(
      [m[key] for m in one_metrics], [m[key] for m in two_metrics], rtol=2e-4, atol=2e-5
    )
  assert one_metrics[-1]['train_loss'] != one_metrics[0]['train_loss']


KILL_AFTER_CHECKPOINT = textwrap.dedent("""
    import os, signal, sys
    from configs import test
    from lipjax import checkpoints, train
    real_save = checkpoints.save

    def save_then_die(manager, step, *args, **kwargs):
      real_save(manager, step, *args, **kwargs)
      if step == 4 and str(manager.directory).endswith('latest'):
        os.kill(os.getpid(), signal.SIGKILL)  # a crash right after a checkpoint

    checkpoints.save = save_then_die
    config = test.get_config()
    config.data_dir, config.num_train_steps, config.eval_every_steps = sys.argv[1], 8, 4
    train.train_and_evaluate(config, sys.argv[2])
""")


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_params(test_config, tmp_path):
  test_config.num_train_steps = 8
  test_config.eval_every_steps = 4
  straight = str(tmp_path / 'straight')
  train.train_and_evaluate(test_config, straight)

  interrupted = str(tmp_path / 'interrupted')
  script = tmp_path / 'kill_after_checkpoint.py'
  script.write_text(KILL_AFTER_CHECKPOINT)
  result = run_python([str(script), test_config.data_dir, interrupted])
  assert result.returncode == -9, result.stderr[-3000:]
  assert sorted(os.listdir(os.path.join(interrupted, 'checkpoints', 'latest'))) == ['2', '4']
  train.train_and_evaluate(test_config, interrupted)  # the same command again resumes

  straight_params, straight_progress = latest(straight)
  resumed_params, resumed_progress = latest(interrupted)
  assert resumed_progress['step'] == straight_progress['step'] == 8
  assert resumed_progress['epoch'] == 8 // 6 and resumed_progress['step_in_epoch'] == 8 % 6
  for a, b in zip(straight_params, resumed_params):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert [m['step'] for m in read_metrics(interrupted)] == [4, 8]


def test_resumed_run_starts_at_its_checkpoint_with_the_next_batches_and_redoes_later_evals(
  test_config, tmp_path, monkeypatch
):
  test_config.num_train_steps = 8
  test_config.eval_every_steps = 2
  test_config.checkpoint_every_steps = 4
  started = []  # (start_step, batches it yielded) per call: a spy around the real iterator
  real_iterator = input_pipeline.train_iterator

  def recording_iterator(config, meta, start_step, *args, **kwargs):
    seen = []
    started.append((start_step, seen))
    for batch in real_iterator(config, meta, start_step, *args, **kwargs):
      seen.append(batch)
      yield batch

  monkeypatch.setattr(input_pipeline, 'train_iterator', recording_iterator)
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(test_config, workdir)
  first_records = read_metrics(workdir)
  assert [r['step'] for r in first_records] == [2, 4, 6, 8]
  # A crash before the step-8 checkpoint landed: evaluations 6 and 8 are past the checkpoint.
  shutil.rmtree(os.path.join(workdir, 'checkpoints', 'latest', '8'))
  train.train_and_evaluate(test_config, workdir)

  assert [start for start, _ in started] == [0, 4]
  stream = real_iterator(test_config, train.load_dataset_meta(test_config.data_dir), 0, 1)
  expected = [next(stream) for _ in range(8)][4:]  # global steps 5..8
  resumed_batches = started[1][1][:4]
  for want, got in zip(expected, resumed_batches):
    np.testing.assert_array_equal(got['label'], want['label'])
    np.testing.assert_array_equal(got['landmarks'], want['landmarks'])
  records = read_metrics(workdir)
  assert [r['step'] for r in records] == [2, 4, 6, 8]  # 6 and 8 dropped, then written again
  for before, after in zip(first_records, records):
    assert after['val_loss'] == pytest.approx(before['val_loss'], rel=1e-5)
  progress = checkpoint_progress(workdir, 'latest', 8)
  assert (progress['step'], progress['epoch'], progress['step_in_epoch']) == (8, 1, 2)
  assert os.listdir(os.path.join(workdir, 'checkpoints', 'best')) == [str(first_best_step(records))]


@pytest.fixture(scope='module')
def trained_workdir(learned):
  """The session's learned workdir (its best checkpoint is not its latest)."""
  return learned['workdir']


def test_workdir_layout(trained_workdir):
  names = set(os.listdir(trained_workdir))
  assert {
    'config.json',
    'dataset_meta.json',
    'checkpoints',
    'tensorboard',
    'metrics.jsonl',
    'training_curves.png',
  } <= names
  assert os.listdir(os.path.join(trained_workdir, 'tensorboard'))
  assert os.listdir(os.path.join(trained_workdir, 'checkpoints', 'best'))
  record = read_metrics(trained_workdir)[-1]
  for key in (
    'step',
    'train_loss',
    'train_accuracy',
    'val_loss',
    'val_accuracy',
    'val_macro_f1',
    'val_top5',
    'examples_per_sec',
  ):
    assert key in record
  assert record['val_examples'] == 13


def test_evaluate_writes_confusion_and_counts_each_example_once(trained_workdir, dataset):
  report = evaluate.evaluate_workdir(trained_workdir, 'test')
  assert report['examples'] == dataset[1].split_sizes['test'] == 11
  confusion = np.array(report['confusion_matrix'])
  assert confusion.shape == (3, 3) and confusion.sum() == 11
  # Rows are the true words (test clip i says word i % 3), columns the predicted ones.
  np.testing.assert_array_equal(confusion.sum(axis=1), [4, 4, 3])
  assert not np.array_equal(confusion.sum(axis=0), [4, 4, 3])  # so a transpose would show
  assert np.isclose(report['accuracy'], np.trace(confusion) / 11)
  assert 0 < report['accuracy'] < 1
  with open(os.path.join(trained_workdir, 'eval_test.json')) as f:
    assert json.load(f)['confusion_matrix'] == report['confusion_matrix']
  with open(os.path.join(trained_workdir, 'confusion_test.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert report['per_class_accuracy'] == pytest.approx(
    {
      name: confusion[i, i] / confusion[i].sum()
      for i, name in enumerate(('about', 'black', 'close'))
    }
  )


def test_evaluate_reports_each_speakers_accuracy_weakest_first(trained_workdir, dataset):
  from lipjax import data_source
  from lipjax import predict

  report = evaluate.evaluate_workdir(trained_workdir, 'test')
  # The same checkpoint clip by clip through predict, each clip grouped by its stored speaker.
  source = data_source.SplitSource(dataset[0], 'test')
  stored = source.__getitems__(range(len(source)))
  probabilities = predict.Predictor(trained_workdir).probabilities(
    [data_source.model_example(e) for e in stored], batch_size=4
  )
  hits = {}
  for example, p in zip(stored, probabilities):
    hits.setdefault(example['speaker'], []).append(int(np.argmax(p)) == int(example['label']))
  assert sorted(hits) == ['spk0', 'spk1', 'spk2', 'spk3']  # test clip i is speaker spk{i % 4}
  expected = {s: {'examples': len(h), 'accuracy': float(np.mean(h))} for s, h in hits.items()}
  assert report['per_speaker'] == expected
  assert len({v['accuracy'] for v in expected.values()}) > 2  # a mix-up of speakers would show
  accuracies = [v['accuracy'] for v in report['per_speaker'].values()]
  assert accuracies == sorted(accuracies)  # the weakest speaker first
  with open(os.path.join(trained_workdir, 'eval_test.json')) as f:
    assert json.load(f)['per_speaker'] == report['per_speaker']


def first_best_step(records):
  """The step of the first evaluation with the highest val accuracy."""
  return max(records, key=lambda r: r['val_accuracy'])['step']


def test_best_checkpoint_is_the_first_val_accuracy_peak_and_evaluate_restores_it(learned):
  records = {r['step']: r for r in learned['records']}
  best = first_best_step(learned['records'])
  assert os.listdir(os.path.join(learned['workdir'], 'checkpoints', 'best')) == [str(best)]
  assert best < learned['latest_step']
  # It learned (3 words: chance is 1/3), then the ascent took it away.
  assert records[best]['val_accuracy'] > 0.6
  assert records[best]['val_accuracy'] > records[learned['latest_step']]['val_accuracy'] + 0.2
  # Evaluating the val split again gives what training recorded at the best step, not the last.
  report = evaluate.evaluate_workdir(learned['workdir'], 'val')
  assert (report['checkpoint'], report['step']) == ('best', best)
  assert report['accuracy'] == records[best]['val_accuracy']
  assert report['loss'] == pytest.approx(records[best]['val_loss'], rel=1e-5)
  assert (
    checkpoint_progress(learned['workdir'], 'best', best)['best_val_accuracy']
    == (records[best]['val_accuracy'])
  )


def test_cli_reports_a_missing_data_set_in_one_line(tmp_path):
  missing = str(tmp_path / 'no_such_data')
  result = run_python(
    [
      '-m',
      'lipjax.train',
      '--config',
      'configs/test.py',
      '--workdir',
      str(tmp_path / 'w'),
      f'--config.data_dir={missing}',
    ]
  )
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith('lipjax.train: error: data set')
  assert 'Traceback' not in result.stderr


def stalled(test_config):
  """50 steps evaluated at each, patience 2, learning rate 0: val accuracy never improves."""
  test_config.learning_rate = 0.0
  test_config.eval_every_steps = 1
  test_config.patience = 2
  test_config.num_train_steps = 50
  return test_config


def test_early_stopping_on_val_accuracy_and_rerun_does_nothing(test_config, tmp_path):
  test_config = stalled(test_config)
  workdir = str(tmp_path / 'stopped')
  train.train_and_evaluate(test_config, workdir)
  assert [m['step'] for m in read_metrics(workdir)] == [1, 2, 3]
  _, progress = latest(workdir)
  assert progress['stopped_early'] and progress['step'] == 3
  train.train_and_evaluate(test_config, workdir)
  assert [m['step'] for m in read_metrics(workdir)] == [1, 2, 3]


def test_early_stopping_waits_for_min_train_steps(test_config, tmp_path):
  # The run above, told not to stop before step 6: patience is spent at step 3, the run
  # goes on to step 6 and stops there, not at the end (50).
  test_config = stalled(test_config)
  test_config.min_train_steps = 6
  workdir = str(tmp_path / 'waited')
  train.train_and_evaluate(test_config, workdir)
  assert [m['step'] for m in read_metrics(workdir)] == [1, 2, 3, 4, 5, 6]
  _, progress = latest(workdir)
  assert progress['stopped_early'] and progress['step'] == 6


def smoothed_cross_entropy_by_hand(logits, label, smoothing):
  """-sum(target * log softmax) with target (1 - s) one-hot + s / C, in float64 numpy."""
  logits = np.asarray(logits, np.float64)
  log_p = logits - np.log(np.sum(np.exp(logits)))
  target = np.full(len(logits), smoothing / len(logits))
  target[label] += 1.0 - smoothing
  return -np.sum(target * log_p)


def test_cross_entropy_smooths_the_labels():
  logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], np.float32)
  labels = np.array([0, 1])
  # Example 0: log-softmax [-0.2413, -1.7413, -3.2413]; 0.9333 * 0.2413 + 0.0333 * 4.9826.
  np.testing.assert_allclose(train.cross_entropy(logits, labels, 0.1)[0], 0.39130, rtol=1e-4)
  for smoothing in (0.0, 0.1, 0.3):
    np.testing.assert_allclose(
      train.cross_entropy(logits, labels, smoothing),
      [smoothed_cross_entropy_by_hand(x, y, smoothing) for x, y in zip(logits, labels)],
      rtol=1e-5,
    )


def test_mixup_loss_interpolates_the_two_labels_losses():
  logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], np.float32)
  labels, partners = np.array([0, 2]), np.array([1, 0])
  batch = {'label': labels, 'mix_label': partners, 'mix_weight': np.array([0.7, 1.0], np.float32)}
  by_hand = [
    0.7 * smoothed_cross_entropy_by_hand(logits[0], 0, 0.1)
    + 0.3 * smoothed_cross_entropy_by_hand(logits[0], 1, 0.1),
    smoothed_cross_entropy_by_hand(logits[1], 2, 0.1),
  ]
  np.testing.assert_allclose(train.mixed_cross_entropy(logits, batch, 0.1), by_hand, rtol=1e-5)


def test_training_loss_is_the_label_smoothed_loss_of_the_config(test_config, tmp_path):
  # One step at learning rate 0 leaves the initial parameters in the checkpoint; without
  # dropout or augmentation the recorded train loss is then a function of them and batch 0.
  test_config.learning_rate = 0.0
  test_config.num_train_steps = test_config.eval_every_steps = 1
  test_config.model.dropout_rate = 0.0
  test_config.label_smoothing = 0.5
  for key, value in test_config.augment.items():
    test_config.augment[key] = type(value)(0)
  workdir = str(tmp_path / 'one_step')
  train.train_and_evaluate(test_config, workdir)
  (record,) = read_metrics(workdir)
  meta = train.load_dataset_meta(test_config.data_dir)
  model = models.create_model(test_config, meta)
  import orbax.checkpoint as ocp

  params = ocp.StandardCheckpointer().restore(
    os.path.join(checkpoint_dir(workdir, 'latest', 1), 'state')
  )['params']
  batch = {k: v[0] for k, v in next(input_pipeline.train_iterator(test_config, meta, 0, 1)).items()}
  logits = model.apply({'params': params}, batch, train=False)
  smoothed = float(np.mean(train.cross_entropy(logits, batch['label'], 0.5)))
  plain = float(np.mean(train.cross_entropy(logits, batch['label'], 0.0)))
  assert abs(smoothed - plain) > 1e-3, (smoothed, plain)
  assert record['train_loss'] == pytest.approx(smoothed, rel=1e-5)
