"""Export time, file sizes and per-clip latency of JAX vs SavedModel vs TFLite, batch 1, one core.

Usage: nice -n 5 python experiments/bench_export.py --workdir /tmp/demo_run
           [--out /tmp/lipjax_bench_export] [--repeats 200]

Runs `python -m lipjax.export --workdir W --out OUT --overwrite` as a user would
(wall time of the whole command, imports included, and the export's own
export_seconds), then, in this process pinned to one core with TensorFlow's and
XLA's thread pools at one thread, times one clip's logits (batch 1, the data set's
max_frames; features not included) through: the workdir's best checkpoint under
jax.jit (what `predict --workdir` runs), the SavedModel through lipjax.exported,
and the TFLite model where the export wrote one. Prints the medians and 90th
percentiles in ms, the sizes on disk, the load average and the command.
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import flags

from extraction import cli

FLAGS = flags.FLAGS


def folder_bytes(path: str) -> int:
  """Bytes of a file, or of every file under a folder."""
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def timed(fn, repeats: int) -> tuple[float, float]:
  """(median, 90th percentile) of fn()'s wall time in ms, after 5 warm-up calls."""
  import numpy as np

  for _ in range(5):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append((time.perf_counter() - start) * 1e3)
  return float(np.median(times)), float(np.percentile(times, 90))


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('workdir', None, 'Trained workdir to export.')
  flags.DEFINE_string('out', '/tmp/lipjax_bench_export', 'Export folder (replaced).')
  flags.DEFINE_integer('repeats', 200, 'Timed calls per backend.')


def main(argv: list[str]) -> None:
  """Exports the workdir, times each backend and prints the figures."""
  del argv  # takes no arguments
  cli.require('workdir')
  load = os.getloadavg()

  command = [sys.executable, '-m', 'lipjax.export', '--workdir', FLAGS.workdir, '--out', FLAGS.out]
  start = time.perf_counter()
  subprocess.run(command + ['--overwrite'], check=True, cwd=REPO, capture_output=True)
  command_seconds = time.perf_counter() - start
  with open(os.path.join(FLAGS.out, 'export.json')) as f:
    info = json.load(f)

  # One core for everything below: the process, TF's pools, XLA's CPU client.
  os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
  os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') + ' --xla_cpu_multi_thread_eigen=false'
  ).strip()
  from lipjax import exported  # TensorFlow first, without JAX

  exported.tf.config.threading.set_intra_op_parallelism_threads(1)
  exported.tf.config.threading.set_inter_op_parallelism_threads(1)
  import jax

  from lipjax import evaluate
  from lipjax import export

  _, meta, model, params, _, _ = evaluate.restore_model(FLAGS.workdir)
  batch = export.sample_batch(meta, 1)
  apply = jax.jit(lambda params, batch: model.apply({'params': params}, batch, train=False))
  rows = [('JAX (jax.jit, predict --workdir)', lambda: jax.block_until_ready(apply(params, batch)))]
  saved_model = exported.load(FLAGS.out)
  rows.append(('SavedModel (lipjax.exported)', lambda: saved_model.logits(batch)))
  tflite = info['formats']['tflite']
  if tflite['status'] == 'ok':
    lite = exported.load(FLAGS.out, 'tflite', num_threads=1)
    rows.append(('TFLite (lipjax.exported)', lambda: lite.logits(batch)))

  print(f'command: nice -n 5 python experiments/bench_export.py --workdir {FLAGS.workdir}')
  print(f'load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores')
  print(
    f'export: {command_seconds:.1f} s for `python -m lipjax.export` (imports included), '
    f'{info["export_seconds"]:.1f} s inside it'
  )
  print(f'saved_model/: {folder_bytes(os.path.join(FLAGS.out, "saved_model")) / 1e6:.2f} MB')
  if tflite['status'] == 'ok':
    print(f'model.tflite: {folder_bytes(os.path.join(FLAGS.out, "model.tflite")) / 1e6:.2f} MB')
  else:
    print(f'model.tflite: not written ({tflite["summary"][:160]})')
  print(f'per-clip latency, batch 1, T={meta.max_frames}, one core (median / p90 ms):')
  for name, fn in rows:
    median, p90 = timed(fn, FLAGS.repeats)
    print(f'  {name:36s} {median:7.2f} / {p90:7.2f}')
  print(f'load average after: {" ".join(f"{x:.2f}" for x in os.getloadavg())}')


if __name__ == '__main__':
  cli.run(main, 'experiments/bench_export.py', define_flags, takes_arguments=False)
