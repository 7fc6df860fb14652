"""lipjax's training step against a PyTorch + PyTorch Geometric twin, measured in one run.

Usage (from the repository, in lipjax's environment):
  python experiments/bench_peer.py --peer_python /tmp/peervenv/bin/python [--rounds 3] [--steps 30]

The peer environment needs only torch, torch_geometric and numpy, e.g.
  python3 -m venv /tmp/peervenv && /tmp/peervenv/bin/pip install torch torch_geometric numpy
(on this VM: `pip install /opt/wheels/torch-2.13.0+cpu-*.whl torch_geometric numpy`).
Never run in CI: it is a benchmark, and torch is not a lipjax dependency.

Both sides train on the same batch (batch 32, T = 29, 88 nodes, random landmark
clips with lengths 60-100% of T), written once to a .npz file with the real
anatomical edge list (extraction.roi), and each side runs in its own process,
alternating round by round so that both see the same machine load; the ratio
is of the medians over rounds. Each side times `--steps` optimizer steps after
three warm-up steps (compilation excluded), with 2 threads:

- jax: lipjax.train.train_step of configs/small.py as `python -m lipjax.train`
  runs it on this CPU (the cores as pmap devices, config.cpu_devices = -1), timed
  twice: with the per-clip augmentation that runs inside lipjax's step
  (lipjax/augment.py) switched off ('jax'), the same work as the twin's step,
  whose augmentation would run in its data loader; and as training runs it, with
  small.py's augmentation ('jax+aug'). Mixup stays on in both (the twin mixes too).
- torch: the twin of the same shape: 2 GCNConv layers x 64 with LayerNorm and
  ReLU (normalisation cached: the graph never changes), mean+max node pooling,
  the 28 AU + geometry globals, a bidirectional nn.LSTM of 128 over packed
  sequences, mean pooling over the speech mask, a 128-unit head, dropout 0.2,
  mixup cross-entropy with label smoothing 0.1, gradient clipping, AdamW.
  Its inputs are centred xyz and velocities as in lipjax, without lipjax's
  rest-pose scaling (a few elementwise operations).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BATCH, FRAMES, NUM_CLASSES = 32, 29, 10


def write_batch(path: str) -> None:
  """The shared batch and graph (lipjax side: needs extraction, not torch)."""
  import numpy as np

  from extraction import roi
  from extraction import schema

  rng = np.random.default_rng(0)
  length = rng.integers(FRAMES * 3 // 5, FRAMES + 1, BATCH).astype(np.int32)
  frame_mask = (np.arange(FRAMES)[None] < length[:, None]).astype(np.float32)
  speech_mask = frame_mask.copy()
  speech_mask[:, :3] = 0
  label = rng.integers(0, NUM_CLASSES, BATCH).astype(np.int32)
  senders, receivers = roi.anatomical_edges()
  np.savez(
    path,
    landmarks=rng.random((BATCH, FRAMES, schema.NUM_NODES, 3), np.float32)
    * frame_mask[..., None, None],
    au=rng.random((BATCH, FRAMES, schema.NUM_AU), np.float32),
    geometry=rng.random((BATCH, FRAMES, schema.NUM_GEOMETRY), np.float32),
    frame_mask=frame_mask,
    face_mask=frame_mask,
    speech_mask=speech_mask,
    length=length,
    label=label,
    example_mask=np.ones(BATCH, np.float32),
    mix_label=np.roll(label, 1),
    mix_weight=rng.uniform(0.5, 1.0, BATCH).astype(np.float32),
    senders=np.asarray(senders, np.int64),
    receivers=np.asarray(receivers, np.int64),
  )


def run_jax(path: str, steps: int, augment: bool = False) -> dict:
  """Examples/s of lipjax's training step (configs/small.py) on this CPU.

  augment=False: every augmentation switch off but mixup (the twin mixes too): its work.
  """

  import numpy as np

  from configs import small
  from lipjax import cli

  config = small.get_config()
  config.batch_size = BATCH
  if not augment:
    from lipjax import augment as augment_lib

    config.augment.update(dict(augment_lib.SWITCHES_OFF, mixup_alpha=config.augment.mixup_alpha))
  devices = cli.split_cpu_into_devices(config.cpu_devices, (BATCH,))

  import jax

  from extraction import schema
  from lipjax import models
  from lipjax import parallel
  from lipjax import train

  data = dict(np.load(path))
  meta = schema.DatasetMeta.for_roi(
    class_names=[f'word{i}' for i in range(NUM_CLASSES)],
    max_frames=FRAMES,
    fps=25.0,
    senders=data.pop('senders'),
    receivers=data.pop('receivers'),
  )
  model = models.create_model(config, meta)
  state = parallel.replicate(train.create_train_state(config, meta, model, jax.random.PRNGKey(0)))
  step = parallel.data_parallel(train.step_function(config, meta), donate_argnums=(0,))
  n = parallel.num_devices()
  batch = parallel.shard(jax.tree.map(lambda x: x.reshape((n, -1) + x.shape[1:]), data))
  roots = parallel.replicate(train.run_keys(1)[1])
  for _ in range(3):
    state, metrics = step(state, batch, roots)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state, batch, roots)
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - start
  return {
    'side': 'jax+aug' if augment else 'jax',
    'version': f'jax {jax.__version__}, {n} CPU devices (cpu_devices={config.cpu_devices}, set {devices})',
    'examples_per_s': steps * BATCH / seconds,
    'loss': float(np.asarray(metrics['loss'])[0]),
  }


def run_torch(path: str, steps: int, threads: int) -> dict:
  """Examples/s of the PyTorch Geometric twin on this CPU."""
  import numpy as np
  import torch
  from torch import nn
  import torch_geometric
  from torch_geometric import nn as gnn

  torch.set_num_threads(threads)
  torch.manual_seed(0)
  data = {k: torch.from_numpy(v) for k, v in np.load(path).items()}
  b, t, n, _ = data['landmarks'].shape
  edges = torch.stack([data['senders'], data['receivers']])  # [2, E], both directions
  offsets = (torch.arange(b * t) * n).repeat_interleave(edges.shape[1])
  edge_index = edges.repeat(1, b * t) + offsets  # one graph per frame, B*T graphs

  class Twin(nn.Module):
    def __init__(self):
      super().__init__()
      self.gcn1, self.gcn2 = gnn.GCNConv(6, 64, cached=True), gnn.GCNConv(64, 64, cached=True)
      self.norm1, self.norm2 = nn.LayerNorm(64), nn.LayerNorm(64)
      self.lstm = nn.LSTM(64 + 64 + 28, 128, batch_first=True, bidirectional=True)
      self.head = nn.Sequential(
        nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, NUM_CLASSES)
      )
      self.dropout = nn.Dropout(0.2)

    def forward(self, d):
      real = d['frame_mask'][..., None, None]  # [B, T, 1, 1]
      x = d['landmarks']
      steps = (x[:, 1:] - x[:, :-1]) * real[:, 1:] * real[:, :-1] * 10.0
      velocity = torch.cat([torch.zeros_like(steps[:, :1]), steps], dim=1)
      nodes = torch.cat([(x - 0.5) * real, velocity], dim=-1).reshape(b * t * n, 6)
      h = torch.relu(self.norm1(self.gcn1(nodes, edge_index)))
      h = torch.relu(self.norm2(self.gcn2(h, edge_index))).reshape(b * t, n, 64)
      frames = torch.cat(
        [h.mean(1), h.amax(1), torch.cat([d['au'], d['geometry']], -1).reshape(b * t, -1)], -1
      )
      frames = self.dropout(frames).reshape(b, t, -1) * d['frame_mask'][..., None]
      packed = nn.utils.rnn.pack_padded_sequence(
        frames, d['length'].long(), batch_first=True, enforce_sorted=False
      )
      out, _ = self.lstm(packed)
      out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t)
      out = self.dropout(out)
      speech = d['speech_mask'] * d['frame_mask']
      pool = torch.where(speech.sum(1, keepdim=True) > 0, speech, d['frame_mask'])[..., None]
      return self.head((out * pool).sum(1) / pool.sum(1).clamp(min=1.0))

  model = Twin()
  optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
  loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1, reduction='none')

  def train_step():
    optimizer.zero_grad(set_to_none=True)
    logits = model(data)
    w = data['mix_weight']
    loss = (
      w * loss_fn(logits, data['label'].long())
      + (1 - w) * loss_fn(logits, data['mix_label'].long())
    ).mean()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss

  model.train()
  for _ in range(3):
    train_step()
  start = time.perf_counter()
  for _ in range(steps):
    loss = train_step()
  seconds = time.perf_counter() - start
  return {
    'side': 'torch',
    'version': f'torch {torch.__version__}, torch_geometric {torch_geometric.__version__}, '
    f'{torch.get_num_threads()} threads',
    'examples_per_s': steps * BATCH / seconds,
    'loss': float(loss),
  }


def run_side(python: str, side: str, path: str, steps: int, threads: int) -> dict:
  """One side in a fresh process; returns its JSON result line."""
  env = dict(os.environ, OMP_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL='2')
  here = os.path.dirname(os.path.abspath(__file__))
  env['PYTHONPATH'] = os.pathsep.join(
    filter(None, [os.path.dirname(here), here, env.get('PYTHONPATH')])
  )
  # A call, not this file's command line: the peer environment has no absl.
  call = {
    'jax': f'run_jax({path!r}, {steps})',
    'jax+aug': f'run_jax({path!r}, {steps}, augment=True)',
    'torch': f'run_torch({path!r}, {steps}, {threads})',
  }[side]
  command = [python, '-c', f'import json, bench_peer; print(json.dumps(bench_peer.{call}))']
  done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
  if done.returncode:
    raise RuntimeError(f'{side} side failed ({python}):\n{done.stderr[-3000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  from absl import flags

  flags.DEFINE_string('peer_python', None, 'Python of an environment with torch + torch_geometric.')
  flags.DEFINE_integer('rounds', 3, 'Rounds, each timing both sides.')
  flags.DEFINE_integer('steps', 30, 'Timed optimizer steps per side and round.')
  flags.DEFINE_integer('threads', 2, 'Threads per side.')


def main(argv: list[str]) -> None:
  """Times both sides round by round; prints the medians, their ratio and the command."""
  del argv  # takes no arguments
  from absl import flags

  from extraction import cli

  args = flags.FLAGS
  cli.require('peer_python')
  rates = {'jax': [], 'jax+aug': [], 'torch': []}
  versions = {}
  print(f'load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores', flush=True)
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'batch.npz')
    write_batch(path)
    for round_ in range(args.rounds):
      for side, python in (
        ('jax', sys.executable),
        ('jax+aug', sys.executable),
        ('torch', args.peer_python),
      ):
        result = run_side(python, side, path, args.steps, args.threads)
        rates[side].append(result['examples_per_s'])
        versions[side] = result['version']
        print(
          f'round {round_ + 1} {side:7s} {result["examples_per_s"]:7.1f} examples/s '
          f'(loss {result["loss"]:.3f}; load {os.getloadavg()[0]:.2f})',
          flush=True,
        )
  median = {side: statistics.median(values) for side, values in rates.items()}
  for side, rate in median.items():
    print(f'{side + ":":8s} median {rate:.1f} examples/s ({versions[side]})')
  print(
    f'ratio jax / torch: {median["jax"] / median["torch"]:.2f}x, jax+aug / torch: '
    f'{median["jax+aug"] / median["torch"]:.2f}x (batch {BATCH}, T = {FRAMES}, 88 nodes)'
  )
  print(f'load average after: {os.getloadavg()[0]:.2f}')
  print('command: python ' + ' '.join(sys.argv))


if __name__ == '__main__':
  # absl and extraction are lipjax's environment's; the torch side imports this file without them.
  from extraction import cli

  cli.run(main, 'experiments/bench_peer.py', define_flags, takes_arguments=False)
