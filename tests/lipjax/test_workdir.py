"""A workdir refuses what would mix two runs or two data sets, before it writes anything."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from extraction import schema
from extraction import shards
from lipjax import train
from lipjax import workdir as workdir_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def snapshot(workdir):
  """The bytes of the workdir's identity files."""
  return {
    name: open(os.path.join(workdir, name), 'rb').read()
    for name in (workdir_lib.CONFIG, workdir_lib.DATASET_META)
  }


def relabelled_dataset(dataset, tmp_path, class_names):
  """A copy of the synthetic data set (same shards) whose metadata names other classes."""
  data_dir = str(tmp_path / 'relabelled')
  shutil.copytree(dataset[0], data_dir)
  with open(os.path.join(data_dir, 'label.labels.txt'), 'w') as f:
    f.write('\n'.join(class_names) + '\n')
  assert schema.DatasetMeta.load(data_dir).class_names == class_names
  return data_dir


@pytest.fixture(scope='module')
def trained(tmp_path_factory, dataset):
  """A workdir trained for 2 steps on the synthetic data set."""
  from configs import test as test_config_lib

  config = test_config_lib.get_config()
  config.data_dir, config.num_train_steps, config.eval_every_steps = dataset[0], 2, 2
  workdir = str(tmp_path_factory.mktemp('trained'))
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.mark.parametrize(
  'class_names,message',
  [
    (['apple', 'banana', 'cherry'], r'was trained on 3 classes \(about, black, close\)'),
    (['apple', 'banana', 'cherry', 'damson'], r'this run.s data set .* has 4 classes'),
  ],
)
def test_resuming_against_other_classes_refuses_before_writing(
  trained, dataset, test_config, tmp_path, class_names, message
):
  workdir = str(tmp_path / 'copy')
  shutil.copytree(trained, workdir)
  before = snapshot(workdir)
  test_config.data_dir = relabelled_dataset(dataset, tmp_path, class_names)
  test_config.num_train_steps = 4
  with pytest.raises(workdir_lib.WorkdirError, match=message) as error:
    train.train_and_evaluate(test_config, workdir)
  assert '\n' not in str(error.value) and 'another --workdir' in str(error.value)
  assert snapshot(workdir) == before
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints', 'latest'))) == ['2']


def test_resuming_with_another_model_refuses(trained, test_config, tmp_path):
  workdir = str(tmp_path / 'copy')
  shutil.copytree(trained, workdir)
  before = snapshot(workdir)
  test_config.model.lstm_hidden = 32
  with pytest.raises(
    workdir_lib.WorkdirError,
    match=r'model.lstm_hidden=16, this run has '
    r'model.lstm_hidden=32',
  ):
    train.train_and_evaluate(test_config, workdir)
  assert snapshot(workdir) == before


def test_resuming_with_more_steps_is_allowed(trained, test_config, tmp_path):
  workdir = str(tmp_path / 'copy')
  shutil.copytree(trained, workdir)
  test_config.num_train_steps, test_config.eval_every_steps = 3, 3
  assert train.train_and_evaluate(test_config, workdir)['step'] == 3


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from lipjax import workdir
    with workdir.exclusive(sys.argv[1]):
      print('locked', flush=True)
      time.sleep(600)
""")


def test_a_second_run_in_the_same_workdir_refuses_until_the_first_dies(test_config, tmp_path):
  workdir = str(tmp_path / 'shared')
  holder = subprocess.Popen(
    [sys.executable, '-c', HOLD_LOCK, workdir],
    cwd=REPO,
    env=dict(os.environ, PYTHONPATH=REPO),
    stdout=subprocess.PIPE,
    text=True,
  )
  try:
    assert holder.stdout.readline().strip() == 'locked'
    with pytest.raises(
      workdir_lib.WorkdirError,
      match=rf'in use by a running training '
      rf'\(pid {holder.pid}\)',
    ):
      train.train_and_evaluate(test_config, workdir)
    assert not os.path.exists(os.path.join(workdir, workdir_lib.CONFIG))
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  test_config.num_train_steps = 2
  assert train.train_and_evaluate(test_config, workdir)['step'] == 2  # a killed holder frees it


def test_bad_settings_fail_before_the_workdir_is_touched(trained, test_config, tmp_path):
  workdir = str(tmp_path / 'copy')
  shutil.copytree(trained, workdir)
  before = snapshot(workdir)
  for key, value, message in [
    ('batch_size', 1000, 'fewer than batch_size=1000'),
    ('num_train_steps', 0, 'num_train_steps=0; it must be positive'),
    ('num_train_steps', -5, 'num_train_steps=-5'),
  ]:
    config = test_config.copy_and_resolve_references()
    setattr(config, key, value)
    with pytest.raises(ValueError, match=message):
      train.train_and_evaluate(config, workdir)
    assert snapshot(workdir) == before


def test_a_single_class_data_set_is_refused(dataset, test_config, tmp_path):
  test_config.data_dir = relabelled_dataset(dataset, tmp_path, ['only'])
  workdir = str(tmp_path / 'one_class')
  with pytest.raises(
    ValueError,
    match=r'has 1 class\(es\) \(\[.only.\]\); a classifier needs '
    'at least 2',
  ):
    train.train_and_evaluate(test_config, workdir)
  assert not os.path.exists(workdir)


def run_cli(args, timeout=240):
  """Runs `python -m ...` from the repo root; returns the CompletedProcess."""
  return subprocess.run(
    [sys.executable, '-m'] + args,
    cwd=REPO,
    capture_output=True,
    text=True,
    env=dict(os.environ, PYTHONPATH=REPO),
    timeout=timeout,
    check=False,
  )


def test_an_unknown_config_key_is_one_readable_line(tmp_path):
  result = run_cli(
    [
      'lipjax.train',
      '--config',
      'configs/test.py',
      '--workdir',
      str(tmp_path / 'w'),
      '--config.modle.lstm_hidden=3',
    ]
  )
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last == (
    'lipjax.train: error: bad command line: \'modle\'; Did you mean "model" '
    'instead of "modle"? (see --helpfull for flags, configs/*.py for config keys)'
  )
  assert '\\n' not in result.stderr and "\\'" not in result.stderr
  assert 'Traceback' not in result.stderr
  assert not os.path.exists(tmp_path / 'w')


@pytest.fixture()
def truncated_dataset(dataset, tmp_path):
  """A copy of the synthetic data set with its second val shard cut in half."""
  data_dir = str(tmp_path / 'truncated')
  shutil.copytree(dataset[0], data_dir)
  bad = shards.shard_path(data_dir, 'val', 1, 2)
  with open(bad, 'r+b') as f:
    f.truncate(os.path.getsize(bad) // 2)
  return data_dir, bad


def test_a_truncated_shard_is_one_line_naming_it_in_train_and_evaluate(
  trained, truncated_dataset, tmp_path
):
  data_dir, bad = truncated_dataset
  result = run_cli(
    [
      'lipjax.train',
      '--config',
      'configs/test.py',
      '--workdir',
      str(tmp_path / 'w'),
      f'--config.data_dir={data_dir}',
    ]
  )
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'lipjax.train: error: {bad}: holds 3 records, the metadata says 6'), (
    result.stderr[-2000:]
  )
  assert 'Traceback' not in result.stderr
  result = run_cli(
    ['lipjax.evaluate', '--workdir', trained, '--split', 'val', f'--data_dir={data_dir}']
  )
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(f'lipjax.evaluate: error: {bad}: ')


def test_a_corrupt_record_is_named(dataset, tmp_path):
  data_dir = str(tmp_path / 'corrupt')
  shutil.copytree(dataset[0], data_dir)
  bad = shards.shard_path(data_dir, 'train', 0, 2)
  with open(bad, 'r+b') as f:
    f.seek(40)
    f.write(b'\xff' * 16)
  message = shards.find_bad_shard(data_dir, 'train')
  assert message.startswith(f'{bad}: unreadable after 0 of ')
  assert shards.find_bad_shard(dataset[0], 'train') is None
