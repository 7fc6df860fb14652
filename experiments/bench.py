"""The speed sheet: training, evaluation, input pipeline, compile, memory, scaling, extraction.

Usage: python experiments/bench.py [--steps 30] [--skip_extraction]

For the small and base configs (batch 32, T = 29, 88 nodes): first-call time of the
train step (JAX traces and compiles on the first call; reported apart from steady
state), steady-state training and evaluation examples/s on batches already on the
device, input-pipeline examples/s (tf.data with augmentation), and peak host memory
of the process. Then how the small config's step time grows with batch size and
clip length, a check that 2 forced CPU devices under pmap process a global batch
exactly as 1 device does, and extraction frames/s next to raw FaceMesh.
Each measurement runs in its own process (so peak memory is per configuration).
Data are real TFRecord shards of random clips (experiments/bench_train.py).
"""

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from absl import flags

from extraction import cli

FLAGS = flags.FLAGS


def measure(config_path: str, batch: int, frames: int, steps: int) -> dict:
  """Times one config in this process; returns its figures."""
  import bench_train
  import jax

  from lipjax import evaluation
  from lipjax import input_pipeline
  from lipjax import models
  from lipjax import parallel
  from lipjax import train

  config = bench_train.load_config(config_path)
  config.batch_size = batch
  with tempfile.TemporaryDirectory() as data_dir:
    config.data_dir = data_dir
    meta = bench_train.write_random_dataset(data_dir, frames, train_size=max(512, 8 * batch))
    pipeline_rate = bench_train.time_pipeline(config, meta, batches=50)
    state = train.create_train_state(
      config, meta, models.create_model(config, meta), jax.random.PRNGKey(0)
    )
    params = sum(count for _, count in models.parameter_counts(state.params, depth=1))
    p_train = parallel.data_parallel(train.step_function(config, meta), donate_argnums=(0,))
    p_eval = evaluation.parallel_evaluate_step(state.apply_fn)
    replicated = parallel.replicate(state)
    roots = parallel.replicate(train.run_keys(1)[1])
    batch_host = next(input_pipeline.train_iterator(config, meta, 0, parallel.num_devices()))
    on_device = parallel.shard(batch_host)

    start = time.perf_counter()
    replicated, out = p_train(replicated, on_device, roots)
    jax.block_until_ready(out)
    first_train_call = time.perf_counter() - start
    start = time.perf_counter()
    evaluated = p_eval(replicated.params, on_device)
    jax.block_until_ready(evaluated)
    first_eval_call = time.perf_counter() - start

    def rate(fn):
      jax.block_until_ready(fn())
      start = time.perf_counter()
      for _ in range(steps):
        result = fn()
      jax.block_until_ready(result)
      return steps * batch / (time.perf_counter() - start)

    holder = {'state': replicated}

    def train_once():
      holder['state'], metrics = p_train(holder['state'], on_device, roots)
      return metrics

    train_rate = rate(train_once)
    eval_rate = rate(lambda: p_eval(holder['state'].params, on_device))
  return {
    'config': config_path,
    'batch': batch,
    'frames': frames,
    'parameters': int(params),
    'first_train_call_s': first_train_call,
    'first_eval_call_s': first_eval_call,
    'train_examples_per_s': train_rate,
    'eval_examples_per_s': eval_rate,
    'step_ms': 1000 * batch / train_rate,
    'pipeline_examples_per_s': pipeline_rate,
    'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    'devices': parallel.num_devices(),
  }


def pmap_check(steps: int = 3) -> dict:
  """Trains a few steps on one fixed global batch; returns losses and a parameter checksum."""
  import bench_train
  import jax
  import numpy as np

  from lipjax import input_pipeline
  from lipjax import models
  from lipjax import parallel
  from lipjax import train

  config = bench_train.load_config(os.path.join(REPO, 'configs', 'test.py'))
  config.batch_size = 8
  config.model.dropout_rate = 0.0  # dropout masks are drawn per device; the check is about the math
  config.augment.flip = False
  with tempfile.TemporaryDirectory() as data_dir:
    config.data_dir = data_dir
    meta = bench_train.write_random_dataset(data_dir, 29, train_size=64)
    global_batch = next(input_pipeline.train_iterator(config, meta, 0, 1))
    global_batch = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), global_batch)
    devices = parallel.num_devices()
    batch = jax.tree.map(lambda x: x.reshape((devices, -1) + x.shape[1:]), global_batch)
    state = parallel.replicate(
      train.create_train_state(
        config, meta, models.create_model(config, meta), jax.random.PRNGKey(0)
      )
    )
    config.label_smoothing = 0.0
    p_train = parallel.data_parallel(train.step_function(config, meta))
    roots = parallel.replicate(train.run_keys(1)[1])
    losses = []
    for _ in range(steps):
      state, metrics = p_train(state, batch, roots)
      losses.append(float(metrics['loss'][0]))
    params = parallel.unreplicate(state).params
    checksum = float(sum(np.abs(np.asarray(x, np.float64)).sum() for x in jax.tree.leaves(params)))
  return {'devices': devices, 'losses': losses, 'param_abs_sum': checksum}


def _subprocess(args: list[str], devices: int = 1) -> dict:
  """Runs this script on one measurement in a fresh process; returns its JSON line."""
  env = dict(os.environ)
  if devices > 1:
    env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
  result = subprocess.run(
    [sys.executable, os.path.abspath(__file__), *args],
    capture_output=True,
    text=True,
    env=env,
    cwd=REPO,
    timeout=1200,
  )
  if result.returncode:
    raise RuntimeError(f'bench subprocess {args} failed:\n{result.stderr[-3000:]}')
  return json.loads(result.stdout.strip().splitlines()[-1])


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_integer('steps', 30, 'Timed training steps per measurement.')
  flags.DEFINE_bool('skip_extraction', False, 'Leave out the extraction rows.')
  flags.DEFINE_list('one', None, '(internal) measure one CONFIG,BATCH,FRAMES and print its JSON')
  flags.DEFINE_bool('pmap_check', False, '(internal) run the pmap check and print its JSON')


def main(argv: list[str]) -> None:
  """Prints the speed sheet (or, internally, one measurement as JSON)."""
  del argv  # takes no arguments
  if FLAGS.one:
    config, batch, frames = FLAGS.one
    print(json.dumps(measure(config, int(batch), int(frames), FLAGS.steps)))
    return
  if FLAGS.pmap_check:
    print(json.dumps(pmap_check()))
    return

  import jax

  print(
    f'# lipjax speed sheet, {time.strftime("%Y-%m-%d")}, {platform.machine()}, '
    f'{os.cpu_count()} cores, jax {jax.__version__} on {jax.devices()[0].platform}; '
    f'load average {os.getloadavg()[0]:.2f} at start'
  )
  print(
    f'# command: python experiments/bench.py --steps {FLAGS.steps}'
    + (' --skip_extraction' if FLAGS.skip_extraction else '')
  )
  print('\n## Configs (batch 32, T = 29)')
  print(
    '| config | parameters | first train call (trace+compile) | first eval call | train ex/s '
    '| eval ex/s | input pipeline ex/s | peak host memory |'
  )
  print('|---|---|---|---|---|---|---|---|')
  for config in ('configs/small.py', 'configs/base.py'):
    r = _subprocess(['--one', f'{config},32,29', '--steps', str(FLAGS.steps)])
    print(
      f'| {config} | {r["parameters"]:,} | {r["first_train_call_s"]:.1f} s '
      f'| {r["first_eval_call_s"]:.1f} s | {r["train_examples_per_s"]:.0f} '
      f'| {r["eval_examples_per_s"]:.0f} | {r["pipeline_examples_per_s"]:.0f} '
      f'| {r["peak_rss_mb"]:.0f} MB |',
      flush=True,
    )

  print('\n## Step time of configs/small.py by batch size and clip length')
  print('| batch | T | step (ms) | train ex/s | first call (s) |')
  print('|---|---|---|---|---|')
  for batch, frames in ((8, 29), (16, 29), (32, 29), (64, 29), (32, 15), (32, 58)):
    r = _subprocess(['--one', f'configs/small.py,{batch},{frames}', '--steps', str(FLAGS.steps)])
    print(
      f'| {batch} | {frames} | {r["step_ms"]:.0f} | {r["train_examples_per_s"]:.0f} '
      f'| {r["first_train_call_s"]:.1f} |',
      flush=True,
    )

  print(
    '\n## pmap: one global batch of 8 on 1 device vs 2 forced CPU devices (3 steps, no dropout)'
  )
  one, two = _subprocess(['--pmap_check']), _subprocess(['--pmap_check'], devices=2)
  loss_diff = max(abs(a - b) for a, b in zip(one['losses'], two['losses']))
  relative = abs(one['param_abs_sum'] - two['param_abs_sum']) / one['param_abs_sum']
  verdict = 'OK' if loss_diff < 1e-4 and relative < 1e-5 else 'MISMATCH'
  print(
    f'devices {one["devices"]} vs {two["devices"]}: losses {one["losses"]} vs {two["losses"]}; '
    f'max loss difference {loss_diff:.2e}, parameter checksum relative difference '
    f'{relative:.2e} -> {verdict}'
  )

  if not FLAGS.skip_extraction:
    print('\n## Extraction')
    result = subprocess.run(
      [sys.executable, os.path.join(HERE, 'bench_extraction.py')],
      capture_output=True,
      text=True,
      cwd=REPO,
      timeout=1200,
    )
    print('\n'.join(row for row in result.stdout.splitlines() if not row.startswith('#')))
  print(f'\nload average at end {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  cli.run(main, 'experiments/bench.py', define_flags, takes_arguments=False)
