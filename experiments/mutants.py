"""Hand-written mutation testing: does some fast test fail when a behaviour breaks?

Each mutant is one plausible bug written as a source replacement. They are
applied one at a time to a copy of the working tree (tracked and untracked,
not ignored files) in a temporary folder, the tests named for that behaviour
run there, and the mutant is `killed` if they fail, `survived` if they pass,
and `stale` if its source text is no longer in the file (refresh it).

  python experiments/mutants.py                  # every mutant
  python experiments/mutants.py --only resume    # names containing 'resume'
  python experiments/mutants.py --list

Not part of CI: a full run trains the test fixtures once per mutant (about an
hour on 2 cores). Compiled XLA programs are kept in one cache across mutants.
"""

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import flags

from extraction import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Mutant:
  """One bug: replace `old` (exactly once) by `new` in `path`; `tests` should fail."""

  name: str
  path: str
  old: str
  new: str
  tests: tuple[str, ...]  # pytest arguments: files, then optionally '-k', 'expression'


TRAIN = 'lipjax/train.py'
MODELS = 'lipjax/models.py'
PIPELINE = 'lipjax/input_pipeline.py'
AUGMENT = 'lipjax/augment.py'
SOURCE = 'lipjax/data_source.py'
CHECKPOINTS = 'lipjax/checkpoints.py'
EVALUATION = 'lipjax/evaluation.py'
T_TRAIN = 'tests/lipjax/test_train.py'
T_PIPELINE = 'tests/lipjax/test_input_pipeline.py'
T_AUGMENT = 'tests/lipjax/test_augment.py'
T_SOURCE = 'tests/lipjax/test_data_source.py'
T_MODELS = 'tests/lipjax/test_models.py'
T_PREDICT = 'tests/lipjax/test_predict.py'
T_DIAGNOSE = 'tests/lipjax/test_diagnose.py'

MUTANTS = (
  # --- the bugs of issue 17's table ---
  Mutant(
    'pooling reads frame_mask instead of speech_mask',
    MODELS,
    "pooling_mask(batch['frame_mask'], batch['speech_mask'], self.mask_mode)",
    "pooling_mask(batch['frame_mask'], batch['frame_mask'], self.mask_mode)",
    (T_MODELS, '-k', 'speech'),
  ),
  Mutant(
    'resume: checkpoint never restored',
    TRAIN,
    'if latest.latest_step() is not None:',
    'if False:',
    (T_TRAIN, '-k', 'resumed'),
  ),
  Mutant(
    'resume: metrics past the checkpoint kept',
    TRAIN,
    '    metrics_log.truncate(workdir, start_step)\n',
    '    pass\n',
    (T_TRAIN, '-k', 'resumed'),
  ),
  Mutant(
    'loss: label smoothing dropped',
    TRAIN,
    'optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)',
    'jax.nn.one_hot(labels, logits.shape[-1])',
    (T_TRAIN, '-k', 'cross_entropy or mixup'),
  ),
  Mutant(
    'best checkpoint by minimum val accuracy',
    CHECKPOINTS,
    "best_mode='max'",
    "best_mode='min'",
    (T_TRAIN, '-k', 'best_checkpoint'),
  ),
  Mutant(
    'flip through an identity permutation',
    AUGMENT,
    'mirrored = jnp.take(landmarks, jnp.asarray(mirror_perm), axis=-2)',
    'mirrored = landmarks',
    (T_AUGMENT, '-k', 'flip'),
  ),
  Mutant(
    'mixup weight not the majority',
    AUGMENT,
    'return mix_clips(clip, partner, jnp.maximum(w, 1.0 - w))',
    'return mix_clips(clip, partner, w)',
    (T_AUGMENT, '-k', 'mixup'),
  ),
  Mutant(
    'the same shuffle order every epoch',
    PIPELINE,
    '.shuffle(seed=order_seed(config.seed)).repeat()',
    '.repeat(2**20).shuffle(seed=order_seed(config.seed))',
    (T_PIPELINE, '-k', 'epoch_is'),
  ),
  Mutant(
    'the same order whatever the seed',
    PIPELINE,
    "return zlib.crc32(f'lipjax/example-order/{seed}'.encode())",
    "return zlib.crc32(b'lipjax/example-order')",
    (T_PIPELINE, '-k', 'seed'),
  ),
  Mutant(
    'hosts read the first rows of every global batch',
    PIPELINE,
    'first_row = host_index * host_batch',
    'first_row = 0',
    (T_PIPELINE, '-k', 'hosts'),
  ),
  Mutant(
    'augmentation keyed by local row, not global row',
    'lipjax/train.py',
    "rows=parallel.global_rows(batch['length'].shape[0]),",
    'rows=None,',
    ('tests/lipjax/test_train.py', '-k', 'two_devices'),
  ),
  Mutant(
    "one augmentation draws from another one's stream",
    AUGMENT,
    "noise = std * jax.random.normal(stream(key, 'jitter'), clip['landmarks'].shape)",
    "noise = std * jax.random.normal(stream(key, 'flip'), clip['landmarks'].shape)",
    (T_AUGMENT, '-k', 'stream'),
  ),
  Mutant(
    'TFRecord checksum not checked',
    SOURCE,
    '      if _masked_crc(record) != crc:',
    '      if False:',
    (T_SOURCE, '-k', 'corrupt'),
  ),
  Mutant(
    'shard record counts not checked',
    SOURCE,
    '      if found != expected:',
    '      if False:',
    (T_SOURCE, '-k', 'truncated'),
  ),
  Mutant(
    'predict ignores --start/--end',
    'lipjax/predict.py',
    'interval = (FLAGS.start, FLAGS.end) if FLAGS.start is not None else None',
    'interval = None',
    (T_PREDICT, '-k', 'cli'),
  ),
  Mutant(
    'predict loads the latest checkpoint (and calls it best)',
    'lipjax/predict.py',
    '    self.config, self.meta, model, self.params, self.step, self.checkpoint = evaluate.restore_model(\n'
    '      workdir\n'
    '    )\n',
    '    from lipjax import checkpoints\n'
    '\n'
    '    self.config, self.meta, model, _, _, _ = evaluate.restore_model(workdir)\n'
    '    latest, _ = checkpoints.managers(workdir, keep=1)\n'
    "    self.step, self.checkpoint = latest.latest_step(), 'best'\n"
    '    self.params = latest.restore(\n'
    '      self.step,\n'
    '      args=checkpoints.ocp.args.Composite(state=checkpoints.ocp.args.StandardRestore()),\n'
    "    ).state['params']\n",
    (T_PREDICT, '-k', 'best_checkpoint or clip_by_clip'),
  ),
  Mutant(
    'evaluate and predict prefer the latest checkpoint',
    CHECKPOINTS,
    '    (BEST, best, best.best_step()),\n    (LATEST, latest, latest.latest_step()),\n',
    '    (LATEST, latest, latest.latest_step()),\n    (BEST, best, best.best_step()),\n',
    (T_TRAIN, '-k', 'best_checkpoint'),
  ),
  Mutant(
    'speech mask one frame late after the cut',
    'extraction/clip.py',
    'offset = window.first / settings.fps',
    'offset = (window.first - 1) / settings.fps',
    ('tests/extraction/test_clip.py',),
  ),
  Mutant(
    "diagnose's data-set table blanked",
    'lipjax/diagnose.py',
    'facts = dataset_facts(report) if report else None',
    'facts = None',
    (T_DIAGNOSE, '-k', 'extracted'),
  ),
  Mutant(
    'confusion matrix transposed (metrics)',
    'lipjax/metrics.py',
    '(labels[keep], predictions[keep])',
    '(predictions[keep], labels[keep])',
    (T_TRAIN, '-k', 'evaluate_writes'),
  ),
  Mutant(
    'confusion matrix transposed (evaluate report)',
    'lipjax/evaluate.py',
    "'confusion_matrix': result['confusion'].tolist()",
    "'confusion_matrix': result['confusion'].T.tolist()",
    (T_TRAIN, '-k', 'evaluate_writes'),
  ),
  # --- more on losses ---
  Mutant(
    'mixup loss weights swapped',
    TRAIN,
    "return weight * cross_entropy(logits, batch['label'], label_smoothing) + (",
    "return (1.0 - weight) * cross_entropy(logits, batch['label'], label_smoothing) + (",
    (T_TRAIN, '-k', 'mixup'),
  ),
  Mutant(
    'train step ignores label_smoothing',
    TRAIN,
    'jnp.mean(mixed_cross_entropy(logits, batch, label_smoothing))',
    'jnp.mean(mixed_cross_entropy(logits, batch, 0.0))',
    (T_TRAIN, '-k', 'label_smoothed'),
  ),
  Mutant(
    'eval loss over padded examples too',
    EVALUATION,
    "'loss': float((out['loss'] * mask).sum() / max(count, 1.0))",
    "'loss': float(out['loss'].mean())",
    (T_PREDICT, '-k', 'clip_by_clip'),
  ),
  Mutant(
    'eval accuracy over padded examples too',
    EVALUATION,
    "metrics_lib.masked_accuracy(out['label'], out['prediction'], mask)",
    "metrics_lib.masked_accuracy(out['label'], out['prediction'], mask * 0 + 1)",
    (T_TRAIN, '-k', 'evaluate_writes'),
  ),
  # --- masks and pooling ---
  Mutant(
    'speech pooling without the fallback to frames',
    MODELS,
    'return jnp.where(has_speech, speech, frame_mask)',
    'return speech',
    (T_MODELS, '-k', 'pooling'),
  ),
  Mutant(
    'masked mean divides by all steps',
    MODELS,
    'jnp.maximum(jnp.sum(weights, axis=1), 1.0)',
    'values.shape[1]',
    (T_MODELS, '-k', 'masked_mean or pooling'),
  ),
  Mutant(
    'rest pose taken from speech frames',
    MODELS,
    'rest = frame_mask * (1 - speech_mask)',
    'rest = frame_mask * speech_mask',
    (T_MODELS, '-k', 'rest or centring'),
  ),
  Mutant(
    'velocity across the first padding frame',
    MODELS,
    'both_real = real[:, 1:] * real[:, :-1]',
    'both_real = real[:, :-1]',
    (T_MODELS, '-k', 'velocity'),
  ),
  Mutant(
    'mixup speech mask not the union',
    AUGMENT,
    "out['speech_mask'] = jnp.maximum(clip['speech_mask'], partner['speech_mask'] * clip['frame_mask'])",
    "out['speech_mask'] = clip['speech_mask']",
    (T_AUGMENT, '-k', 'mix'),
  ),
  # --- checkpoint selection and resume ---
  Mutant(
    'best checkpoint on ties moves to the later one',
    TRAIN,
    "improved = val['accuracy'] > progress['best_val_accuracy']",
    "improved = val['accuracy'] >= progress['best_val_accuracy']",
    (T_TRAIN, '-k', 'best_checkpoint or resumed or early_stopping'),
  ),
  Mutant(
    'resume: stale best checkpoints past the restart kept',
    TRAIN,
    'if step > start_step:',
    'if step > start_step + 10**9:',
    (T_TRAIN, '-k', 'resumed'),
  ),
  Mutant(
    'resume: data stream restarts at step 0',
    TRAIN,
    'config, meta, start_step, num_devices, host_index, host_count)',
    'config, meta, 0, num_devices, host_index, host_count)',
    (T_TRAIN, '-k', 'resumed'),
  ),
  Mutant(
    'resume: data position not saved',
    TRAIN,
    '        progress.update(data_position(step, per_epoch))\n',
    '',
    (T_TRAIN, '-k', 'resumed'),
  ),
  # --- augmentation wiring ---
  Mutant(
    'flip never applied',
    AUGMENT,
    "do_flip = _uniform(key, 'flip', 0.0, 1.0) < 0.5",
    "do_flip = _uniform(key, 'flip', 0.0, 1.0) < 0.0",
    (T_AUGMENT, '-k', 'flip'),
  ),
  Mutant(
    'mixup partner labels not carried',
    AUGMENT,
    "out['mix_label'] = partner['label']",
    "out['mix_label'] = clip['label']",
    (T_AUGMENT, '-k', 'mix'),
  ),
  # --- reports ---
  Mutant(
    'diagnose: skip reasons dropped',
    'lipjax/diagnose.py',
    "'skip_reasons': reason_counts(s.get('skipped', [])),",
    "'skip_reasons': reason_counts(s.get('skipped', [])[:0]),",
    (T_DIAGNOSE, '-k', 'dataset_facts or extracted'),
  ),
  Mutant(
    'diagnose: speaker counts from the wrong split',
    'lipjax/diagnose.py',
    "'speakers': len(speakers[name]),",
    "'speakers': len(speakers[names[0]]),",
    (T_DIAGNOSE, '-k', 'dataset_facts or extracted'),
  ),
  Mutant(
    'diagnose: not-learning verdict never given',
    'lipjax/diagnose.py',
    'if near_chance and not gap_too_large:',
    'if False:',
    (T_DIAGNOSE, '-k', 'not_learning or extracted'),
  ),
  Mutant(
    'evaluate reports the wrong checkpoint step',
    'lipjax/evaluate.py',
    "'step': int(step),\n    'examples'",
    "'step': int(step) + 1,\n    'examples'",
    (T_TRAIN, '-k', 'best_checkpoint'),
  ),
)


def copy_tree(destination: str) -> None:
  """Copies the files git tracks or would track (not ignored) into destination."""
  names = subprocess.run(
    ['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    cwd=REPO,
    capture_output=True,
    check=True,
  ).stdout.split(b'\0')
  for name in (n.decode() for n in names if n):
    source = os.path.join(REPO, name)
    if not os.path.isfile(source):
      continue
    target = os.path.join(destination, name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(source, target)


def run_mutant(mutant: Mutant, tree: str, cache_dir: str, timeout: float) -> tuple[str, float]:
  """Applies one mutant in tree, runs its tests, restores the file; returns (outcome, seconds)."""
  path = os.path.join(tree, mutant.path)
  with open(path) as f:
    original = f.read()
  if original.count(mutant.old) != 1:
    return 'stale', 0.0
  with open(path, 'w') as f:
    f.write(original.replace(mutant.old, mutant.new))
  env = dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL='2', LIPJAX_TEST_XLA_CACHE=cache_dir)
  start = time.perf_counter()
  try:
    result = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-x', '-rfE', '-p', 'no:cacheprovider', *mutant.tests],
      cwd=tree,
      env=env,
      capture_output=True,
      text=True,
      timeout=timeout,
    )
    # 5: no test collected, which would make every mutant look killed.
    outcome = {0: 'survived', 5: 'no tests'}.get(result.returncode, 'killed')
    failures = [
      line for line in result.stdout.splitlines() if line.startswith(('FAILED ', 'ERROR '))
    ]
    if failures:  # which test caught it, and how
      outcome += '\n          by ' + failures[0][:220]
  except subprocess.TimeoutExpired:
    outcome = 'timeout'
  finally:
    with open(path, 'w') as f:
      f.write(original)
  return outcome, time.perf_counter() - start


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('only', '', 'Run mutants whose name contains this.')
  flags.DEFINE_bool('list', False, 'List the mutants and exit.')
  flags.DEFINE_float('timeout', 900.0, 'Seconds per mutant.')


def main(argv: list[str]) -> int:
  """Runs the selected mutants and prints one line each, then the tally; 1 if any was not killed."""
  del argv  # takes no arguments
  args = FLAGS
  selected = [m for m in MUTANTS if args.only.lower() in m.name.lower()]
  if args.list:
    for m in selected:
      print(f'{m.name}: {m.path} -> {" ".join(m.tests)}')
    return cli.DONE
  outcomes = {}
  with tempfile.TemporaryDirectory(prefix='lipjax_mutants_') as scratch:
    tree = os.path.join(scratch, 'repo')
    copy_tree(tree)
    cache_dir = os.path.join(scratch, 'xla_cache')
    for mutant in selected:
      outcome, seconds = run_mutant(mutant, tree, cache_dir, args.timeout)
      outcome, _, caught_by = outcome.partition('\n')
      outcomes[mutant.name] = outcome
      print(
        f'{outcome:<9} {seconds:6.0f}s  {mutant.name}  [{" ".join(mutant.tests)}]{caught_by}',
        flush=True,
      )
  tally = {o: sum(1 for v in outcomes.values() if v == o) for o in sorted(set(outcomes.values()))}
  print('mutants: ' + ', '.join(f'{n} {o}' for o, n in tally.items()))
  return cli.DONE if set(outcomes.values()) <= {'killed'} else cli.SOME_FAILED


if __name__ == '__main__':
  cli.run(main, 'experiments/mutants.py', define_flags, takes_arguments=False)
