"""Tiny data sets written as real ArrayRecord shards with tfds metadata, shared by the tests.

Content is made up but learnable (extraction/random_examples.py): each word opens
the mouth with its own rhythm, and AU/geometry carry a weak word-dependent
offset; a made-up sentence is a few such words in a row with still frames around
them. The graph is a fixed connected ring with chords over the 88 ROI nodes.
"""

import os

from checkpoint_files import read_metrics
import numpy as np
import pytest

from extraction import random_examples
from extraction import schema
from extraction import shards
from lipjax import graphs

CLASS_NAMES = ['about', 'black', 'close']
MAX_FRAMES = 12
SPLIT_SIZES = {'train': 48, 'val': 13, 'test': 11}  # val and test leave a partial eval batch


def write_synthetic_dataset(
  data_dir: str, seed: int = 0, file_format: str = shards.ARRAY_RECORD
) -> schema.DatasetMeta:
  """Writes the synthetic splits as shards + metadata; returns the metadata."""
  return random_examples.write_dataset(
    data_dir,
    SPLIT_SIZES,
    CLASS_NAMES,
    MAX_FRAMES,
    num_shards=2,
    edges=graphs.ring_edges(schema.NUM_NODES),
    file_format=file_format,
    seed=seed,
  )


SENTENCE_MAX_FRAMES = 36
SENTENCE_SPLITS = {'train': 64, 'val': 13, 'test': 11}


def write_sentence_dataset(data_dir: str, seed: int = 0) -> schema.DatasetMeta:
  """Writes made-up sentence splits (tokens, token_length, text; no label); returns the metadata."""
  return random_examples.write_sentence_dataset(
    data_dir,
    SENTENCE_SPLITS,
    SENTENCE_MAX_FRAMES,
    num_shards=2,
    edges=graphs.ring_edges(schema.NUM_NODES),
    seed=seed,
  )


@pytest.fixture(scope='session', autouse=True)
def compilation_cache(tmp_path_factory):
  """One persistent XLA cache for this session and its subprocesses: each program compiles once.

  LIPJAX_TEST_XLA_CACHE names a folder to keep it across sessions (experiments/mutants.py).
  """
  import jax

  cache_dir = os.environ.get('LIPJAX_TEST_XLA_CACHE') or str(tmp_path_factory.mktemp('xla_cache'))
  jax.config.update('jax_compilation_cache_dir', cache_dir)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = cache_dir
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  return cache_dir


@pytest.fixture(scope='session')
def dataset(tmp_path_factory):
  """(data_dir, meta) of the shared synthetic data set."""
  data_dir = str(tmp_path_factory.mktemp('data') / 'synthetic')
  return data_dir, write_synthetic_dataset(data_dir)


@pytest.fixture(scope='session')
def tfrecord_twin(tmp_path_factory):
  """The shared synthetic data set's examples written as TFRecord shards (as before ArrayRecord).

  Writing TFRecord needs TensorFlow; the base install (the newest-releases venv of CI) has none.
  """
  pytest.importorskip('tensorflow')
  data_dir = str(tmp_path_factory.mktemp('tfrecord') / 'synthetic')
  write_synthetic_dataset(data_dir, file_format=shards.TFRECORD)
  return data_dir


@pytest.fixture(scope='session')
def sentence_dataset(tmp_path_factory):
  """(data_dir, meta) of the shared made-up sentence data set."""
  data_dir = str(tmp_path_factory.mktemp('sentences') / 'synthetic')
  return data_dir, write_sentence_dataset(data_dir)


def sentence_config(data_dir: str):
  """configs/test.py for the made-up sentences: no mixing, CTC's usual fast start.

  A larger learning rate (3e-2) and LSTM (64) than the words' and no hidden head
  layer take the reader past CTC's all-blank plateau within about 150 steps; the
  plain centring keeps the words' AU offsets, which rest centring would remove.
  """
  from configs import test as test_config_lib

  config = test_config_lib.get_config()
  config.data_dir = data_dir
  config.augment.mixup_alpha = 0.0
  config.model.centre = 'none'
  config.model.mask_mode = 'frames'
  config.model.head_hidden = ()
  config.model.lstm_hidden = 64
  config.learning_rate = 3e-2
  config.warmup_steps = 20
  return config


@pytest.fixture()
def test_config(dataset):
  """configs/test.py pointed at the synthetic data set."""
  from configs import test as test_config_lib

  config = test_config_lib.get_config()
  config.data_dir = dataset[0]
  return config


def learned_config(data_dir: str):
  """configs/test.py made to learn the synthetic words within a few dozen steps.

  Rest centring would remove the words' AU offsets and the time augmentations
  blur their rhythm; without them the tiny model separates most val clips.
  """
  from configs import test as test_config_lib

  config = test_config_lib.get_config()
  config.data_dir = data_dir
  config.model.centre = 'none'
  for key in ('time_warp', 'speed', 'time_shift', 'mixup_alpha', 'yaw_degrees', 'pitch_degrees'):
    config.augment[key] = type(config.augment[key])(0)
  config.num_train_steps = LEARN_STEPS
  config.eval_every_steps = config.checkpoint_every_steps = 5
  return config


LEARN_STEPS = 25  # then UNLEARN_STEPS more of gradient ascent
UNLEARN_STEPS = 10


def checkpoint_steps(workdir: str, which: str) -> list[int]:
  """The steps saved under checkpoints/{which}/, ascending."""
  folder = os.path.join(workdir, 'checkpoints', which)
  return sorted(int(name) for name in os.listdir(folder) if name.isdigit())


def train_then_unlearn(config, workdir: str) -> dict:
  """Trains, then resumes with a negative learning rate, so the best checkpoint is not the latest.

  Gradient ascent on the loss drives val accuracy down from where training
  left it, and ties keep the earlier best checkpoint, so the best step is one
  of the first run's evaluations with a wide margin for rounding differences.
  Returns the workdir, best and latest steps and the metrics records.
  """
  from lipjax import train

  train.train_and_evaluate(config, workdir)
  config.num_train_steps += UNLEARN_STEPS
  config.learning_rate = -0.05
  train.train_and_evaluate(config, workdir)
  records = read_metrics(workdir)
  (best_step,) = checkpoint_steps(workdir, 'best')
  return {
    'workdir': workdir,
    'best_step': best_step,
    'latest_step': checkpoint_steps(workdir, 'latest')[-1],
    'records': records,
  }


@pytest.fixture(scope='session')
def learned(tmp_path_factory, dataset):
  """A workdir whose model learned the synthetic words, then lost them: best != latest.

  Keys: workdir, best_step, latest_step, records (metrics.jsonl).
  """
  workdir = str(tmp_path_factory.mktemp('learned') / 'workdir')
  run = train_then_unlearn(learned_config(dataset[0]), workdir)
  # Which step is best, and by how much, is for test_train.py to check.
  assert run['best_step'] <= LEARN_STEPS < run['latest_step'], run
  return run


# Speech intervals (seconds) inside the 4 s carphone clip; each becomes a different 29-frame cut.
CARPHONE_INTERVALS = [(0.3 + 0.25 * k, 0.9 + 0.25 * k) for k in range(14)]
CARPHONE_SPLITS = {'train': [0, 1, 3, 4, 6, 8, 11, 13], 'val': [5, 9], 'test': [2, 7, 10, 12]}


def carphone_word(k: int) -> str:
  """The label of carphone cut k: where in the video its interval starts."""
  return 'EARLY' if CARPHONE_INTERVALS[k][0] < 1.8 else 'LATE'


@pytest.fixture(scope='session')
def carphone_run(tmp_path_factory):
  """Carphone cuts (both words in every split), a faceless video, a bad row -> extraction -> training.

  Keys: root (videos/clipNN.mp4, videos/blank.mp4), data_dir, report (the
  extraction report), workdir, best_step, latest_step, records, intervals,
  splits (clip numbers per split), word (clip number -> label).
  """
  import shutil

  import cv2

  from extraction import pipeline
  from extraction.synthetic.faces import carphone_path

  root = tmp_path_factory.mktemp('carphone')
  videos = root / 'videos'
  videos.mkdir()
  rows = ['path,label,split,speaker,start,end']
  for split, clips in CARPHONE_SPLITS.items():
    for k in clips:
      shutil.copy(carphone_path(), videos / f'clip{k:02d}.mp4')
      start, end = CARPHONE_INTERVALS[k]
      rows.append(f'videos/clip{k:02d}.mp4,{carphone_word(k)},{split},s{k % 3},{start},{end}')
  writer = cv2.VideoWriter(
    str(videos / 'blank.mp4'), cv2.VideoWriter_fourcc(*'mp4v'), 25, (176, 144)
  )
  for _ in range(100):  # 4 s, as long as carphone, so any cut of it fits
    writer.write(np.full((144, 176, 3), 90, np.uint8))
  writer.release()
  rows.append('videos/blank.mp4,EARLY,train,s9,0.1,0.5')
  rows.append('videos/clip99.mp4,LATE,holdout,s9,0.1,0.5')  # rejected: no such split
  (root / 'manifest.csv').write_text('\n'.join(rows) + '\n')
  data_dir = str(root / 'data')
  report = pipeline.run(str(root / 'manifest.csv'), data_dir, workers=1, progress=False)
  assert report['written'] == 14 and report['failed'] == 2 and len(report['rejected']) == 1, report
  run = train_then_unlearn(learned_config(data_dir), str(root / 'workdir'))
  assert run['best_step'] <= LEARN_STEPS < run['latest_step'], run
  return dict(
    run,
    root=root,
    data_dir=data_dir,
    report=report,
    intervals=CARPHONE_INTERVALS,
    splits=CARPHONE_SPLITS,
    word=carphone_word,
  )
