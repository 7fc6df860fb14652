"""Shards on disk -> examples by index: both file formats, bad shards named, no TensorFlow."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lipjax import data_source

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NO_TENSORFLOW = os.path.join(REPO, 'tests', 'no_tensorflow')


def test_array_record_and_tfrecord_shards_hold_the_same_examples(dataset, tfrecord_twin):
  import tensorflow_datasets as tfds

  assert tfds.builder_from_directory(dataset[0]).info.file_format.value == 'array_record'
  assert tfds.builder_from_directory(tfrecord_twin).info.file_format.value == 'tfrecord'
  for split in ('train', 'val', 'test'):
    array_record = data_source.SplitSource(dataset[0], split)
    tfrecord = data_source.SplitSource(tfrecord_twin, split)
    assert len(array_record) == len(tfrecord) > 0
    for a, b in zip(
      array_record.__getitems__(range(len(array_record))),
      tfrecord.__getitems__(range(len(tfrecord))),
    ):
      assert a.keys() == b.keys()
      for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  example = data_source.SplitSource(dataset[0], 'val')[3]
  assert example['landmarks'].shape == (12, 88, 3) and example['video_id'] == 'val_000006'
  assert isinstance(example['speaker'], str) and isinstance(example['label'], int)


def test_a_split_reads_by_index_across_its_shard_files(dataset):
  source = data_source.SplitSource(dataset[0], 'train')  # 2 files of 24
  assert source.locate(0)[1] == 0 and source.locate(24) == (source.locate(47)[0], 0)
  picked = source.__getitems__([30, 2, 30])
  assert picked[0]['video_id'] == picked[2]['video_id'] != picked[1]['video_id']
  with pytest.raises(IndexError, match='no example 48; it has 48'):
    source[48]


def copy_with(data_dir, tmp_path, damage):
  """A copy of a data set whose second val shard `damage(path)` spoils; returns (copy, path)."""
  copy = str(tmp_path / 'copy')
  shutil.copytree(data_dir, copy)
  (path,) = [
    os.path.join(copy, n) for n in sorted(os.listdir(copy)) if '-val.' in n and '00001-of' in n
  ]
  damage(path)
  return copy, path


def truncate(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def scribble(path):
  """Overwrites bytes inside the first record's body (not the file's framing)."""
  with open(path, 'r+b') as f:
    f.seek(200)
    f.write(b'\x5a' * 64)


@pytest.mark.parametrize('fmt', ['array_record', 'tfrecord'])
def test_a_truncated_shard_is_named_when_its_split_opens(dataset, tfrecord_twin, tmp_path, fmt):
  copy, bad = copy_with(dataset[0] if fmt == 'array_record' else tfrecord_twin, tmp_path, truncate)
  with pytest.raises(data_source.ShardReadError) as error:
    data_source.SplitSource(copy, 'val')
  assert str(error.value).startswith(f'{bad}: ') and 're-run extraction' in str(error.value)
  data_source.SplitSource(copy, 'train')  # the other splits are whole


@pytest.mark.parametrize('fmt', ['array_record', 'tfrecord'])
def test_a_corrupt_record_is_named_when_it_is_read(dataset, tfrecord_twin, tmp_path, fmt):
  copy, bad = copy_with(dataset[0] if fmt == 'array_record' else tfrecord_twin, tmp_path, scribble)
  source = data_source.SplitSource(copy, 'val')  # the framing is intact: it opens
  with pytest.raises(data_source.ShardReadError) as error:
    source.__getitems__(range(len(source)))
  assert str(error.value).startswith(f'{bad}: ') and 're-run extraction' in str(error.value)


TRAIN_WITHOUT_TENSORFLOW = textwrap.dedent("""
  import importlib.util, json, os, sys
  assert importlib.util.find_spec('tensorflow') is None  # as on a host without it
  from configs import test
  from lipjax import checkpoints, evaluate, input_pipeline, predict, train
  data_dir, workdir = sys.argv[1:3]
  config = test.get_config()
  config.data_dir, config.num_train_steps = data_dir, 4
  train.train_and_evaluate(config, workdir)
  config.num_train_steps = 6  # the same command with more steps resumes at step 4
  record = train.train_and_evaluate(config, workdir)
  report = evaluate.evaluate_workdir(workdir, 'test')
  examples = input_pipeline.load_split(config, 'test')
  batch = examples.batch(range(len(examples)))
  rows = [{key: batch[key][i] for key in batch} for i in range(len(examples))]
  probabilities = predict.Predictor(workdir).probabilities(rows, batch_size=4)
  other_formats = [evaluate.evaluate_workdir(workdir, 'test', data_dir=d)['accuracy']
                   for d in sys.argv[3:]]
  print(json.dumps({
    'final_step': record['step'],
    'latest': checkpoints.managers(workdir, 2)[0].all_steps(),
    'accuracy': report['accuracy'], 'other_formats': other_formats,
    'predicted': probabilities.argmax(-1).tolist(),
    'events': [n for n in os.listdir(os.path.join(workdir, 'tensorboard')) if 'tfevents' in n],
    'tensorflow': sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'),
  }))
""")


def run_without_tensorflow(tmp_path, *args):
  """Runs TRAIN_WITHOUT_TENSORFLOW with TensorFlow hidden; returns its JSON summary."""
  script = tmp_path / 'no_tf.py'
  script.write_text(TRAIN_WITHOUT_TENSORFLOW)
  result = subprocess.run(
    [sys.executable, str(script), *args],
    cwd=REPO,
    env=dict(os.environ, PYTHONPATH=os.pathsep.join([NO_TENSORFLOW, REPO])),
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_training_evaluation_prediction_and_resume_run_without_tensorflow(dataset, tmp_path):
  out = run_without_tensorflow(tmp_path, dataset[0], str(tmp_path / 'w'))
  assert out['tensorflow'] == []
  assert out['final_step'] == 6 and out['latest'] == [4, 6]
  assert len(out['predicted']) == 11 and out['events']


def test_a_tfrecord_data_set_evaluates_as_its_array_record_twin_without_tensorflow(
  dataset, tfrecord_twin, tmp_path
):
  out = run_without_tensorflow(tmp_path, dataset[0], str(tmp_path / 'w'), tfrecord_twin)
  assert out['tensorflow'] == []
  assert out['other_formats'] == [out['accuracy']]  # data sets extracted before ArrayRecord
