"""A tiny data set written as real TFRecord shards with tfds metadata, shared by the tests.

Content is synthetic but learnable: each word opens the mouth with its own
rhythm, and AU/geometry carry a weak word-dependent offset. The graph is a
fixed connected ring with chords over the 88 ROI nodes.
"""

import os

from checkpoint_files import read_metrics
import numpy as np
import pytest

from extraction import schema
from extraction import shards
from lipjax import graphs

CLASS_NAMES = ['about', 'black', 'close']
MAX_FRAMES = 12
SPLIT_SIZES = {'train': 48, 'val': 13, 'test': 11}  # val and test leave a partial eval batch


def synthetic_example(rng, label: int, speaker: str, video_id: str) -> dict:
  """One padded example whose mouth opens at a word-specific rate."""
  length = int(rng.integers(7, MAX_FRAMES + 1))
  base = 0.3 + 0.4 * np.random.default_rng(0).random((schema.NUM_NODES, 3))  # [N, 3] one face
  t = np.arange(length)[:, None]
  opening = 0.05 * np.sin(2 * np.pi * (label + 1) * t / 8.0)  # [L, 1]
  landmarks = np.repeat(base[None], length, axis=0)  # [L, N, 3]
  landmarks[:, : schema.NUM_NODES // 2, 1] += opening
  landmarks += rng.normal(0, 0.004, landmarks.shape)
  au = np.clip(0.3 + 0.1 * label + rng.normal(0, 0.1, (length, schema.NUM_AU)), 0, 1)
  geometry = np.clip(0.5 + rng.normal(0, 0.1, (length, schema.NUM_GEOMETRY)), 0, 1)
  speech = np.zeros(length)
  speech[1 : length - 1] = 1
  return schema.pad_example(
    landmarks=landmarks.astype(np.float32),
    au=au,
    geometry=geometry,
    face_mask=np.ones(length),
    speech_mask=speech,
    label=label,
    speaker=speaker,
    video_id=video_id,
    max_frames=MAX_FRAMES,
  )


def write_synthetic_dataset(data_dir: str, seed: int = 0) -> schema.DatasetMeta:
  """Writes the synthetic splits as shards + metadata; returns the metadata."""
  rng = np.random.default_rng(seed)
  examples = {}
  for split, size in SPLIT_SIZES.items():
    examples[split] = [
      synthetic_example(rng, i % len(CLASS_NAMES), f'spk{i % 4}', f'{split}_{i:03d}')
      for i in range(size)
    ]
  senders, receivers = graphs.ring_edges(schema.NUM_NODES)
  meta = schema.DatasetMeta.for_roi(
    class_names=CLASS_NAMES,
    max_frames=MAX_FRAMES,
    fps=25.0,
    senders=senders,
    receivers=receivers,
    extraction={'source': 'tests/lipjax/conftest.py'},
  )
  shards.write_dataset(data_dir, examples, meta, num_shards=2)
  return schema.DatasetMeta.load(data_dir)


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
  """Carphone cuts (both words in every split) and a faceless video -> real extraction -> training.

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
  (root / 'manifest.csv').write_text('\n'.join(rows) + '\n')
  data_dir = str(root / 'data')
  report = pipeline.run(str(root / 'manifest.csv'), data_dir, workers=1, progress=False)
  assert report['written'] == 14 and report['failed'] == 1, report
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
