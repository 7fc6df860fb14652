"""End-to-end training on the synthetic shards: devices, resumption, evaluation, CLI errors."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from extraction import schema
from lipjax import checkpoints
from lipjax import evaluate
from lipjax import models
from lipjax import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(args, env_extra=None, timeout=240):
  """Runs `python args...` from the repo root; returns the CompletedProcess."""
  env = dict(os.environ, PYTHONPATH=REPO, **(env_extra or {}))
  return subprocess.run([sys.executable] + args, cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)


def read_metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def final_params(config, workdir):
  """Parameters of the latest checkpoint in a workdir (as numpy leaves)."""
  meta = schema.DatasetMeta.load_json(os.path.join(workdir, 'dataset_meta.json'))
  state = train.create_train_state(config, meta, models.create_model(config, meta),
                                   jax.random.PRNGKey(0))
  latest, _ = checkpoints.managers(workdir, config.keep_checkpoints)
  state, progress = checkpoints.restore(latest, state)
  return jax.tree.leaves(state.params), progress


def test_one_and_two_devices_give_the_same_loss_trajectory(test_config, tmp_path):
  # Same global batch; dropout off because its masks are drawn per device.
  test_config.model.dropout_rate = 0.0
  test_config.eval_every_steps = 1
  one = str(tmp_path / 'one')
  train.train_and_evaluate(test_config, one)
  two = str(tmp_path / 'two')
  result = run_python(
      ['-m', 'lipjax.train', '--config', 'configs/test.py', '--workdir', two,
       f'--config.data_dir={test_config.data_dir}', '--config.model.dropout_rate=0.0',
       '--config.eval_every_steps=1'],
      env_extra={'XLA_FLAGS': '--xla_force_host_platform_device_count=2'})
  assert result.returncode == 0, result.stderr[-3000:]
  one_metrics, two_metrics = read_metrics(one), read_metrics(two)
  assert [m['devices'] for m in one_metrics] == [1] * 6
  assert [m['devices'] for m in two_metrics] == [2] * 6
  for key in ('train_loss', 'val_loss'):
    np.testing.assert_allclose([m[key] for m in one_metrics], [m[key] for m in two_metrics],
                               rtol=2e-4, atol=2e-5)
  assert one_metrics[-1]['train_loss'] != one_metrics[0]['train_loss']


KILL_AFTER_CHECKPOINT = textwrap.dedent('''
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
''')


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

  straight_params, straight_progress = final_params(test_config, straight)
  resumed_params, resumed_progress = final_params(test_config, interrupted)
  assert resumed_progress['step'] == straight_progress['step'] == 8
  assert resumed_progress['epoch'] == 8 // 6 and resumed_progress['step_in_epoch'] == 8 % 6
  for a, b in zip(straight_params, resumed_params):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert [m['step'] for m in read_metrics(interrupted)] == [4, 8]


@pytest.fixture(scope='module')
def trained_workdir(tmp_path_factory, dataset):
  from configs import test as test_config_lib  # pylint: disable=g-import-not-at-top
  config = test_config_lib.get_config()
  config.data_dir = dataset[0]
  workdir = str(tmp_path_factory.mktemp('trained'))
  train.train_and_evaluate(config, workdir)
  return workdir


def test_workdir_layout(trained_workdir):
  names = set(os.listdir(trained_workdir))
  assert {'config.json', 'dataset_meta.json', 'checkpoints', 'tensorboard', 'metrics.jsonl',
          'training_curves.png'} <= names
  assert os.listdir(os.path.join(trained_workdir, 'tensorboard'))
  assert os.listdir(os.path.join(trained_workdir, 'checkpoints', 'best'))
  record = read_metrics(trained_workdir)[-1]
  for key in ('step', 'train_loss', 'train_accuracy', 'val_loss', 'val_accuracy',
              'val_macro_f1', 'val_top5', 'examples_per_sec'):
    assert key in record
  assert record['val_examples'] == 13


def test_evaluate_writes_confusion_and_counts_each_example_once(trained_workdir, dataset):
  report = evaluate.evaluate_workdir(trained_workdir, 'test')
  assert report['examples'] == dataset[1].split_sizes['test'] == 11
  confusion = np.array(report['confusion_matrix'])
  assert confusion.shape == (3, 3) and confusion.sum() == 11
  assert np.isclose(report['accuracy'], np.trace(confusion) / 11)
  with open(os.path.join(trained_workdir, 'eval_test.json')) as f:
    assert json.load(f)['confusion_matrix'] == report['confusion_matrix']
  with open(os.path.join(trained_workdir, 'confusion_test.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert set(report['per_class_accuracy']) == {'about', 'black', 'close'}


def test_cli_reports_a_missing_data_set_in_one_line(tmp_path):
  missing = str(tmp_path / 'no_such_data')
  result = run_python(['-m', 'lipjax.train', '--config', 'configs/test.py',
                       '--workdir', str(tmp_path / 'w'), f'--config.data_dir={missing}'])
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith('lipjax.train: error: data set')
  assert 'Traceback' not in result.stderr


def test_early_stopping_on_val_accuracy_and_rerun_does_nothing(test_config, tmp_path):
  # With a zero learning rate val accuracy cannot improve after the first evaluation.
  test_config.learning_rate = 0.0
  test_config.eval_every_steps = 1
  test_config.patience = 2
  test_config.num_train_steps = 50
  workdir = str(tmp_path / 'stopped')
  train.train_and_evaluate(test_config, workdir)
  assert [m['step'] for m in read_metrics(workdir)] == [1, 2, 3]
  _, progress = final_params(test_config, workdir)
  assert progress['stopped_early'] and progress['step'] == 3
  train.train_and_evaluate(test_config, workdir)
  assert [m['step'] for m in read_metrics(workdir)] == [1, 2, 3]


def test_mixup_loss_interpolates_the_two_labels_losses():
  logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], np.float32)
  labels, partners = np.array([0, 2]), np.array([1, 0])
  own = train.cross_entropy(logits, labels, 0.1)
  other = train.cross_entropy(logits, partners, 0.1)
  batch = {'label': labels, 'mix_label': partners, 'mix_weight': np.array([0.7, 1.0], np.float32)}
  np.testing.assert_allclose(train.mixed_cross_entropy(logits, batch, 0.1),
                             [0.7 * own[0] + 0.3 * other[0], own[1]], rtol=1e-6)
