"""Shards -> grain -> numpy batches shaped [devices, per_device_batch, ...] for the devices.

No TensorFlow: examples come by index from data_source.SplitSource (ArrayRecord
or TFRecord shards), batches from grain datasets over step numbers. Augmentation
is not here: it runs in JAX on the devices, inside the training step (augment.py).

Training batches: the whole train split in a random order per epoch (grain's
index shuffle: any size, no buffer), seeded by config.seed; global batch s holds
the examples at positions [s * B, (s + 1) * B) of that endless order (an epoch
is len(train) positions, so a batch may straddle two epochs). The stream is a
function of the seed and the step: a run resumed at step s reads batch s next.
Evaluation batches: every example exactly once in index order, the last batch
padded with zero examples flagged by `example_mask` 0.

Where the examples live (`config.input.cache`): True decodes the split once and
holds it in memory (small data sets; batches are then array gathers); False
reads and decodes each batch's examples from the shards (any size; memory is
the batches in flight). `config.input.workers` > 0 moves that reading and
decoding into grain worker processes.

Several hosts (processes; jax.distributed): config.batch_size and
config.eval_batch_size are global, and host i of n yields rows
[i * B / n, (i + 1) * B / n) of each global batch, which then fill its devices in
order: process-major, the order of the devices along pmap's axis. Each host
reads only its rows, and the global batch at every step is the same whatever
the number of hosts (augmentation keys each clip by its global row).
"""

import sys
from typing import Iterator
import zlib

from absl import flags
import grain
import numpy as np

from lipjax import data_source


def zero_examples(template: dict, count: int) -> dict:
  """`count` zero examples shaped like a batch's (padding: example_mask 0)."""
  return {key: np.zeros((count,) + x.shape[1:], x.dtype) for key, x in template.items()}


class SplitExamples:
  """A split's examples as the model reads them, by index: held in memory or read when asked.

  cache=True decodes the whole split once; cache=False reads each batch from
  the shards (and is what grain's worker processes receive: a reader, not data).
  """

  def __init__(self, data_dir: str, split: str, cache: bool):
    self.source = data_source.SplitSource(data_dir, split)
    self.cached = None
    if cache:
      chunk = 1024
      parts = [
        data_source.stack_examples(
          [
            data_source.model_example(e)
            for e in self.source.__getitems__(range(i, min(i + chunk, len(self))))
          ]
        )
        for i in range(0, len(self), chunk)
      ]
      self.cached = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

  def __len__(self) -> int:
    return len(self.source)

  def batch(self, indices) -> dict:
    """The examples at indices, stacked: the batch dict [len(indices), ...]."""
    indices = np.asarray(indices, np.int64)
    if self.cached is not None:
      return {key: x[indices] for key, x in self.cached.items()}
    return data_source.stack_examples(
      [data_source.model_example(e) for e in self.source.__getitems__(indices)]
    )

  def strings(self, key: str) -> list[str]:
    """A string field (speaker, video_id) of every example, in index order."""
    return [e[key] for e in self.source.__getitems__(range(len(self)))]


def load_split(config, split: str) -> SplitExamples:
  """The examples of a split of config.data_dir, cached in memory when config.input.cache."""
  return SplitExamples(config.data_dir, split, config.input.cache)


def steps_per_epoch(meta, batch_size: int, host_count: int = 1) -> int:
  """Training batches in one pass over the train split (the same count on every host)."""
  examples = int(meta.split_sizes.get('train', 0))
  if examples < batch_size:
    raise ValueError(f'train split has {examples} examples, fewer than batch_size={batch_size}')
  if batch_size % host_count:
    raise ValueError(f'batch_size={batch_size} is not divisible by {host_count} hosts')
  return examples // batch_size


def order_seed(seed: int) -> int:
  """grain's shuffle seed for a run's seed (grain reshuffles epoch e with this + e)."""
  return zlib.crc32(f'lipjax/example-order/{seed}'.encode())


def shard_for_devices(batch: dict, num_devices: int) -> dict:
  """Reshapes every [B, ...] array to [devices, B / devices, ...]."""
  return {key: x.reshape((num_devices, -1) + x.shape[1:]) for key, x in batch.items()}


def _read_options(config) -> grain.ReadOptions:
  return grain.ReadOptions(
    num_threads=max(config.input.threads, 1), prefetch_buffer_size=config.input.prefetch
  )


def _iterate(steps: grain.MapDataset, config, examples: SplitExamples) -> Iterator[dict]:
  """A grain dataset's elements, produced by threads or worker processes ahead of the reader."""
  dataset = steps.to_iter_dataset(_read_options(config))
  if config.input.workers > 0 and examples.cached is None:
    if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; a library caller has none
      flags.FLAGS.mark_as_parsed()
    dataset = dataset.mp_prefetch(
      grain.multiprocessing.MultiprocessingOptions(num_workers=config.input.workers)
    )
  return iter(dataset)


def train_iterator(
  config,
  meta,
  start_step: int,
  num_devices: int,
  host_index: int = 0,
  host_count: int = 1,
  examples: SplitExamples | None = None,
) -> Iterator[dict]:
  """Endless training batches from global step start_step on: this host's rows, per device.

  Batch s (counting from 0) is trained on at step s + 1. Not augmented: the
  training step augments it on the devices.
  """
  host_batch = config.batch_size // host_count
  steps_per_epoch(meta, config.batch_size, host_count)
  if host_batch % num_devices:
    raise ValueError(
      f'batch_size={config.batch_size} is not divisible by {host_count * num_devices} devices'
    )
  examples = examples or load_split(config, 'train')
  order = grain.MapDataset.range(len(examples)).shuffle(seed=order_seed(config.seed)).repeat()
  first_row = host_index * host_batch

  def host_batch_at(step: int) -> dict:
    start = step * config.batch_size + first_row
    indices = [order[position] for position in range(start, start + host_batch)]
    return shard_for_devices(examples.batch(indices), num_devices)

  return _iterate(
    grain.MapDataset.range(start_step, sys.maxsize).map(host_batch_at), config, examples
  )


def eval_iterator(
  config,
  split: str,
  num_devices: int,
  host_index: int = 0,
  host_count: int = 1,
  examples: SplitExamples | None = None,
) -> Iterator[dict]:
  """Every example of a split once, in index order; the last batch padded (example_mask 0).

  With several hosts each yields its slice of every global batch of
  config.eval_batch_size (all hosts yield the same number of batches);
  evaluation.evaluate_model puts the hosts' outputs back together.
  """
  batch_size = config.eval_batch_size
  if batch_size % (host_count * num_devices):
    raise ValueError(
      f'eval_batch_size={batch_size} is not divisible by {host_count * num_devices} devices'
    )
  examples = examples or load_split(config, split)
  host_batch = batch_size // host_count
  count = len(examples)

  def host_batch_at(index: int) -> dict:
    start = index * batch_size + host_index * host_batch
    indices = np.arange(start, min(start + host_batch, count))
    batch = examples.batch(indices if len(indices) else [0])
    if not len(indices):  # this host's rows are all padding
      batch = zero_examples(batch, 0)
    missing = host_batch - len(indices)
    if missing:
      padding = zero_examples(batch, missing)
      batch = {key: np.concatenate([batch[key], padding[key]]) for key in batch}
    return shard_for_devices(batch, num_devices)

  num_batches = -(-count // batch_size)
  return _iterate(grain.MapDataset.range(num_batches).map(host_batch_at), config, examples)
