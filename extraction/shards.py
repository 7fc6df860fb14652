"""TFRecord shards and tfds metadata on disk: the data set's file layout.

A data set directory holds, per split, `lipjax-{split}.tfrecord-{i:05d}-of-{n:05d}`
files of serialised examples (schema.py), plus tfds's `dataset_info.json`,
`features.json` and `metadata.json`, so that
`tfds.builder_from_directory(data_dir).as_dataset(split=...)` reads it.
Shards are written to a temporary name and renamed when complete, so a killed
run never leaves a truncated shard under a final name.

Within a file, extraction writes records in `record_order`: a hash of each
video id, so words and speakers are mixed along the file (as tfds shuffles the
data sets it writes). Training that streams a file through a bounded shuffle
buffer (configs/lrw.py: 50,000 of LRW's 488,000 clips) then draws every batch
from the whole vocabulary, not from the few words sorted next to each other.
"""

import hashlib
import os
from typing import Iterable

import numpy as np

from extraction import schema


def shard_path(data_dir: str, split: str, index: int, num_shards: int) -> str:
  """Returns the final path of shard `index` of `num_shards` for a split."""
  return os.path.join(
    data_dir, f'{schema.DATASET_NAME}-{split}.tfrecord-{index:05d}-of-{num_shards:05d}'
  )


# How extraction orders the records within a file; recorded in the data set's metadata.
RECORD_ORDER = 'sha256(video_id)'


def record_order(video_ids: Iterable[str]) -> list[int]:
  """Indices of video_ids in the order their records are written: by sha256 of the id."""
  keys = [hashlib.sha256(video_id.encode()).digest() for video_id in video_ids]
  return sorted(range(len(keys)), key=keys.__getitem__)


def write_shard(path: str, examples: Iterable[dict], feature_spec) -> tuple[int, int]:
  """Serialises examples into one TFRecord file atomically; returns (count, bytes)."""
  import tensorflow as tf

  count, num_bytes = 0, 0
  tmp = path + '.incomplete'
  with tf.io.TFRecordWriter(tmp) as writer:
    for example in examples:
      record = feature_spec.serialize_example(example)
      writer.write(record)
      count += 1
      num_bytes += len(record)
  os.replace(tmp, path)
  return count, num_bytes


def write_metadata(
  data_dir: str,
  meta: schema.DatasetMeta,
  shard_lengths: dict[str, list[int]],
  num_bytes: dict[str, int],
  description: str = '',
) -> None:
  """Writes tfds metadata for complete shards; splits with no examples are left out."""
  import tensorflow_datasets as tfds

  feature_spec = schema.features(meta.max_frames, meta.class_names)
  template = tfds.core.ShardedFileTemplate(
    data_dir=data_dir,
    template='{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}',
    dataset_name=schema.DATASET_NAME,
    split='train',
    filetype_suffix='tfrecord',
  )
  split_infos = [
    tfds.core.SplitInfo(
      name=split,
      shard_lengths=list(lengths),
      num_bytes=int(num_bytes[split]),
      filename_template=template.replace(split=split),
    )
    for split, lengths in shard_lengths.items()
    if sum(lengths) > 0
  ]
  if not split_infos:
    raise ValueError(f'{data_dir}: no examples in any split; nothing to describe')
  meta.split_sizes = {s.name: int(sum(s.shard_lengths)) for s in split_infos}
  meta.validate()
  stored = meta.to_dict()
  stored.pop('class_names')  # lives in the ClassLabel feature
  stored.pop('split_sizes')  # lives in the split infos
  tfds.folder_dataset.write_metadata(
    data_dir=data_dir,
    features=feature_spec,
    split_infos=split_infos,
    filename_template=template,
    version=schema.SCHEMA_VERSION,
    description=description or 'lipjax mouth-landmark graphs (see extraction/schema.py)',
    metadata=tfds.core.MetadataDict(stored),
    check_data=True,
  )


def mean_landmarks(examples: Iterable[dict]) -> np.ndarray:
  """Mean node position over the real frames of examples.  # [N, 3]"""
  total = np.zeros((schema.NUM_NODES, 3), np.float64)
  frames = 0
  for example in examples:
    real = example['frame_mask'].astype(bool)
    total += example['landmarks'][real].sum(axis=0)
    frames += int(real.sum())
  return total / max(frames, 1)


def write_dataset(
  data_dir: str,
  examples_by_split: dict[str, list[dict]],
  meta: schema.DatasetMeta,
  num_shards: int = 1,
) -> None:
  """Writes whole splits of in-memory examples plus metadata (small data sets, tests).

  Examples are dealt round-robin onto `num_shards` files per split in the order
  given. `meta.mean_landmarks` is computed from the train split when left empty.
  """
  os.makedirs(data_dir, exist_ok=True)
  feature_spec = schema.features(meta.max_frames, meta.class_names)
  if not meta.mean_landmarks:
    meta.mean_landmarks = mean_landmarks(examples_by_split.get('train', [])).tolist()
  shard_lengths, num_bytes = {}, {}
  for split, examples in examples_by_split.items():
    if not examples:
      continue
    shard_lengths[split], num_bytes[split] = [], 0
    for index in range(num_shards):
      count, size = write_shard(
        shard_path(data_dir, split, index, num_shards), examples[index::num_shards], feature_spec
      )
      shard_lengths[split].append(count)
      num_bytes[split] += size
  write_metadata(data_dir, meta, shard_lengths, num_bytes)


def read_split(data_dir: str, split: str, shuffle_files: bool = False):
  """Returns the tf.data.Dataset of a split's parsed examples (dict of tensors)."""
  import tensorflow_datasets as tfds

  builder = tfds.builder_from_directory(data_dir)
  if split not in builder.info.splits:
    raise ValueError(f'{data_dir}: no split {split!r}; has {sorted(builder.info.splits)}')
  return builder.as_dataset(split=split, shuffle_files=shuffle_files)


def find_bad_shard(data_dir: str, split: str) -> str | None:
  """Reads every shard of a split; returns 'FILE: problem' for the first unreadable one, else None.

  A shard is bad when a record is corrupt or the file holds fewer or more
  records than the data set's metadata says (truncated, or replaced).
  """
  import tensorflow as tf
  import tensorflow_datasets as tfds

  info = tfds.builder_from_directory(data_dir).info.splits[split]
  for path, expected in zip(info.filepaths, info.shard_lengths):
    count = 0
    try:
      for _ in tf.data.TFRecordDataset(os.fspath(path)):
        count += 1
    except tf.errors.OpError as e:
      return (
        f'{path}: unreadable after {count} of {expected} records '
        f'({e.message.splitlines()[0]}); the shard is corrupt or truncated, '
        're-run extraction'
      )
    if count != expected:
      return (
        f'{path}: holds {count} records, the metadata says {expected}; the shard is '
        'truncated or from another extraction, re-run extraction'
      )
  return None
