"""How much is each of the seed's fixes worth? Trains every variant on the demo data, 3 seeds each.

Usage:
  python experiments/ablate.py [--steps 400] [--seeds 0,1,2] [--out experiments/results/ablation]
      [--variants 'lipjax (small),no mixup'] [--data_dir DIR] [--base KEY=VALUE ...]

`--base` (repeatable) changes every variant's config before the variant's own overrides (which win),
e.g. `--base model.centre=window_scaled` ablates the seed's fixes on words in running
speech from the centring chosen for it.

Each run trains with `lipjax.train.train_and_evaluate`, then evaluates its best
checkpoint (by val accuracy) in eval mode on the full train, val and test
splits. The demo data's splits are speaker-disjoint, so test accuracy is
speaker-independent. Writes one JSON per run (reruns skip finished runs),
`runs.csv` (every run), `ablation.csv` and `ablation.md` (mean +- std over
seeds), and prints the table. The train-val gap is train accuracy minus val
accuracy of the same checkpoint, both in eval mode (no dropout, no augmentation).
"""

import ast
import csv
import json
import os
import platform
import resource
import shlex
import shutil
import time

from absl import flags
import numpy as np

from configs import seed as seed_config
from configs import small as small_config
from extraction import cli
from lipjax import evaluate
from lipjax import models
from lipjax import train

# The 35M-parameter seed model trains ~12x slower than small on CPU (0.6 vs 7 steps/s);
# it gets this many steps (6.4 epochs of the demo's 750 training clips at batch 32) so the
# table fits in an hour.
SEED_MODEL_STEPS = 150

# name -> (base config module, overrides, what it tests)
VARIANTS = {
  'lipjax (small)': (small_config, {}, 'all four fixes'),
  'no speech mask': (
    small_config,
    {'model.mask_mode': 'frames'},
    'pool over all real frames instead of the speech frames',
  ),
  'seed index k-NN edges': (
    small_config,
    {'model.edges': 'knn_index'},
    "the seed's edges: node i linked to its index neighbours",
  ),
  'distance k-NN edges': (
    small_config,
    {'model.edges': 'knn_distance'},
    'k-NN on mean landmark positions instead of the mesh',
  ),
  'broadcast globals': (
    small_config,
    {'model.globals_mode': 'broadcast'},
    "the seed's AU/geometry copied onto every node",
  ),
  'seed-sized model': (
    seed_config,
    {},
    "configs/seed.py: the seed's width and all its faults; "
    f'{SEED_MODEL_STEPS} steps only (0.6 steps/s on 2 CPU cores)',
  ),
  'no graph (LSTM on landmarks)': (
    small_config,
    {'model.spatial': 'none'},
    'flattened landmarks + globals straight into the BiLSTM',
  ),
  'no rest centring': (
    small_config,
    {'model.centre': 'none'},
    'raw landmarks and features, not movement away from the rest pose',
  ),
  'rest centring, unscaled': (
    small_config,
    {'model.centre': 'rest'},
    'movement away from the rest pose, without dividing by its RMS',
  ),
  'rest centring': (
    small_config,
    {'model.centre': 'rest_scaled'},
    'movement away from the rest pose (frames outside the speech mask), RMS-scaled',
  ),
  'window centring': (
    small_config,
    {'model.centre': 'window_scaled'},
    "the whole window's mean pose as reference (needs no silence), RMS-scaled",
  ),
  'boundary input': (
    small_config,
    {'model.boundary_input': True},
    'the speech mask also as an input channel of the BiLSTM',
  ),
  'window centring + boundary input': (
    small_config,
    {'model.centre': 'window_scaled', 'model.boundary_input': True},
    'configs/lrw.py: both of the above',
  ),
  'no time warp': (
    small_config,
    {'augment.time_warp': 0.0},
    "keeps each clip's relative sound durations",
  ),
  'no mixup': (small_config, {'augment.mixup_alpha': 0.0}, 'every clip seen on its own'),
  'no clip-timing regularisers': (
    small_config,
    {'augment.time_warp': 0.0, 'augment.time_shift': 0, 'augment.mixup_alpha': 0.0},
    'no time warp, time shift or mixup',
  ),
  # Speaker invariance (each added to --base, or taken out of a --base that has it).
  'axis scale': (small_config, {'augment.axis_scale': 0.2}, 'per-axis scale +-20% (SyncVSR)'),
  'no axis scale': (small_config, {'augment.axis_scale': 0.0}, 'without the per-axis scale'),
  'shear': (small_config, {'augment.shear': 0.2}, 'shear +-0.2 (SyncVSR)'),
  'no shear': (small_config, {'augment.shear': 0.0}, 'without the shear'),
  'smooth rotation': (
    small_config,
    {'augment.smooth_rotation_degrees': 45.0},
    '3-D rotation up to 45 degrees moving over the clip (SyncVSR)',
  ),
  'no smooth rotation': (
    small_config,
    {'augment.smooth_rotation_degrees': 0.0},
    'without the moving rotation',
  ),
  'frame block mask': (
    small_config,
    {'augment.frame_block_mask': 0.1},
    '10% of frames lost in blocks of 3 (SyncVSR)',
  ),
  'no frame block mask': (small_config, {'augment.frame_block_mask': 0.0}, 'no lost blocks'),
  'frame noise': (small_config, {'augment.frame_noise': 0.1}, '10% of frames noise (SyncVSR)'),
  'no frame noise': (small_config, {'augment.frame_noise': 0.0}, 'no noise frames'),
  'point drop': (small_config, {'augment.point_drop': 0.1}, '10% of landmarks held (SyncVSR)'),
  'no point drop': (small_config, {'augment.point_drop': 0.0}, 'every landmark kept'),
  'time cutmix': (
    small_config,
    {'augment.time_cutmix': 0.4, 'augment.mixup_alpha': 0.0},
    "up to 40% of the frames from another clip (SyncVSR's CutMix on time)",
  ),
  'motion scale': (
    small_config,
    {'augment.motion_scale': 0.5},
    'movement scaled per axis by 0.5-1.5 (the speakers articulate with their own gains)',
  ),
  'no motion scale': (small_config, {'augment.motion_scale': 0.0}, 'movement as spoken'),
  'no depth': (
    small_config,
    {'model.depth': False},
    "x and y only: FaceMesh's z (a depth guessed from one camera) left out",
  ),
  'clip standardisation': (
    small_config,
    {'model.centre': 'clip_standardised'},
    "the clip's mean point and one std (SyncVSR); the face's shape kept",
  ),
  'procrustes (clip)': (
    small_config,
    {'model.centre': 'procrustes'},
    "the clip's mean shape onto the train split's mean face",
  ),
  'procrustes (frames)': (
    small_config,
    {'model.centre': 'procrustes_frames'},
    'each frame onto the mean face',
  ),
  'transformer': (
    small_config,
    {'model.temporal': 'transformer', 'model.head_hidden': ()},
    'a 4-layer transformer (width 128, rotary positions, linear head) instead of the BiLSTM',
  ),
  'bilstm': (small_config, {'model.temporal': 'bilstm'}, 'the BiLSTM instead of the transformer'),
  'no boundary input': (
    small_config,
    {'model.boundary_input': False},
    'the word boundary as the pooling mask only',
  ),
}


def parse_base(items: list[str]) -> dict:
  """--base KEY=VALUE items -> {key: value}, values read as Python literals where they parse."""
  base = {}
  for item in items:
    key, sep, value = item.partition('=')
    if not sep or not key:
      raise ValueError(f'--base takes KEY=VALUE, got {item!r}')
    try:
      base[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      base[key] = value  # a bare string, e.g. window_scaled
  return base


def variant_config(
  name: str, seed: int, steps: int, data_dir: str | None, base: dict | None = None
):
  """The resolved config of one variant and seed."""
  module, overrides, _ = VARIANTS[name]
  config = module.get_config()
  config.lock()  # a misspelt key fails instead of adding a field nothing reads
  config.update_from_flattened_dict(base or {})
  config.update_from_flattened_dict(overrides)
  config.seed = seed
  if steps != config.num_train_steps:  # a shortened run: evaluate 8 times, warm up for <= 10%
    config.num_train_steps = steps
    config.eval_every_steps = max(1, steps // 8)
    config.checkpoint_every_steps = config.eval_every_steps
    config.warmup_steps = min(config.warmup_steps, steps // 10)
  if data_dir:
    config.data_dir = data_dir
  return config


def parameter_count(workdir: str) -> int:
  """Number of trainable parameters of a trained workdir's model."""
  params = evaluate.restore_model(workdir)[3]
  return sum(count for _, count in models.parameter_counts(params, depth=1))


def _paths(name: str, seed: int, out: str) -> tuple[str, str]:
  """(workdir, result JSON) of one variant/seed."""
  slug = ''.join(c if c.isalnum() else '_' for c in name).strip('_')
  workdir = os.path.join(out, 'runs', f'{slug}_seed{seed}')
  return workdir, workdir + '.json'


def variant_steps(name: str, steps: int) -> int:
  """The steps a variant trains for: the seed-sized model is capped at SEED_MODEL_STEPS."""
  return min(steps, SEED_MODEL_STEPS) if VARIANTS[name][0] is seed_config else steps


def finished_run(
  name: str, seed: int, steps: int, out: str, data_dir: str | None, base: dict | None = None
) -> dict | None:
  """The saved result of one variant/seed if it was made with today's config, else None."""
  config = variant_config(name, seed, variant_steps(name, steps), data_dir, base)
  return _saved_result(_paths(name, seed, out)[1], json.loads(config.to_json_best_effort()))


# Config fields added after runs were saved, with the value that reproduces the code from
# before each existed: a saved config that lacks one matches today's if today's has this value.
ADDED_FIELDS = {'min_train_steps': 0}  # 2026-11-27: 0 = early stopping from the first evaluation


def _saved_result(result_path: str, resolved: dict) -> dict | None:
  """The result JSON at result_path if it was made with the resolved config, else None."""
  if not os.path.exists(result_path):
    return None
  with open(result_path) as f:
    saved = json.load(f)
  config = saved.get('config')
  if config is not None:
    config = {**{k: v for k, v in ADDED_FIELDS.items() if k in resolved}, **config}
  return saved if config == resolved else None


def run_one(
  name: str, seed: int, steps: int, out: str, data_dir: str | None, base: dict | None = None
) -> dict:
  """Trains and evaluates one variant/seed, or returns its saved result if the config is unchanged."""
  workdir, result_path = _paths(name, seed, out)
  steps = variant_steps(name, steps)
  config = variant_config(name, seed, steps, data_dir, base)
  resolved = json.loads(config.to_json_best_effort())
  saved = _saved_result(result_path, resolved)
  if saved is not None:
    return saved
  if os.path.exists(result_path):
    # A default changed since (e.g. configs/small.py): the old run and its checkpoints are stale.
    print(f'{result_path}: made with another config; training {name!r} seed {seed} again')
    shutil.rmtree(workdir, ignore_errors=True)
  began = time.perf_counter()
  train.train_and_evaluate(config, workdir)
  train_seconds = time.perf_counter() - began
  scores = {split: evaluate.evaluate_workdir(workdir, split) for split in ('train', 'val', 'test')}
  result = {
    'variant': name,
    'seed': seed,
    'steps': steps,
    'train_accuracy': scores['train']['accuracy'],
    'val_accuracy': scores['val']['accuracy'],
    'test_accuracy': scores['test']['accuracy'],
    'test_macro_f1': scores['test']['macro_f1'],
    'gap': scores['train']['accuracy'] - scores['val']['accuracy'],
    'best_step': scores['test']['step'],
    'parameters': parameter_count(workdir),
    'train_seconds': train_seconds,
    # This process's peak so far (training and evaluating every run before this one too).
    'peak_rss_gib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    'config': resolved,
  }
  with open(result_path, 'w') as f:
    json.dump(result, f, indent=1)
  return result


def write_csv(path: str, records: list[dict]) -> None:
  """records as CSV; a column missing from a record (a run saved before it existed) stays empty."""
  columns = list(dict.fromkeys(key for record in records for key in record))
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(records)


def summarise(results: list[dict]) -> list[dict]:
  """Mean and std over seeds per variant, in VARIANTS order."""
  rows = []
  for name in VARIANTS:
    runs = [r for r in results if r['variant'] == name]
    if not runs:
      continue
    test = np.array([r['test_accuracy'] for r in runs])
    gap = np.array([r['gap'] for r in runs])
    rows.append(
      {
        'variant': name,
        'seeds': len(runs),
        'test_accuracy_mean': test.mean(),
        'test_accuracy_std': test.std(ddof=1) if len(runs) > 1 else 0.0,
        'train_val_gap_mean': gap.mean(),
        'train_val_gap_std': gap.std(ddof=1) if len(runs) > 1 else 0.0,
        'train_accuracy_mean': np.mean([r['train_accuracy'] for r in runs]),
        'val_accuracy_mean': np.mean([r['val_accuracy'] for r in runs]),
        'parameters': runs[0]['parameters'],
        'minutes_per_run': np.mean([r['train_seconds'] for r in runs]) / 60,
        'steps': runs[0]['steps'],
        'what': VARIANTS[name][2],
      }
    )
  return rows


def markdown(rows: list[dict], header: str) -> str:
  """The ablation table as markdown."""
  lines = [
    header,
    '',
    '| variant | seeds | test accuracy | train-val gap | train / val accuracy | parameters | steps '
    '| min/run | what changes |',
    '|---|---|---|---|---|---|---|---|---|',
  ]
  for r in rows:
    lines.append(
      f'| {r["variant"]} | {r["seeds"]} | {r["test_accuracy_mean"]:.3f} ± {r["test_accuracy_std"]:.3f} '
      f'| {r["train_val_gap_mean"]:+.3f} ± {r["train_val_gap_std"]:.3f} '
      f'| {r["train_accuracy_mean"]:.3f} / {r["val_accuracy_mean"]:.3f} '
      f'| {r["parameters"]:,} | {r["steps"]} | {r["minutes_per_run"]:.1f} | {r["what"]} |'
    )
  return '\n'.join(lines) + '\n'


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_integer('steps', 400, 'Training steps per run.')
  cli.define_integer_list('seeds', [0, 1, 2], 'Seeds of each variant.')
  flags.DEFINE_list(
    'variants',
    list(VARIANTS),
    'Variants to run (CSV: quote a name with a comma), of: ' + '; '.join(VARIANTS),
  )
  flags.DEFINE_string('data_dir', None, 'Data set (default: the demo data set, built if missing).')
  flags.DEFINE_string('out', os.path.join('experiments', 'results', 'ablation'), 'Result folder.')
  flags.DEFINE_multi_string(
    'base',
    [],
    "KEY=VALUE config change under every variant (the variant's own win), e.g. "
    'model.centre=window_scaled; repeat the flag for more.',
  )
  flags.DEFINE_bool(
    'only_finished',
    False,
    'Train nothing: the table of the runs already finished (same config) among those asked.',
  )


def main(argv: list[str]) -> None:
  """Trains (or reads) every variant and seed asked; writes and prints the table."""
  del argv  # takes no arguments
  unknown = [name for name in FLAGS.variants if name not in VARIANTS]
  if unknown:
    raise ValueError(f'--variants: no variant {unknown}; one of {list(VARIANTS)}')
  base = parse_base(FLAGS.base)
  os.makedirs(os.path.join(FLAGS.out, 'runs'), exist_ok=True)
  began = time.perf_counter()
  results = []
  for name in FLAGS.variants:
    for seed in FLAGS.seeds:
      if FLAGS.only_finished:
        result = finished_run(name, seed, FLAGS.steps, FLAGS.out, FLAGS.data_dir, base)
        if result is None:
          continue
      else:
        result = run_one(name, seed, FLAGS.steps, FLAGS.out, FLAGS.data_dir, base)
      results.append(result)
      print(
        f'{name}, seed {seed}: test {result["test_accuracy"]:.3f}, gap {result["gap"]:+.3f}, '
        f'{result["train_seconds"] / 60:.1f} min',
        flush=True,
      )
  if not results:
    raise FileNotFoundError(f'no finished runs of these variants and seeds under {FLAGS.out}')
  write_csv(os.path.join(FLAGS.out, 'runs.csv'), results)
  rows = summarise(results)
  write_csv(os.path.join(FLAGS.out, 'ablation.csv'), rows)
  command = (
    f'python experiments/ablate.py --steps {FLAGS.steps} --seeds {",".join(map(str, FLAGS.seeds))}'
  )
  if FLAGS.variants != list(VARIANTS):
    command += ' --variants ' + shlex.quote(flags.CsvListSerializer(',').serialize(FLAGS.variants))
  if FLAGS.data_dir:
    command += f' --data_dir {FLAGS.data_dir}'
  for item in FLAGS.base:
    command += ' --base ' + shlex.quote(item)
  if FLAGS.only_finished:
    command += ' --only_finished'
    seeds_of = {
      name: sorted(r['seed'] for r in results if r['variant'] == name) for name in VARIANTS
    }
    print('finished runs: ' + '; '.join(f'{n} seeds {s}' for n, s in seeds_of.items() if s))
  if FLAGS.out != FLAGS['out'].default:
    command += f' --out {FLAGS.out}'
  header = (
    f'Ablation on {FLAGS.data_dir or "the demo data set"} ({time.strftime("%Y-%m-%d")}, '
    f'{platform.machine()}, '
    f'{os.cpu_count()} cores), {FLAGS.steps} steps per run, seeds {FLAGS.seeds}; '
    f'`{command}`; {(time.perf_counter() - began) / 60:.0f} min for the runs not cached, '
    f'peak memory {max(r.get("peak_rss_gib", 0.0) for r in results):.1f} GiB.'
  )
  table = markdown(rows, header)
  with open(os.path.join(FLAGS.out, 'ablation.md'), 'w') as f:
    f.write(table)
  print(table)


if __name__ == '__main__':
  cli.run(main, 'experiments/ablate.py', define_flags, takes_arguments=False)
