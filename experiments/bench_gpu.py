"""Training-step FLOP utilisation on this machine's device: configs x batch sizes x compute dtypes.

Usage: python experiments/bench_gpu.py [--configs small,base] [--batch_sizes 32,256,1024]
           [--dtypes float32,bfloat16] [--matmul_size 8192] [--min_seconds 2] [--time_budget_s 300]

Needs lipjax's base install (`pip install -e .`: no TensorFlow) and no data set.
Batches are random numpy clips with the data set's shapes (T frames of 88 nodes,
lengths 60-100% of T),
built from a DatasetMeta made here (10 classes for small as in the demo, 500 for
base as in LRW; a ring-with-chords graph: the dense GCN's cost does not depend on
the edges). The step is lipjax.train's own train_step (the config's augmentation,
loss and AdamW chain), run under jit + shard_map over all local devices (what the
pmap of training does, without pmap).

Per row: batch per device; compile time of the step; training examples/s over
all devices (after warm-up, timed with block_until_ready); FLOPs per step and
device; achieved FLOP/s; utilisation against (a) the measured rate of a square
matmul of the same dtype on the same device (JAX's default precision, which is
TF32 for float32 on NVIDIA Ampere and later) and (b) on GPU, the chip's nominal
dense peak (table below: bfloat16 against the bf16 tensor-core peak, float32
against the TF32 one); the device memory XLA says the step needs.

FLOPs come from XLA's cost analysis of the float32 step lowered with the LSTM's
scan fully unrolled: XLA counts a while loop's body once, so the compiled
(scanned) step's own figure leaves out T - 1 of the LSTM's T steps (printed
alongside as `xla_scan`). The timed step is the config's real one (scanned).
"""

import dataclasses
import importlib.util
import math
import os
import platform
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)  # a GPU host runs this from a checkout, without installing lipjax
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import flags
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from extraction import cli
from extraction import schema
from lipjax import graphs
from lipjax import train

FLAGS = flags.FLAGS
NUM_CLASSES = {'small': 10, 'base': 500, 'lrw': 500}  # the demo's words; LRW's
# Nominal dense tensor-core peaks in TFLOP/s (NVIDIA data sheets, without sparsity):
# (device_kind substring, bfloat16, TF32). H100 SXM5 and PCIe; H200 is an SXM H100 die.
NOMINAL_PEAKS = (
  ('H100 PCIe', 756.0, 378.0),
  ('H100', 989.4, 494.7),
  ('H200', 989.4, 494.7),
  ('A100', 312.0, 156.0),
)


def load_config(name: str):
  """configs/NAME.py's get_config()."""
  spec = importlib.util.spec_from_file_location(
    f'configs.{name}', os.path.join(REPO, 'configs', f'{name}.py')
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def make_meta(num_classes: int, frames: int) -> schema.DatasetMeta:
  """Metadata with the real node count, mirror and feature names, and a ring-with-chords graph."""
  senders, receivers = graphs.ring_edges(schema.NUM_NODES)
  return schema.DatasetMeta.for_roi(
    class_names=[f'word{i:03d}' for i in range(num_classes)],
    max_frames=frames,
    fps=25.0,
    senders=senders,
    receivers=receivers,
    split_sizes={'train': 100_000},
  )


def random_batch(meta: schema.DatasetMeta, batch_size: int, seed: int = 0) -> dict:
  """A training batch of random clips with consistent masks, as the input pipeline makes them."""
  rng = np.random.default_rng(seed)
  t, n = meta.max_frames, meta.num_nodes
  length = rng.integers(t * 3 // 5, t + 1, batch_size).astype(np.int32)  # [B]
  frame_mask = (np.arange(t)[None] < length[:, None]).astype(np.float32)  # [B, T]
  speech_mask = frame_mask.copy()
  speech_mask[:, :2] = 0
  label = rng.integers(0, meta.num_classes, batch_size).astype(np.int32)
  return {
    'landmarks': rng.random((batch_size, t, n, 3), np.float32) * frame_mask[..., None, None],
    'au': rng.random((batch_size, t, len(meta.au_names)), np.float32),
    'geometry': rng.random((batch_size, t, len(meta.geometry_names)), np.float32),
    'frame_mask': frame_mask,
    'face_mask': frame_mask,
    'speech_mask': speech_mask,
    'length': length,
    'label': label,
    'example_mask': np.ones(batch_size, np.float32),
  }


def total_flops(cost) -> float:
  """The 'flops' of a cost analysis: a dict, or (older JAX) a list of per-module dicts."""
  if isinstance(cost, dict):
    cost = [cost]
  return float(sum(c.get('flops', 0.0) for c in cost or []))


def cost_flops(compiled) -> float:
  """XLA's FLOP count of a compiled computation (0.0 where the backend gives none)."""
  try:
    return total_flops(compiled.cost_analysis())
  except Exception:
    return 0.0


def sharded_step(config, meta, mesh):
  """jit(shard_map(train.train_step)): state replicated, batch split over the mesh's axis."""
  step = train.step_function(config, meta)
  # check_vma=False: the LSTM's scan starts from a device-invariant zero carry that
  # per-device dropout makes device-varying, which the check rejects; the state that
  # comes out is the same on every device (gradients are averaged), as under pmap.
  return jax.jit(
    jax.shard_map(
      step, mesh=mesh, in_specs=(P(), P('batch'), P()), out_specs=(P(), P()), check_vma=False
    ),
    donate_argnums=(0,),
  )


def matmul_rate(size: int, dtype, min_seconds: float) -> float:
  """Measured FLOP/s of a [size, size] @ [size, size] matmul at JAX's default precision."""
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), dtype)
  b = jax.random.normal(jax.random.PRNGKey(1), (size, size), dtype)
  matmul = jax.jit(lambda x, y: x @ y)
  matmul(a, b).block_until_ready()
  repeats, elapsed = 1, 0.0
  while elapsed < min_seconds:
    start = time.perf_counter()
    for _ in range(repeats):
      out = matmul(a, b)
    out.block_until_ready()
    elapsed = time.perf_counter() - start
    if elapsed < min_seconds:
      repeats *= 2
  return 2.0 * size**3 * repeats / elapsed


def nominal_peak(device, dtype: str):
  """(TFLOP/s, label) of the device's nominal dense peak for dtype, or (None, '') if unknown."""
  if device.platform != 'gpu':
    return None, ''
  for name, bf16, tf32 in NOMINAL_PEAKS:
    if name in device.device_kind:
      return (bf16, f'{name} bf16 dense') if dtype == 'bfloat16' else (tf32, f'{name} TF32 dense')
  return None, ''


def step_memory_gib(compiled):
  """Device memory the compiled step needs, in GiB (None where not reported).

  XLA's own figure for this executable (arguments + outputs - donated aliases +
  temporaries), so rows do not inherit an earlier row's peak as the allocator's
  process-wide peak would.
  """
  try:
    stats = compiled.memory_analysis()
    needed = (
      stats.argument_size_in_bytes
      + stats.output_size_in_bytes
      - stats.alias_size_in_bytes
      + stats.temp_size_in_bytes
    )
  except Exception:
    return None
  return needed / 2**30


def time_steps(compiled, state, batch, root, min_seconds: float, max_steps: int):
  """(state, seconds per step) over enough steps to fill min_seconds, after two warm-up steps."""
  for _ in range(2):
    state, metrics = compiled(state, batch, root)
  jax.block_until_ready((state, metrics))
  start = time.perf_counter()
  state, metrics = compiled(state, batch, root)
  jax.block_until_ready((state, metrics))
  first = time.perf_counter() - start
  steps = int(min(max(math.ceil(min_seconds / max(first, 1e-6)), 3), max_steps))
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch, root)
  jax.block_until_ready((state, metrics))
  if not np.isfinite(float(metrics['loss'])):
    raise FloatingPointError(f'loss is {float(metrics["loss"])}')
  return state, (time.perf_counter() - start) / steps


@dataclasses.dataclass(frozen=True)
class Settings:
  """What one run measures (the command line's flags; help in define_flags)."""

  configs: str = 'small,base'
  batch_sizes: str = '32,256,1024'
  dtypes: str = 'float32,bfloat16'
  frames: int = 29
  matmul_size: int = 0
  min_seconds: float = 2.0
  max_steps: int = 200
  time_budget_s: float = 0.0


class Runner:
  """Measures rows, building each config's initial state and unrolled FLOP count only once."""

  def __init__(self, args: Settings, mesh, matmul):
    self.args, self.mesh, self.matmul = args, mesh, matmul
    self.states = {}  # config name -> host TrainState (parameters do not depend on dtype)
    self.flops = {}  # (config name, batch per device) -> FLOPs per step and device

  def model(self, name: str, dtype: str, per_device: int, unroll: int = 0):
    """(config, meta, model) for a config name at a compute dtype and batch size."""
    config = load_config(name)
    config.model.dtype = dtype
    config.batch_size = per_device * self.mesh.size
    if unroll:
      config.model.lstm_unroll = unroll
    meta = make_meta(NUM_CLASSES[name], self.args.frames)
    from lipjax import models

    return config, meta, models.create_model(config, meta)

  def unrolled_flops(self, name: str, per_device: int, host_state) -> float:
    """FLOPs per device of the float32 step with the LSTM's scan unrolled (0.0: unavailable).

    Lowered, not compiled, and for a one-device CPU mesh on abstract arguments:
    only the CPU client estimates costs before compilation (GPU clients raise),
    and compiling the unrolled step on the accelerator would cost minutes.
    """
    config, meta, model = self.model(name, 'float32', per_device, unroll=self.args.frames)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices('cpu')[:1]), ('batch',))

    def abstract(tree, spec):
      return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(
          np.shape(x), np.asarray(x).dtype, sharding=NamedSharding(mesh, spec)
        ),
        tree,
      )

    try:
      lowered = sharded_step(config, meta, mesh).lower(
        abstract(host_state.replace(apply_fn=model.apply), P()),
        abstract(random_batch(meta, per_device), P('batch')),
        abstract(jax.tree.map(np.asarray, train.run_keys(1)[1]), P()),
      )
      return total_flops(lowered.cost_analysis())
    except Exception:
      traceback.print_exc()
      return 0.0

  def measure(self, name: str, dtype: str, per_device: int) -> dict:
    """One row: compile time, examples/s, FLOPs and utilisation of a config's train step."""
    config, meta, model = self.model(name, dtype, per_device)
    if name not in self.states:
      self.states[name] = jax.device_get(
        train.create_train_state(config, meta, model, jax.random.PRNGKey(0))
      )
    host_state = self.states[name].replace(apply_fn=model.apply)
    replicated, split = NamedSharding(self.mesh, P()), NamedSharding(self.mesh, P('batch'))
    batch = jax.device_put(random_batch(meta, config.batch_size), split)
    root = jax.device_put(train.run_keys(1)[1], replicated)
    state = jax.device_put(host_state, replicated)

    start = time.perf_counter()
    compiled = sharded_step(config, meta, self.mesh).lower(state, batch, root).compile()
    compile_s = time.perf_counter() - start
    xla_scan = cost_flops(compiled)
    if (name, per_device) not in self.flops:
      self.flops[name, per_device] = self.unrolled_flops(name, per_device, host_state)
    # Without an unrolled count (see unrolled_flops), XLA's undercount, flagged in the table.
    flops = self.flops[name, per_device] or xla_scan

    state, seconds = time_steps(
      compiled, state, batch, root, self.args.min_seconds, self.args.max_steps
    )
    del state
    device = self.mesh.devices.flat[0]
    achieved = flops / seconds  # per device: the lowered step is one device's share
    peak, _ = nominal_peak(device, dtype)
    return {
      'config': name,
      'dtype': dtype,
      'batch': per_device,
      'params': sum(x.size for x in jax.tree.leaves(host_state.params)),
      'compile_s': compile_s,
      'step_ms': seconds * 1e3,
      'examples_s': config.batch_size / seconds,
      'gflop_step': flops / 1e9,
      'xla_scan_gflop': xla_scan / 1e9,
      'tflop_s': achieved / 1e12,
      'unrolled': bool(self.flops[name, per_device]),
      'of_matmul': achieved / self.matmul[dtype],
      'of_peak': None if peak is None else achieved / (peak * 1e12),
      'memory_gib': step_memory_gib(compiled),
    }


def format_row(row: dict) -> str:
  """One table line; a failed measurement shows its error instead of figures."""
  head = f'| {row["config"]} | {row["dtype"]} | {row["batch"]} |'
  if 'error' in row:
    return head + f' failed: {row["error"]} |'
  of_peak = '-' if row['of_peak'] is None else f'{100 * row["of_peak"]:.2f}%'
  memory = '-' if row['memory_gib'] is None else f'{row["memory_gib"]:.2f}'
  return (
    head + f' {row["params"]:,} | {row["compile_s"]:.1f} | {row["step_ms"]:.2f} | '
    f'{row["examples_s"]:,.0f} | {row["gflop_step"]:.2f}{"" if row["unrolled"] else "*"} '
    f'({row["xla_scan_gflop"]:.2f}) | '
    f'{row["tflop_s"]:.3f} | {100 * row["of_matmul"]:.2f}% | {of_peak} | {memory} |'
  )


TABLE_HEAD = (
  '| config | dtype | batch/device | params | compile s | step ms | train ex/s | '
  'GFLOP/step (xla_scan) | achieved TFLOP/s | of matmul | of nominal | step GiB |\n'
  '|---|---|---|---|---|---|---|---|---|---|---|---|'
)


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  d = Settings()
  flags.DEFINE_string('configs', d.configs, 'Names under configs/.')
  flags.DEFINE_string('batch_sizes', d.batch_sizes, 'Batch sizes per device.')
  flags.DEFINE_string('dtypes', d.dtypes, 'Compute dtypes.')
  flags.DEFINE_integer('frames', d.frames, 'Frames per clip (T).')
  flags.DEFINE_integer(
    'matmul_size',
    d.matmul_size,
    'Square matmul for the reference rate (0: 8192 on GPU/TPU, 2048 on CPU).',
  )
  flags.DEFINE_float('min_seconds', d.min_seconds, 'Timed time per row.')
  flags.DEFINE_integer('max_steps', d.max_steps, 'Most timed steps per row.')
  flags.DEFINE_float(
    'time_budget_s', d.time_budget_s, 'Start no new row after this many seconds (0: no limit).'
  )


def main(argv: list[str]) -> None:
  """Measures the rows the flags ask for and prints them."""
  del argv  # takes no arguments
  benchmark(Settings(**{f.name: FLAGS[f.name].value for f in dataclasses.fields(Settings)}))


def benchmark(args: Settings) -> list[dict]:
  """Measures every config x batch size x dtype row; prints the table; returns the rows."""
  started = time.perf_counter()

  devices = jax.devices()
  device = devices[0]
  # Mesh() rather than jax.make_mesh, whose default axis type differs across JAX versions.
  mesh = jax.sharding.Mesh(np.asarray(devices), ('batch',))
  print(
    f'jax {jax.__version__} on {len(devices)} x {device.platform} ({device.device_kind}); '
    f'python {platform.python_version()}; {os.cpu_count()} host cores',
    flush=True,
  )
  size = args.matmul_size or (2048 if device.platform == 'cpu' else 8192)
  matmul = {}
  for dtype in args.dtypes.split(','):
    matmul[dtype] = matmul_rate(size, jnp.dtype(dtype), args.min_seconds)
    peak, label = nominal_peak(device, dtype)
    nominal = f'; nominal {peak:.1f} TFLOP/s ({label})' if peak else ''
    print(
      f'matmul {size}^2 {dtype}: {matmul[dtype] / 1e12:.3f} TFLOP/s measured{nominal}', flush=True
    )

  print(TABLE_HEAD, flush=True)
  runner = Runner(args, mesh, matmul)
  rows = []
  # In the order given, batch sizes before dtypes: a time budget then drops whole batch sizes.
  for name in args.configs.split(','):
    for per_device in map(int, args.batch_sizes.split(',')):
      for dtype in args.dtypes.split(','):
        if args.time_budget_s and time.perf_counter() - started > args.time_budget_s:
          rows.append(
            {
              'config': name,
              'dtype': dtype,
              'batch': per_device,
              'error': f'skipped: time budget {args.time_budget_s:.0f} s spent',
            }
          )
        else:
          try:
            rows.append(runner.measure(name, dtype, per_device))
          except Exception as e:
            # One row out of memory (or worse) must not cost the rows after it.
            traceback.print_exc()
            rows.append(
              {
                'config': name,
                'dtype': dtype,
                'batch': per_device,
                'error': f'{type(e).__name__}: {str(e).splitlines()[0][:160]}',
              }
            )
        print(format_row(rows[-1]), flush=True)

  print(
    '\nAll rows (utilisation per device; examples/s over all devices; GFLOP/step with *: '
    "no unrolled count, XLA's count of the scanned step):"
  )
  print(TABLE_HEAD)
  for row in rows:
    print(format_row(row))
  print(f'total {time.perf_counter() - started:.0f} s')
  print('command: python ' + ' '.join(sys.argv))
  return rows


if __name__ == '__main__':
  cli.run(main, 'experiments/bench_gpu.py', define_flags, takes_arguments=False)
