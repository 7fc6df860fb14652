"""Training throughput of a config on this machine: train examples/s, input pipeline examples/s, compile time.

Usage: python experiments/bench_train.py [--config configs/small.py] [--batch 32] [--frames 29] [--steps 30]

The data are real ArrayRecord shards (extraction.random_examples) of made-up
landmark clips with T frames and 88 nodes, written to a temporary directory.
"train (fed)" is steady-state optimizer steps (augmentation on the device
included) on batches already on the device (compile excluded); "train (end to
end)" pulls every batch through the grain pipeline as train.py does; "input
pipeline" is that pipeline alone. The machine's load average is printed before and after: other work on
the same cores lowers every figure. Devices are set up as the training command
does (config.cpu_devices; -1 = one per CPU core); `--config.cpu_devices`-style
overrides are not parsed here, so set XLA_FLAGS=--xla_force_host_platform_device_count=1
to measure a single CPU device.
"""

import importlib.util
import os
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import flags
import jax

from extraction import cli
from extraction import random_examples
from extraction import schema
from lipjax import cli as lipjax_cli
from lipjax import graphs
from lipjax import input_pipeline
from lipjax import models
from lipjax import parallel
from lipjax import train

NUM_CLASSES = 50


def load_config(path: str):
  """Imports a configs/*.py file and returns its get_config()."""
  spec = importlib.util.spec_from_file_location('bench_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def write_random_dataset(data_dir: str, frames: int, train_size: int) -> schema.DatasetMeta:
  """Real shards of made-up clips (lengths 60-100% of T) with a ring-with-chords graph."""
  return random_examples.write_dataset(
    data_dir,
    {'train': train_size, 'val': 64},
    [f'word{i:02d}' for i in range(NUM_CLASSES)],
    frames,
    num_shards=4,
    num_speakers=7,
    edges=graphs.ring_edges(schema.NUM_NODES),
  )


def time_pipeline(config, meta, batches: int) -> float:
  """Input-pipeline examples/s over `batches` batches after a warm-up pass."""
  iterator = input_pipeline.train_iterator(config, meta, 0, parallel.num_devices())
  for _ in range(20):  # warm-up: the cache fills, threads start
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * config.batch_size / (time.perf_counter() - start)


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('config', 'configs/small.py', 'Config file.')
  flags.DEFINE_integer('batch', 32, 'Batch size (over all devices).')
  flags.DEFINE_integer('frames', 29, 'Frames per clip (T).')
  flags.DEFINE_integer('steps', 30, 'Timed steps.')


def main(argv: list[str]) -> None:
  """Measures compile time and the three rates; prints them and the command."""
  del argv  # takes no arguments
  args = FLAGS
  config = load_config(args.config)
  config.batch_size = args.batch
  # As `python -m lipjax.train` does: CPU cores become pmap devices before JAX's
  # backends start (at first use, not at import).
  lipjax_cli.split_cpu_into_devices(config.cpu_devices, (config.batch_size,))
  print(
    f'load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; '
    f'jax {jax.__version__} on {parallel.num_devices()} x {jax.devices()[0].platform}'
  )

  with tempfile.TemporaryDirectory() as data_dir:
    config.data_dir = data_dir
    meta = write_random_dataset(data_dir, args.frames, train_size=2048)
    pipeline_rate = time_pipeline(config, meta, batches=100)

    model = models.create_model(config, meta)
    state = train.create_train_state(config, meta, model, jax.random.PRNGKey(0))
    params = sum(count for _, count in models.parameter_counts(state.params, depth=1))
    p_train_step = parallel.data_parallel(train.step_function(config, meta), donate_argnums=(0,))
    replicated = parallel.replicate(state)
    dropout_roots = parallel.replicate(train.run_keys(1)[1])
    iterator = input_pipeline.train_iterator(config, meta, 0, parallel.num_devices())
    batch = next(iterator)

    start = time.perf_counter()
    compiled = p_train_step.lower(replicated, batch, dropout_roots).compile()
    compile_seconds = time.perf_counter() - start
    device_batch = parallel.shard(batch)
    for _ in range(3):
      replicated, metrics = compiled(replicated, device_batch, dropout_roots)
    jax.block_until_ready(metrics)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
      replicated, metrics = compiled(replicated, device_batch, dropout_roots)
    jax.block_until_ready(metrics)
    fed_rate = args.steps * config.batch_size / (time.perf_counter() - start)
    cpu_per_step = (time.process_time() - cpu_start) / args.steps

    start = time.perf_counter()
    for _ in range(args.steps):
      replicated, metrics = compiled(replicated, next(iterator), dropout_roots)
    jax.block_until_ready(metrics)
    end_to_end_rate = args.steps * config.batch_size / (time.perf_counter() - start)

  print(
    f'config {args.config}: {params:,} parameters, batch {args.batch}, T = {args.frames}, '
    f'{meta.num_nodes} nodes, {len(meta.senders)} directed edges'
  )
  print(f'compile (train step): {compile_seconds:.1f} s')
  print(
    f'train (fed):          {fed_rate:.0f} examples/s ({fed_rate / args.batch:.2f} steps/s, '
    f'{cpu_per_step:.3f} CPU-seconds a step over all threads)'
  )
  print(f'train (end to end):   {end_to_end_rate:.0f} examples/s')
  print(
    f'input pipeline:       {pipeline_rate:.0f} examples/s '
    f'({pipeline_rate / fed_rate:.1f}x training)'
  )
  print(f'load average after: {os.getloadavg()[0]:.2f}')
  print('command: python ' + ' '.join(sys.argv))


if __name__ == '__main__':
  cli.run(main, 'experiments/bench_train.py', define_flags, takes_arguments=False)
