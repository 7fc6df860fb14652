"""A workdir refuses what would mix two runs or two data sets, before it writes anything."""

import ast
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
from unittest import mock

from etils import epath
from etils.epath import gpath
from etils.epath import testing as epath_testing
import numpy as np
import pytest

from extraction import schema
from extraction import shards
from lipjax import metrics_log
from lipjax import plots
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
  train.train_and_evaluate(config, epath.Path(workdir))  # a workdir may be an epath.Path
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
  assert result.returncode == 2
  last = result.stderr.strip().splitlines()[-1]
  assert last == (
    'lipjax.train: error: bad command line: \'modle\'; Did you mean "model" '
    'instead of "modle"? (see --help for flags, configs/*.py for config keys)'
  )
  assert '\\n' not in result.stderr and "\\'" not in result.stderr
  assert 'Traceback' not in result.stderr
  assert not os.path.exists(tmp_path / 'w')


@pytest.fixture()
def truncated_dataset(dataset, tmp_path):
  """A copy of the synthetic data set with its second val shard cut in half."""
  data_dir = str(tmp_path / 'truncated')
  shutil.copytree(dataset[0], data_dir)
  bad = shards.shard_path(data_dir, 'val', 1, 2, shards.ARRAY_RECORD)
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
  assert result.returncode == 2
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'lipjax.train: error: {bad}: '), result.stderr[-2000:]
  assert last.endswith('re-run extraction') and 'Traceback' not in result.stderr
  result = run_cli(
    ['lipjax.evaluate', '--workdir', trained, '--split', 'val', f'--data_dir={data_dir}']
  )
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith(f'lipjax.evaluate: error: {bad}: ')


def test_a_corrupt_record_stops_evaluation_with_one_line_naming_its_shard(
  trained, dataset, tmp_path
):
  data_dir = str(tmp_path / 'corrupt')
  shutil.copytree(dataset[0], data_dir)
  bad = shards.shard_path(data_dir, 'test', 0, 2, shards.ARRAY_RECORD)
  with open(bad, 'r+b') as f:
    f.seek(200)  # inside the first record
    f.write(b'\xff' * 16)
  result = run_cli(['lipjax.evaluate', '--workdir', trained, f'--data_dir={data_dir}'])
  assert result.returncode == 2
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'lipjax.evaluate: error: {bad}: unreadable at'), result.stderr[-2000:]
  assert 'Traceback' not in result.stderr


@pytest.fixture()
def bucket(tmp_path):
  """A fake gs://bucket whose objects are the files under tmp_path/bucket (epath only).

  epath's gs:// backend is replaced by one that maps gs://bucket/... to that
  folder; plain open() or os.path on a gs:// path still finds nothing there.
  """
  root = tmp_path / 'bucket'
  root.mkdir()

  def local(location):
    text = os.fspath(location)
    assert text.startswith('gs://bucket'), text
    return str(root) + text[len('gs://bucket') :]

  one = lambda fn, location, *args, **kwargs: fn(local(location), *args, **kwargs)
  two = lambda fn, src, dst, *args, **kwargs: fn(local(src), local(dst), *args, **kwargs)
  names = ('open', 'exists', 'isdir', 'listdir', 'glob', 'makedirs', 'mkdir', 'remove')
  names += ('rmtree', 'stat', 'walk')
  # With TensorFlow installed epath sends gs:// to tf.io.gfile, past the backend mock.
  with (
    mock.patch.object(gpath, '_is_tf_installed', lambda: False),
    epath_testing.mock_epath(**{name: one for name in names}, rename=two, replace=two, copy=two),
  ):
    yield root


@pytest.mark.parametrize('as_path', [False, True], ids=['str', 'epath'])
def test_workdir_files_go_through_epath_to_a_gs_bucket(bucket, dataset, test_config, as_path):
  workdir = epath.Path('gs://bucket/run') if as_path else 'gs://bucket/run'
  meta = dataset[1]
  workdir_lib.check_compatible(workdir, test_config, meta)  # nothing there yet
  workdir_lib.write(workdir, test_config, meta)
  config, loaded_meta = workdir_lib.load(workdir)
  assert config.data_dir == test_config.data_dir and loaded_meta == meta
  workdir_lib.check_compatible(workdir, test_config, meta)
  for step in (3, 6):
    metrics_log.append(
      workdir,
      {'step': step, 'epoch': step / 6, 'train_loss': np.float32(1.0), 'train_accuracy': 0.5}
      | {'val_loss': 1.1, 'val_accuracy': 0.25},
    )
  metrics_log.truncate(workdir, 3)
  assert [r['step'] for r in metrics_log.read(workdir)] == [3]
  plots.learning_curves(metrics_log.read(workdir), workdir_lib.path(workdir, 'curves.png'))
  with workdir_lib.exclusive(workdir):  # no lock on a bucket, and no local folder made
    pass
  assert not pathlib.Path('gs:').exists()
  assert set(os.listdir(bucket / 'run')) == {
    workdir_lib.CONFIG,
    workdir_lib.DATASET_META,
    workdir_lib.METRICS,
    'curves.png',
  }
  assert (bucket / 'run' / 'curves.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_checkpoints_of_a_gs_workdir_stay_on_the_bucket(tmp_path, monkeypatch):
  # Orbax is given absolute paths; epath's absolute() would put the working directory
  # in front of gs://. (Orbax itself needs google-cloud-storage for gs://, not installed here.)
  monkeypatch.chdir(tmp_path)
  assert os.fspath(workdir_lib.absolute('gs://bucket/run/checkpoints')) == (
    'gs://bucket/run/checkpoints'
  )
  assert workdir_lib.absolute(epath.Path('run')) == epath.Path(tmp_path / 'run')
  assert workdir_lib.absolute('run').is_absolute()


# Plain file calls that a gs:// workdir or data_dir breaks; lipjax reaches files through epath.
LOCAL_ONLY_CALLS = {
  'open',
  'os.path.exists',
  'os.path.isfile',
  'os.path.isdir',
  'os.path.getsize',
  'os.makedirs',
  'os.mkdir',
  'os.listdir',
  'os.scandir',
  'os.walk',
  'os.remove',
  'os.rename',
  'os.replace',
  'glob.glob',
}
# (module, function) pairs allowed one: the workdir lock needs a local file for flock.
LOCAL_ONLY_ALLOWED = {('workdir.py', 'exclusive')}
# Modules that work on local files only, not on workdirs or data sets: an exported model
# folder (written and read), a camera or video file.
LOCAL_ONLY_MODULES = {'export.py', 'exported.py', 'stream.py'}


def dotted_name(node) -> str:
  """'os.path.exists' for the expression os.path.exists ('' for anything else)."""
  if isinstance(node, ast.Name):
    return node.id
  if isinstance(node, ast.Attribute):
    base = dotted_name(node.value)
    return f'{base}.{node.attr}' if base else ''
  return ''


def local_file_calls(node, function='<module>'):
  """(function, line, call) of every LOCAL_ONLY_CALLS call under node, by innermost function."""
  for child in ast.iter_child_nodes(node):
    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
      yield from local_file_calls(child, child.name)
      continue
    if isinstance(child, ast.Call):
      call = dotted_name(child.func)
      if call in LOCAL_ONLY_CALLS or call.startswith('shutil.'):
        yield function, child.lineno, call
    yield from local_file_calls(child, function)


def test_lipjax_reaches_files_only_through_epath():
  found = [
    f'{module.name}:{line} {function}: {call}()'
    for module in sorted(pathlib.Path(REPO, 'lipjax').glob('*.py'))
    for function, line, call in local_file_calls(ast.parse(module.read_text()))
    if (module.name, function) not in LOCAL_ONLY_ALLOWED and module.name not in LOCAL_ONLY_MODULES
  ]
  assert not found, 'use lipjax.workdir.path (etils.epath) instead:\n' + '\n'.join(found)
