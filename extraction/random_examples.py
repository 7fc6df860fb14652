"""Made-up landmark clips written as real shards: data sets for tests and benchmarks, no video.

Each clip's mouth opens and closes at its word's own rate (label + 1 cycles per
8 frames, on half of the nodes) around one fixed face, with small landmark
noise; AU features carry a weak word-dependent offset. So a model can learn the
words from a few dozen examples, and the data are shaped exactly like
extraction's (schema.py): T frames, lengths 60-100% of T, speech inside.
"""

import os
import zlib

import numpy as np
import tqdm

from extraction import roi
from extraction import schema
from extraction import shards


def face() -> np.ndarray:
  """The one face every made-up clip moves.  # [N, 3]"""
  return 0.3 + 0.4 * np.random.default_rng(0).random((schema.NUM_NODES, 3))


def example(rng, label: int, speaker: str, video_id: str, max_frames: int) -> dict:
  """One padded example of word `label`."""
  length = int(rng.integers(max(max_frames * 3 // 5, 2), max_frames + 1))
  base = face()
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
    max_frames=max_frames,
  )


def example_at(split: str, i: int, num_classes: int, num_speakers: int, max_frames: int, seed: int):
  """Example i of a split: word i % num_classes, speaker i % num_speakers, its own random draws."""
  rng = np.random.default_rng([seed, zlib.crc32(split.encode()), i])
  return example(rng, i % num_classes, f'spk{i % num_speakers}', f'{split}_{i:06d}', max_frames)


def write_dataset(
  data_dir: str,
  split_sizes: dict[str, int],
  class_names: list[str],
  max_frames: int,
  *,
  num_shards: int = 1,
  num_speakers: int = 4,
  edges: tuple | None = None,
  file_format: str = shards.ARRAY_RECORD,
  seed: int = 0,
  progress: bool = False,
) -> schema.DatasetMeta:
  """Writes made-up splits as shards + tfds metadata, one shard at a time; returns the metadata.

  Example i of a split is word i % len(class_names) of speaker spk{i % num_speakers},
  video id {split}_{i:06d}, drawn from its own random stream (seed, split, i); shard k
  holds examples k, k + num_shards, ... as shards.write_dataset deals them. edges: (senders, receivers), default the
  ROI's anatomical graph.
  """
  os.makedirs(data_dir, exist_ok=True)
  senders, receivers = edges if edges is not None else roi.anatomical_edges()
  meta = schema.DatasetMeta.for_roi(
    class_names=class_names,
    max_frames=max_frames,
    fps=25.0,
    senders=senders,
    receivers=receivers,
    mean_landmarks=face().tolist(),  # the clips' mean shape, but for the mouth's movement
    extraction={'source': 'extraction/random_examples.py'},
  )
  spec = schema.features(max_frames, meta.class_names)
  lengths, sizes = {}, {}
  jobs = [
    (split, index) for split, size in split_sizes.items() if size for index in range(num_shards)
  ]
  for split, index in tqdm.tqdm(jobs, desc='writing shards', disable=not progress):
    examples = (
      example_at(split, i, len(class_names), num_speakers, max_frames, seed)
      for i in range(index, split_sizes[split], num_shards)
    )
    count, num_bytes = shards.write_shard(
      shards.shard_path(data_dir, split, index, num_shards, file_format), examples, spec
    )
    lengths.setdefault(split, []).append(count)
    sizes[split] = sizes.get(split, 0) + num_bytes
  shards.write_metadata(data_dir, meta, lengths, sizes, file_format)
  return schema.DatasetMeta.load(data_dir)
