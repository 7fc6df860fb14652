"""Input-pipeline examples/s and peak host memory on a large synthetic shard set, per core count.

Usage: python experiments/bench_input.py [--config configs/base.py] [--examples 100000]
           [--shards 64] [--data_dir /tmp/lipjax_bench_input] [--cores 1,2] [--batches 300]

Writes (once; reused when present) a data set of random-landmark clips with
extraction/shards.py's writer, T = 29 frames, lengths 60-100% of T, 500 classes,
then times `input_pipeline.train_iterator` as training uses it (the config's
augmentation, batch size and shuffle buffer, one device) in a fresh process
per core count, pinned to that many cores with TensorFlow's thread pools sized
to match. Examples/s is measured after the shuffle buffer has filled; peak
memory is the process's peak resident set (ru_maxrss), next to the data set's
size on disk and the shuffle buffer's share of it.
"""

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

NUM_CLASSES = 500
FRAMES = 29


def write_dataset(data_dir: str, num_examples: int, num_shards: int) -> None:
  """Writes num_examples random clips as num_shards train shards (+ a small val split)."""
  import numpy as np
  import tqdm

  from extraction import features as features_lib
  from extraction import roi
  from extraction import schema
  from extraction import shards

  n = schema.NUM_NODES
  pairs = sorted(
    {(i, (i + d) % n) for i in range(n) for d in (1, 7)}
    | {((i + d) % n, i) for i in range(n) for d in (1, 7)}
  )
  meta = schema.DatasetMeta(
    class_names=[f'word{i:03d}' for i in range(NUM_CLASSES)],
    max_frames=FRAMES,
    fps=25.0,
    roi_indices=list(roi.ROI_INDICES),
    mirror_perm=roi.mirror_perm().tolist(),
    senders=[s for s, _ in pairs],
    receivers=[r for _, r in pairs],
    au_names=list(features_lib.AU_NAMES),
    geometry_names=list(features_lib.GEOMETRY_NAMES),
    mean_landmarks=np.full((n, 3), 0.5).tolist(),
    extraction={'source': 'bench_input.py'},
  )
  spec = schema.features(FRAMES, meta.class_names)

  def clips(first: int, count: int):
    rng = np.random.default_rng(first)
    for i in range(first, first + count):
      length = int(rng.integers(FRAMES * 3 // 5, FRAMES + 1))
      speech = np.zeros(length)
      speech[2 : length - 2] = 1
      yield schema.pad_example(
        landmarks=rng.random((length, n, 3), dtype=np.float32),
        au=rng.random((length, schema.NUM_AU)),
        geometry=rng.random((length, schema.NUM_GEOMETRY)),
        face_mask=np.ones(length),
        speech_mask=speech,
        label=i % NUM_CLASSES,
        speaker=f's{i % 97}',
        video_id=f'clip{i}',
        max_frames=FRAMES,
      )

  os.makedirs(data_dir, exist_ok=True)
  lengths, sizes = {'train': [], 'val': []}, {'train': 0, 'val': 0}
  per_shard = -(-num_examples // num_shards)
  for index in tqdm.trange(num_shards, desc='writing shards'):
    count = min(per_shard, num_examples - index * per_shard)
    written, size = shards.write_shard(
      shards.shard_path(data_dir, 'train', index, num_shards), clips(index * per_shard, count), spec
    )
    lengths['train'].append(written)
    sizes['train'] += size
  written, size = shards.write_shard(
    shards.shard_path(data_dir, 'val', 0, 1), clips(num_examples, 256), spec
  )
  lengths['val'].append(written)
  sizes['val'] += size
  shards.write_metadata(data_dir, meta, lengths, sizes)


def measure(args) -> dict:
  """In this process: pins to args.measure cores, times the train iterator, reports peak memory."""
  cores = args.measure
  os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
  import tensorflow as tf

  tf.config.threading.set_inter_op_parallelism_threads(cores)
  tf.config.threading.set_intra_op_parallelism_threads(cores)
  import bench_train  # the sibling script: one loader of configs by path

  from extraction import schema
  from lipjax import input_pipeline

  config = bench_train.load_config(args.config)
  config.data_dir = args.data_dir
  config.input.threads = cores
  if args.shuffle_buffer:
    config.input.shuffle_buffer = args.shuffle_buffer
  meta = schema.DatasetMeta.load(args.data_dir)
  start = time.perf_counter()
  iterator = input_pipeline.train_iterator(config, meta, 0, 1)
  next(iterator)  # the shuffle buffer fills before the first batch
  first_batch_s = time.perf_counter() - start
  for _ in range(10):
    next(iterator)
  start, cpu_start = time.perf_counter(), time.process_time()
  for _ in range(args.batches):
    next(iterator)
  seconds = time.perf_counter() - start
  return {
    'cores': cores,
    'examples_s': args.batches * config.batch_size / seconds,
    'cpu_s_per_1k': (time.process_time() - cpu_start) * 1000 / (args.batches * config.batch_size),
    'first_batch_s': first_batch_s,
    'batch_size': config.batch_size,
    'shuffle_buffer': config.input.shuffle_buffer,
    'cache': bool(config.input.cache),
    'peak_rss_gib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default=os.path.join(REPO, 'configs', 'base.py'))
  parser.add_argument('--examples', type=int, default=100_000)
  parser.add_argument('--shards', type=int, default=64)
  parser.add_argument('--data_dir', default='/tmp/lipjax_bench_input')
  parser.add_argument('--cores', default='1,2')
  parser.add_argument('--batches', type=int, default=300)
  parser.add_argument('--shuffle_buffer', type=int, default=0, help="0: the config's")
  parser.add_argument('--measure', type=int, default=0, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.measure:
    print(json.dumps(measure(args)))
    return

  train_files = glob.glob(os.path.join(args.data_dir, '*-train.tfrecord-*'))
  if (
    not os.path.exists(os.path.join(args.data_dir, 'dataset_info.json'))
    or sum(1 for _ in train_files) != args.shards
  ):
    write_dataset(args.data_dir, args.examples, args.shards)
    train_files = glob.glob(os.path.join(args.data_dir, '*-train.tfrecord-*'))
  data_gib = sum(os.path.getsize(f) for f in train_files) / 2**30
  print(
    f'data set {args.data_dir}: {args.examples:,} train clips in {args.shards} shards, '
    f'{data_gib:.2f} GiB; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores'
  )
  print(
    '| cores | examples/s | examples/s per core | CPU ms per 1k examples | first batch s | '
    'batch | shuffle buffer | peak RSS GiB |\n|---|---|---|---|---|---|---|---|'
  )
  for cores in map(int, args.cores.split(',')):
    out = subprocess.run(
      [sys.executable, os.path.abspath(__file__), '--measure', str(cores)] + sys.argv[1:],
      check=True,
      capture_output=True,
      text=True,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(
      f'| {cores} | {row["examples_s"]:,.0f} | {row["examples_s"] / cores:,.0f} | '
      f'{row["cpu_s_per_1k"] * 1000:.0f} | {row["first_batch_s"]:.1f} | {row["batch_size"]} | '
      f'{row["shuffle_buffer"]:,} | {row["peak_rss_gib"]:.2f} |',
      flush=True,
    )
  print(f'load average after: {os.getloadavg()[0]:.2f}')
  print('command: python ' + ' '.join(sys.argv))


if __name__ == '__main__':
  main()
