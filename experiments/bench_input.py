"""Input pipeline at scale: examples per CPU-second, peak memory, and how much of the split a batch sees.

Usage: python experiments/bench_input.py [--config configs/lrw.py] [--examples 100000]
           [--shards 64] [--data_dir /tmp/lipjax_bench_input] [--workers 0,2] [--batches 200]

Writes (once; reused when present) an ArrayRecord data set of made-up clips
(extraction/random_examples.py: T = 29, lengths 60-100% of T, 500 classes),
then, in a fresh process per worker count, reads training batches the way
training does: grain over the whole train split shuffled by index, read and
decoded from the shards (`config.input.cache` False, as at LRW scale) in this
process or in `--workers` grain worker processes, and augmented by the config's
augmentation in JAX (jitted, on this CPU, as the training step does on its
device). Per row: the input's examples/s and CPU milliseconds per 1,000 examples
over the process and its workers (psutil); the augmentation's CPU milliseconds
per 1,000 examples, measured apart on batches already read; examples per
CPU-second of both together; peak resident memory of the process and its
workers; and, to show that every batch draws from the whole split, the mean
number of distinct shard files a batch's examples come from and the spread of
their indices over the split.
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from absl import flags

from extraction import cli

FLAGS = flags.FLAGS
NUM_CLASSES = 500
FRAMES = 29


def cpu_seconds(process) -> float:
  """User + system CPU seconds of a process and its live children."""
  total = 0.0
  for p in [process] + process.children(recursive=True):
    try:
      times = p.cpu_times()
      total += times.user + times.system
    except Exception:  # noqa: BLE001 (a child that just ended)
      pass
  return total


def rss_gib(process) -> float:
  """Resident memory of a process and its live children, GiB."""
  total = 0
  for p in [process] + process.children(recursive=True):
    try:
      total += p.memory_info().rss
    except Exception:  # noqa: BLE001
      pass
  return total / 2**30


def measure(args) -> dict:
  """In this process: reads and augments args.batches batches; returns the row."""
  import bench_train  # the sibling script: one loader of configs by path
  import jax
  import numpy as np
  import psutil

  from extraction import roi
  from extraction import schema
  from lipjax import augment
  from lipjax import input_pipeline
  from lipjax import train

  config = bench_train.load_config(args.config)
  config.data_dir = args.data_dir
  config.input.cache = False
  config.input.workers = args.measure_workers
  meta = schema.DatasetMeta.load(args.data_dir)
  examples = input_pipeline.SplitExamples(args.data_dir, 'train', cache=False)
  shard_of = np.searchsorted(np.asarray(examples.source._starts), np.arange(len(examples)), 'right')
  augment_fn = jax.jit(
    lambda batch, key: augment.augment_batch(batch, key, config.augment, roi.mirror_perm())
  )
  roots = train.run_keys(config.seed)[1]
  process = psutil.Process()
  iterator = input_pipeline.train_iterator(config, meta, 0, 1, examples=examples)
  for _ in range(5):  # start the workers, fill the prefetch
    next(iterator)
  peak = rss_gib(process)
  # The input alone: read, decode and batch (in this process, or in its workers).
  start_wall, start_cpu = time.perf_counter(), cpu_seconds(process)
  held = []
  for _ in range(args.batches):
    batch = next(iterator)
    held.append({k: v[0] for k, v in batch.items()})  # [1 device, B, ...] -> [B, ...]
    held = held[-8:]
    peak = max(peak, rss_gib(process))
  input_wall = time.perf_counter() - start_wall
  input_cpu = cpu_seconds(process) - start_cpu
  # Augmentation alone, jitted on this CPU as the training step runs it on its device.
  augment_fn = jax.jit(
    lambda batch, key: augment.augment_batch(batch, key, config.augment, roi.mirror_perm())
  )
  roots = train.run_keys(config.seed)[1]
  jax.block_until_ready(augment_fn(held[0], roots['augment']))  # compile
  start_cpu = time.process_time()
  for step in range(args.batches):
    key = jax.random.fold_in(roots['augment'], step)
    jax.block_until_ready(augment_fn(held[step % len(held)], key))
  augment_cpu = time.process_time() - start_cpu
  shards_per_batch, spreads = [], []
  # Coverage: the examples of a few batches, located in the split by the order itself.
  order = input_pipeline.grain.MapDataset.range(len(examples)).shuffle(
    seed=input_pipeline.order_seed(config.seed)
  )
  for step in range(20):
    indices = np.asarray([order[step * config.batch_size + j] for j in range(config.batch_size)])
    shards_per_batch.append(len(set(shard_of[indices].tolist())))
    spreads.append((indices.max() - indices.min()) / len(examples))
  count = args.batches * config.batch_size
  return {
    'workers': args.measure_workers,
    'input_examples_s': count / input_wall,
    'input_cpu_ms_per_1k': input_cpu * 1e6 / count,
    'augment_cpu_ms_per_1k': augment_cpu * 1e6 / count,
    'examples_per_cpu_s': count / (input_cpu + augment_cpu),
    'batch_size': config.batch_size,
    'peak_rss_gib': peak,
    'shards_per_batch': float(np.mean(shards_per_batch)),
    'num_shards': len(examples.source._files),
    'index_spread': float(np.mean(spreads)),
  }


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('config', os.path.join(REPO, 'configs', 'lrw.py'), 'Config file.')
  flags.DEFINE_integer('examples', 100_000, 'Train clips of the made-up data set.')
  flags.DEFINE_integer('shards', 64, 'ArrayRecord shards of its train split.')
  flags.DEFINE_string('data_dir', '/tmp/lipjax_bench_input', 'Where the data set is (made).')
  cli.define_integer_list('workers', [0, 2], 'Grain worker processes, one row each.')
  flags.DEFINE_integer('batches', 200, 'Batches read per row.')
  flags.DEFINE_integer(
    'measure_workers', -1, '(internal) measure one row with this many workers, print its JSON'
  )


def main(argv: list[str]) -> None:
  """Makes the data set if needed, measures each worker count in a process of its own."""
  del argv  # takes no arguments
  args = FLAGS
  if args.measure_workers >= 0:
    print(json.dumps(measure(args)))
    return

  from extraction import schema

  info = os.path.join(args.data_dir, 'dataset_info.json')
  if (
    not os.path.exists(info)
    or schema.DatasetMeta.load(args.data_dir).split_sizes.get('train') != args.examples
  ):
    from extraction import random_examples

    random_examples.write_dataset(
      args.data_dir,
      {'train': args.examples, 'val': 256},
      [f'word{i:03d}' for i in range(NUM_CLASSES)],
      FRAMES,
      num_shards=args.shards,
      num_speakers=97,
      progress=True,
    )
  data_gib = (
    sum(
      os.path.getsize(os.path.join(args.data_dir, n))
      for n in os.listdir(args.data_dir)
      if '-train.' in n
    )
    / 2**30
  )
  print(
    f'data set {args.data_dir}: {args.examples:,} train clips in {args.shards} ArrayRecord '
    f'shards, {data_gib:.2f} GiB; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores'
  )
  print(
    '| grain workers | input examples/s | input CPU ms / 1k | augmentation CPU ms / 1k | '
    'examples per CPU-second (both) | batch | peak RSS GiB (with workers) | shards per batch | '
    'index spread |\n|---|---|---|---|---|---|---|---|---|'
  )
  for workers in args.workers:
    out = subprocess.run(
      [sys.executable, os.path.abspath(__file__), '--measure_workers', str(workers)] + sys.argv[1:],
      check=True,
      capture_output=True,
      text=True,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(
      f'| {workers} | {row["input_examples_s"]:,.0f} | {row["input_cpu_ms_per_1k"]:.0f} | '
      f'{row["augment_cpu_ms_per_1k"]:.0f} | {row["examples_per_cpu_s"]:,.0f} | '
      f'{row["batch_size"]} | {row["peak_rss_gib"]:.2f} | '
      f'{row["shards_per_batch"]:.1f} of {row["num_shards"]} | {row["index_spread"]:.3f} |',
      flush=True,
    )
  print(f'load average after: {os.getloadavg()[0]:.2f}')
  print('command: python ' + ' '.join(sys.argv))


if __name__ == '__main__':
  cli.run(main, 'experiments/bench_input.py', define_flags, takes_arguments=False)
