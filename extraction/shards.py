"""Shard files and tfds metadata on disk: the data set's file layout.

A data set directory holds, per split, `lipjax-{split}.{format}-{i:05d}-of-{n:05d}`
files of serialised examples (schema.py), plus tfds's `dataset_info.json`,
`features.json` and `metadata.json`, so that `tfds.builder_from_directory(data_dir)`
describes it. Two file formats:
- `array_record` (the default): random access by record index, written and read
  without TensorFlow (`builder.as_data_source(split)`, lipjax.data_source);
- `tfrecord` (on request, for tf.data users: `builder.as_dataset(split)`); writing
  it needs TensorFlow. lipjax reads both (data sets extracted before ArrayRecord
  were TFRecord).
Shards are written to a temporary name and renamed when complete, so a killed
run never leaves a truncated shard under a final name.

Within a file, extraction writes records in `record_order`: a hash of each
video id, so words and speakers are mixed along the file (as tfds shuffles the
data sets it writes) and any prefix of a file holds every word.
"""

import hashlib
import os
from typing import Iterable

import numpy as np

from extraction import schema

ARRAY_RECORD = 'array_record'
TFRECORD = 'tfrecord'
FILE_FORMATS = (ARRAY_RECORD, TFRECORD)
# One record per chunk: the layout tfds writes for random access.
_ARRAY_RECORD_OPTIONS = 'group_size:1'


def check_file_format(file_format: str) -> str:
  """Returns file_format, or raises ValueError naming the formats there are."""
  if file_format not in FILE_FORMATS:
    raise ValueError(f'file format {file_format!r} is not one of {", ".join(FILE_FORMATS)}')
  return file_format


def shard_path(data_dir: str, split: str, index: int, num_shards: int, file_format: str) -> str:
  """Returns the final path of shard `index` of `num_shards` for a split."""
  return os.path.join(
    data_dir,
    f'{schema.DATASET_NAME}-{split}.{check_file_format(file_format)}-'
    f'{index:05d}-of-{num_shards:05d}',
  )


# How extraction orders the records within a file; recorded in the data set's metadata.
RECORD_ORDER = 'sha256(video_id)'


def record_order(video_ids: Iterable[str]) -> list[int]:
  """Indices of video_ids in the order their records are written: by sha256 of the id."""
  keys = [hashlib.sha256(video_id.encode()).digest() for video_id in video_ids]
  return sorted(range(len(keys)), key=keys.__getitem__)


class _ArrayRecordWriter:
  """array_record's writer with the layout tfds's ArrayRecord adapter uses."""

  def __init__(self, path: str):
    from array_record.python import array_record_module

    self._writer = array_record_module.ArrayRecordWriter(path, _ARRAY_RECORD_OPTIONS)

  def write(self, record: bytes) -> None:
    self._writer.write(record)

  def close(self) -> None:
    self._writer.close()


class _TFRecordWriter:
  """TensorFlow's TFRecord writer (the checksummed format tf.data reads)."""

  def __init__(self, path: str):
    try:
      import tensorflow as tf
    except ImportError as e:
      raise ValueError(
        f'{path}: writing TFRecord shards needs TensorFlow ({e}); install lipjax[tf] '
        f'or write the default {ARRAY_RECORD} shards'
      ) from None
    self._writer = tf.io.TFRecordWriter(path)

  def write(self, record: bytes) -> None:
    self._writer.write(record)

  def close(self) -> None:
    self._writer.close()


def write_shard(path: str, examples: Iterable[dict], feature_spec) -> tuple[int, int]:
  """Serialises examples into one shard file atomically; returns (count, bytes).

  The file format is the one `path` names (shard_path).
  """
  file_format = ARRAY_RECORD if f'.{ARRAY_RECORD}-' in os.path.basename(path) else TFRECORD
  tmp = path + '.incomplete'
  writer = (_ArrayRecordWriter if file_format == ARRAY_RECORD else _TFRecordWriter)(tmp)
  count, num_bytes = 0, 0
  try:
    for example in examples:
      record = feature_spec.serialize_example(example)
      writer.write(record)
      count += 1
      num_bytes += len(record)
  finally:
    writer.close()
  os.replace(tmp, path)
  return count, num_bytes


def write_metadata(
  data_dir: str,
  meta: schema.DatasetMeta,
  shard_lengths: dict[str, list[int]],
  num_bytes: dict[str, int],
  file_format: str,
  description: str = '',
) -> None:
  """Writes tfds metadata for complete shards; splits with no examples are left out."""
  import tensorflow_datasets as tfds

  feature_spec = schema.features_of(meta)
  template = tfds.core.ShardedFileTemplate(
    data_dir=data_dir,
    template='{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}',
    dataset_name=schema.DATASET_NAME,
    split='train',
    filetype_suffix=check_file_format(file_format),
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
  # tfds's own check reads an example through tf.data; lipjax.data_source checks the
  # shards against these lengths whenever it opens a split.
  tfds.folder_dataset.write_metadata(
    data_dir=data_dir,
    features=feature_spec,
    split_infos=split_infos,
    filename_template=template,
    version=schema.SCHEMA_VERSION,
    description=description or 'lipjax mouth-landmark graphs (see extraction/schema.py)',
    metadata=tfds.core.MetadataDict(stored),
    check_data=False,
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
  file_format: str = ARRAY_RECORD,
) -> None:
  """Writes whole splits of in-memory examples plus metadata (small data sets, tests).

  Examples are dealt round-robin onto `num_shards` files per split in the order
  given. `meta.mean_landmarks` is computed from the train split when left empty.
  """
  os.makedirs(data_dir, exist_ok=True)
  feature_spec = schema.features_of(meta)
  if not meta.mean_landmarks:
    meta.mean_landmarks = mean_landmarks(examples_by_split.get('train', [])).tolist()
  shard_lengths, num_bytes = {}, {}
  for split, examples in examples_by_split.items():
    if not examples:
      continue
    shard_lengths[split], num_bytes[split] = [], 0
    for index in range(num_shards):
      count, size = write_shard(
        shard_path(data_dir, split, index, num_shards, file_format),
        examples[index::num_shards],
        feature_spec,
      )
      shard_lengths[split].append(count)
      num_bytes[split] += size
  write_metadata(data_dir, meta, shard_lengths, num_bytes, file_format)
