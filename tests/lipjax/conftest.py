"""A tiny data set written as real TFRecord shards with tfds metadata, shared by the tests.

Content is synthetic but learnable: each word opens the mouth with its own
rhythm, and AU/geometry carry a weak word-dependent offset. The graph is a
fixed connected ring with chords over the 88 ROI nodes.
"""

import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

from extraction import features as features_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from extraction import roi  # pylint: disable=wrong-import-position
from extraction import schema  # pylint: disable=wrong-import-position
from extraction import shards  # pylint: disable=wrong-import-position

CLASS_NAMES = ['about', 'black', 'close']
MAX_FRAMES = 12
SPLIT_SIZES = {'train': 48, 'val': 13, 'test': 11}  # val and test leave a partial eval batch


def ring_edges(num_nodes: int) -> tuple[list[int], list[int]]:
  """A connected test graph: i -- i+1 and i -- i+7 (mod N), both directions."""
  pairs = set()
  for i in range(num_nodes):
    for offset in (1, 7):
      j = (i + offset) % num_nodes
      pairs |= {(i, j), (j, i)}
  ordered = sorted(pairs)
  return [s for s, _ in ordered], [r for _, r in ordered]


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
  speech[1:length - 1] = 1
  return schema.pad_example(
      landmarks=landmarks.astype(np.float32), au=au, geometry=geometry,
      face_mask=np.ones(length), speech_mask=speech, label=label, speaker=speaker,
      video_id=video_id, max_frames=MAX_FRAMES)


def make_meta(senders, receivers) -> schema.DatasetMeta:
  """Metadata for the synthetic data set with the given edges."""
  return schema.DatasetMeta(
      class_names=list(CLASS_NAMES), max_frames=MAX_FRAMES, fps=25.0,
      roi_indices=list(roi.ROI_INDICES), mirror_perm=roi.mirror_perm().tolist(),
      senders=list(senders), receivers=list(receivers),
      au_names=list(features_lib.AU_NAMES), geometry_names=list(features_lib.GEOMETRY_NAMES),
      mean_landmarks=[], extraction={'source': 'tests/lipjax/conftest.py'})


def write_synthetic_dataset(data_dir: str, seed: int = 0) -> schema.DatasetMeta:
  """Writes the synthetic splits as shards + metadata; returns the metadata."""
  rng = np.random.default_rng(seed)
  examples = {}
  for split, size in SPLIT_SIZES.items():
    examples[split] = [
        synthetic_example(rng, i % len(CLASS_NAMES), f'spk{i % 4}', f'{split}_{i:03d}')
        for i in range(size)]
  meta = make_meta(*ring_edges(schema.NUM_NODES))
  shards.write_dataset(data_dir, examples, meta, num_shards=2)
  return schema.DatasetMeta.load(data_dir)


@pytest.fixture(scope='session', autouse=True)
def compilation_cache(tmp_path_factory):
  """One persistent XLA cache for this session and its subprocesses: each program compiles once."""
  import jax  # pylint: disable=g-import-not-at-top
  cache_dir = str(tmp_path_factory.mktemp('xla_cache'))
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
  from configs import test as test_config_lib  # pylint: disable=g-import-not-at-top
  config = test_config_lib.get_config()
  config.data_dir = dataset[0]
  return config
