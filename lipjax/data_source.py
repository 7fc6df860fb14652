"""A split of a data set on disk -> its examples by index, decoded to numpy, without TensorFlow.

Imports neither TensorFlow nor JAX: prediction from an exported model uses
`model_example` without either.

`SplitSource(data_dir, split)` is a random-access source (len, [i], __getitems__)
as grain reads them. It takes the split's files and record counts from the tfds
metadata (extraction/shards.py writes both) and checks every file against them
when opened, so a truncated or replaced shard stops a run at its start with one
line naming the file; a record that cannot be read or decoded later names its
file and position the same way. Records decode with the data set's own tfds
feature spec in numpy (schema.features).

Two file formats, the same examples:
- ArrayRecord (extraction's default): array_record's reader, by record index.
- TFRecord (data sets extracted before ArrayRecord, or with --file-format
  tfrecord): an index of each record's offset, built by one pass over the
  records' headers when the file is first read, then a seek per record, its
  CRC32C checked. Written here rather than taken from a library: array_record
  and tfds read TFRecord only through TensorFlow, grain only in sequence.
"""

import bisect
import os
import struct

from etils import epath
import numpy as np

from extraction import schema
from extraction import shards

_ARRAY_RECORD_READER_OPTIONS = 'readahead_buffer_size:0'
_TFRECORD_HEADER = struct.Struct('<QI')  # length, masked CRC of the length
_TFRECORD_FOOTER = struct.Struct('<I')  # masked CRC of the data


# The numeric fields of a word data set's example as the model reads them (the rest are strings).
MODEL_DTYPES = {
  **{key: np.float32 for key in schema.FRAME_KEYS},
  'length': np.int32,
  'label': np.int32,
}
# A sentence data set's targets, in place of `label` (schema.py).
SENTENCE_DTYPES = {'tokens': np.int32, 'token_length': np.int32}


def model_example(example: dict) -> dict:
  """One decoded example's numeric fields as float32 masks / int32 targets, plus `example_mask` 1.

  The targets are a word's `label`, or a sentence's `tokens` and `token_length`.
  """
  dtypes = MODEL_DTYPES
  if 'tokens' in example:
    dtypes = {**{k: v for k, v in MODEL_DTYPES.items() if k != 'label'}, **SENTENCE_DTYPES}
  parsed = {key: np.asarray(example[key], dtype) for key, dtype in dtypes.items()}
  return dict(parsed, example_mask=np.float32(1.0))


def stack_examples(examples: list[dict]) -> dict:
  """Model examples -> one batch dict of arrays [len(examples), ...]."""
  return {key: np.stack([e[key] for e in examples]) for key in examples[0]}


class ShardReadError(ValueError):
  """A data set whose shards cannot be read as its metadata describes."""


def _rerun_extraction(path: str, problem: str) -> ShardReadError:
  return ShardReadError(f'{path}: {problem}; the shard is corrupt or truncated, re-run extraction')


class _ArrayRecordFile:
  """One ArrayRecord shard, opened in the process that first reads it."""

  def __init__(self, path: str):
    self.path, self._reader = path, None

  def _open(self):
    from array_record.python import array_record_module

    if self._reader is None:
      try:
        self._reader = array_record_module.ArrayRecordReader(
          self.path, options=_ARRAY_RECORD_READER_OPTIONS
        )
      except Exception as e:  # noqa: BLE001 (riegeli raises RuntimeError/ValueError/OSError)
        raise _rerun_extraction(self.path, f'cannot be opened ({_first_line(e)})') from None
    return self._reader

  def __len__(self) -> int:
    return int(self._open().num_records())

  def read(self, positions: list[int]) -> list[bytes]:
    try:
      return list(self._open().read(positions))
    except Exception as e:  # noqa: BLE001
      raise _rerun_extraction(
        self.path,
        f'unreadable at one of records {min(positions)}-{max(positions)} ({_first_line(e)})',
      ) from None

  def __getstate__(self):  # a worker process opens its own reader
    return {'path': self.path, '_reader': None}


def _masked_crc(data: bytes) -> int:
  """TFRecord's checksum: CRC32C, rotated right by 15 bits, plus a constant (mod 2^32)."""
  import google_crc32c

  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class _TFRecordFile:
  """One TFRecord shard, read by record index through an index of record offsets."""

  def __init__(self, path: str):
    self.path, self._file, self._offsets = path, None, None

  def _open(self):
    if self._file is None:
      self._file = epath.Path(self.path).open('rb')  # held for the source's life
      self._offsets = self._index()
    return self._file

  def _index(self) -> np.ndarray:
    """Offsets of every record's data; a file that ends inside a record is truncated."""
    size = epath.Path(self.path).stat().length
    offsets, position = [], 0
    while position < size:
      self._file.seek(position)
      header = self._file.read(_TFRECORD_HEADER.size)
      if len(header) < _TFRECORD_HEADER.size:
        raise _rerun_extraction(self.path, f'ends inside the header of record {len(offsets)}')
      length, length_crc = _TFRECORD_HEADER.unpack(header)
      if _masked_crc(header[:8]) != length_crc:
        raise _rerun_extraction(self.path, f'the header of record {len(offsets)} is damaged')
      offsets.append(position + _TFRECORD_HEADER.size)
      position += _TFRECORD_HEADER.size + length + _TFRECORD_FOOTER.size
      if position > size:
        raise _rerun_extraction(self.path, f'ends inside record {len(offsets) - 1}')
    return np.asarray(offsets + [size + _TFRECORD_HEADER.size], np.int64)

  def __len__(self) -> int:
    self._open()
    return len(self._offsets) - 1

  def read(self, positions: list[int]) -> list[bytes]:
    file = self._open()
    out = []
    for position in positions:
      start = int(self._offsets[position])
      file.seek(start)
      body = file.read(int(self._offsets[position + 1]) - start - _TFRECORD_HEADER.size)
      record, (crc,) = body[: -_TFRECORD_FOOTER.size], _TFRECORD_FOOTER.unpack(body[-4:])
      if _masked_crc(record) != crc:
        raise _rerun_extraction(self.path, f'record {position} fails its checksum')
      out.append(record)
    return out

  def __getstate__(self):
    return {'path': self.path, '_file': None, '_offsets': None}


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def split_files(data_dir: str, split: str) -> tuple[str, list[str], list[int]]:
  """(file format, shard paths, records per shard) of a split, from the tfds metadata."""
  import tensorflow_datasets as tfds

  info = tfds.builder_from_directory(data_dir).info
  if split not in info.splits:
    raise ValueError(f'{data_dir}: no split {split!r}; has {sorted(info.splits)}')
  file_format = info.file_format.value if info.file_format else shards.TFRECORD
  split_info = info.splits[split]
  return (
    shards.check_file_format(file_format),
    [os.fspath(path) for path in split_info.filepaths],
    [int(n) for n in split_info.shard_lengths],
  )


class SplitSource:
  """A split's examples by index (0 .. len - 1, shard by shard), each a dict of numpy arrays.

  Strings (speaker, video_id) come back as str, the label as an int. Safe to
  hand to grain's worker processes: each opens its own readers.
  """

  def __init__(self, data_dir: str, split: str):
    self.data_dir, self.split = data_dir, split
    self.file_format, paths, lengths = split_files(data_dir, split)
    self._files = [
      (_ArrayRecordFile if self.file_format == shards.ARRAY_RECORD else _TFRecordFile)(path)
      for path in paths
    ]
    for file, expected in zip(self._files, lengths):
      if not epath.Path(file.path).exists():
        raise ShardReadError(f'{file.path}: missing; the data set is incomplete, re-run extraction')
      found = len(file)
      if found != expected:
        raise ShardReadError(
          f'{file.path}: holds {found} records, the metadata says {expected}; the shard is '
          'truncated or from another extraction, re-run extraction'
        )
    self._starts = np.cumsum([0] + lengths).tolist()  # first index of each file
    meta = schema.DatasetMeta.load(data_dir)
    self._spec = schema.features_of(meta)

  def __len__(self) -> int:
    return self._starts[-1]

  def locate(self, index: int) -> tuple[str, int]:
    """(shard path, position in it) of example `index`."""
    if not 0 <= index < len(self):
      raise IndexError(f'{self.data_dir} ({self.split}): no example {index}; it has {len(self)}')
    file = bisect.bisect_right(self._starts, index) - 1
    return self._files[file].path, index - self._starts[file]

  def records(self, indices) -> list[bytes]:
    """The serialised examples at `indices`, in that order (one read per shard file)."""
    by_file = {}
    for slot, index in enumerate(indices):
      index = int(index)
      if not 0 <= index < len(self):
        raise IndexError(f'{self.data_dir} ({self.split}): no example {index}; it has {len(self)}')
      file = bisect.bisect_right(self._starts, index) - 1
      by_file.setdefault(file, []).append((slot, index - self._starts[file]))
    out = [None] * len(indices)
    for file, wanted in by_file.items():
      read = self._files[file].read([position for _, position in wanted])
      for (slot, _), record in zip(wanted, read):
        out[slot] = record
    return out

  def decode(self, record: bytes, index: int) -> dict:
    """One serialised example -> its dict; a record that does not parse names its shard."""
    try:
      example = self._spec.deserialize_example_np(record)
    except Exception as e:  # noqa: BLE001 (protobuf and numpy raise many kinds)
      path, position = self.locate(index)
      raise _rerun_extraction(
        path, f'record {position} does not decode ({_first_line(e)})'
      ) from None
    for key in ('speaker', 'video_id', 'text'):
      if key in example:
        example[key] = example[key].decode('utf-8')
    for key in ('label', 'token_length'):
      if key in example:
        example[key] = int(example[key])
    return example

  def __getitems__(self, indices) -> list[dict]:
    return [self.decode(r, int(i)) for r, i in zip(self.records(indices), indices)]

  def __getitem__(self, index: int) -> dict:
    return self.__getitems__([index])[0]
