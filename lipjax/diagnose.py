"""Diagnoses a training run: `python -m lipjax.diagnose --workdir DIR [--split val]`.

Reads the workdir (metrics.jsonl, config.json, dataset_meta.json, the orbax
checkpoint) and, when its data_dir exists, the data set's metadata and
extraction_report.json; writes report.md, learning_curves.png and
parameters.png into the workdir (plus eval_{split}.json and
confusion_{split}.png through lipjax.evaluate when they are missing or stale).
The analysis functions are pure; `diagnose_workdir` is the I/O shell.
"""

import collections
import json
import os
from typing import Any

from absl import app
from absl import flags
import numpy as np

from extraction import schema
from lipjax import cli
from lipjax import metrics_log
from lipjax import models
from lipjax import plots
from lipjax import workdir as workdir_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('workdir', None, 'Training workdir to diagnose (or give it positionally).')
  flags.DEFINE_string('split', 'val', 'Split for the confusion matrix (val or test).')
  flags.DEFINE_string('data_dir', None, 'Data set directory (default: the one in config.json).')


# Verdict thresholds. Accuracy margins are fractions of the way from chance to
# perfect, so they mean the same for 3 words and for 500.
NOT_LEARNING_MARGIN = 0.10  # best val accuracy below chance + 0.10 * (1 - chance): not learning
GAP_THRESHOLD = 0.15  # final train - val accuracy at or above this: overfitting
VAL_LOSS_RISE = 0.10  # final val loss >= (1 + this) * its minimum ...
MIN_EVALS_AFTER_MIN = 2  # ... with at least this many evaluations after the minimum ...
# ... while train loss kept falling: overfitting
# Final val accuracy lower than its peak by at least this share of the peak's margin over
# chance (what the run had learned): the run lost what it learned.
PEAK_FALL_FRACTION = 0.25
MIN_EVALUATIONS = 3  # fewer evaluations than this: trends are weak evidence
TOP_CONFUSIONS = 10  # most confused class pairs listed

VERDICT_OVERFITTING = 'overfitting'
VERDICT_HEALTHY = 'healthy'
VERDICT_NOT_LEARNING = 'underfitting/not learning'
VERDICT_FELL_FROM_PEAK = 'val accuracy fell from its peak'

EXPECTED_EDGES = 'anatomical'
EXPECTED_MASK = 'speech'


# ---------------------------------------------------------------- pure analysis


def metric_curves(records: list[dict[str, Any]], source: str) -> dict[str, np.ndarray]:
  """Evaluation records (metrics_log.read) as one array per curve key.  # each [E]"""
  if not records:
    raise ValueError(f'{source}: no evaluations recorded; train until the first evaluation')
  return {k: np.asarray([r[k] for r in records], np.float64) for k in metrics_log.REQUIRED_KEYS}


def chance_level(num_classes: int) -> float:
  """Accuracy of guessing uniformly among the classes."""
  return 1.0 / max(num_classes, 1)


def not_learning_threshold(num_classes: int) -> float:
  """Val accuracy below which a run counts as not learning."""
  chance = chance_level(num_classes)
  return chance + NOT_LEARNING_MARGIN * (1.0 - chance)


def overfitting_evidence(curves: dict[str, np.ndarray], num_classes: int) -> dict[str, Any]:
  """The numbers a verdict rests on, and the verdict."""
  steps = curves['step'].astype(int)
  train_loss, val_loss = curves['train_loss'], curves['val_loss']
  train_acc, val_acc = curves['train_accuracy'], curves['val_accuracy']
  final = len(steps) - 1
  min_index = int(np.argmin(val_loss))
  peak_index = int(np.argmax(val_acc))  # the first of equal peaks
  gaps = train_acc - val_acc  # [E]
  val_loss_rise = float(val_loss[final] / max(val_loss[min_index], 1e-12) - 1.0)
  train_loss_change = float(train_loss[final] - train_loss[min_index])
  evals_after_min = final - min_index
  loss_diverging = bool(
    evals_after_min >= MIN_EVALS_AFTER_MIN
    and val_loss_rise >= VAL_LOSS_RISE
    and train_loss_change < 0
  )
  gap_too_large = bool(gaps[final] >= GAP_THRESHOLD)
  threshold = not_learning_threshold(num_classes)
  near_chance = bool(val_acc[peak_index] < threshold)
  peak_margin = float(val_acc[peak_index] - chance_level(num_classes))
  drop = float(val_acc[peak_index] - val_acc[final])
  fall_threshold = PEAK_FALL_FRACTION * peak_margin
  # A peak near chance has no margin to lose; not learning says more about such a run.
  fell_from_peak = bool(not near_chance and drop >= fall_threshold)

  if near_chance and not gap_too_large:
    verdict = VERDICT_NOT_LEARNING
  elif loss_diverging or gap_too_large:
    verdict = VERDICT_OVERFITTING
  elif fell_from_peak:
    verdict = VERDICT_FELL_FROM_PEAK
  else:
    verdict = VERDICT_HEALTHY
  epoch_per_step = curves['epoch'][final] / max(steps[final], 1)
  return {
    'verdict': verdict,
    'evaluations': len(steps),
    'few_evaluations': len(steps) < MIN_EVALUATIONS,
    'num_classes': num_classes,
    'chance': chance_level(num_classes),
    'not_learning_threshold': threshold,
    'near_chance': near_chance,
    'final_step': int(steps[final]),
    'final_epoch': float(curves['epoch'][final]),
    'steps_per_epoch': (1.0 / epoch_per_step) if epoch_per_step > 0 else None,
    'final_train_loss': float(train_loss[final]),
    'final_val_loss': float(val_loss[final]),
    'final_train_accuracy': float(train_acc[final]),
    'final_val_accuracy': float(val_acc[final]),
    'val_loss_min': float(val_loss[min_index]),
    'val_loss_min_step': int(steps[min_index]),
    'val_loss_min_epoch': float(curves['epoch'][min_index]),
    'evals_after_val_loss_min': evals_after_min,
    'val_loss_rise': val_loss_rise,
    'train_loss_at_val_loss_min': float(train_loss[min_index]),
    'train_loss_change_after_val_loss_min': train_loss_change,
    'loss_diverging': loss_diverging,
    'val_accuracy_peak': float(val_acc[peak_index]),
    'val_accuracy_peak_step': int(steps[peak_index]),
    'val_accuracy_peak_epoch': float(curves['epoch'][peak_index]),
    'val_accuracy_drop_from_peak': drop,
    'val_accuracy_margin_at_peak': peak_margin,
    'val_accuracy_fall_share': drop / peak_margin if peak_margin > 0 else 0.0,
    'val_accuracy_fall_threshold': fall_threshold,
    'evals_after_val_accuracy_peak': final - peak_index,
    'train_accuracy_at_val_accuracy_peak': float(train_acc[peak_index]),
    'fell_from_peak': fell_from_peak,
    'train_accuracy_fell_too': bool(train_acc[peak_index] - train_acc[final] >= fall_threshold),
    'final_accuracy_gap': float(gaps[final]),
    'peak_accuracy_gap': float(gaps.max()),
    'peak_accuracy_gap_step': int(steps[int(np.argmax(gaps))]),
    'gap_too_large': gap_too_large,
  }


def verdict_reasons(evidence: dict[str, Any]) -> list[str]:
  """One sentence per signal, each naming its numbers and threshold."""
  e = evidence
  reasons = []
  if e['loss_diverging']:
    reasons.append(
      f'val loss rose {e["val_loss_rise"]:+.1%} from its minimum {e["val_loss_min"]:.4f} '
      f'(step {e["val_loss_min_step"]}) to {e["final_val_loss"]:.4f} over '
      f'{e["evals_after_val_loss_min"]} evaluations while train loss fell '
      f'{e["train_loss_change_after_val_loss_min"]:+.4f} (rise threshold '
      f'{VAL_LOSS_RISE:.0%} over >= {MIN_EVALS_AFTER_MIN} evaluations)'
    )
  else:
    reasons.append(
      f'val loss did not diverge: final {e["final_val_loss"]:.4f} is {e["val_loss_rise"]:+.1%} '
      f'from its minimum {e["val_loss_min"]:.4f} (step {e["val_loss_min_step"]}, evaluations '
      f'after it: {e["evals_after_val_loss_min"]}, train loss change since then '
      f'{e["train_loss_change_after_val_loss_min"]:+.4f}); overfitting needs a rise >= '
      f'{VAL_LOSS_RISE:.0%} over >= {MIN_EVALS_AFTER_MIN} evaluations with falling train loss)'
    )
  relation = '>=' if e['gap_too_large'] else '<'
  reasons.append(
    f'final train-val accuracy gap {e["final_accuracy_gap"]:+.3f} '
    f'({e["final_train_accuracy"]:.3f} - {e["final_val_accuracy"]:.3f}) {relation} '
    f'{GAP_THRESHOLD:.2f}; the largest gap was {e["peak_accuracy_gap"]:+.3f} at step '
    f'{e["peak_accuracy_gap_step"]}'
  )
  relation = '<' if e['near_chance'] else '>='
  reasons.append(
    f'val accuracy peaked at {e["val_accuracy_peak"]:.3f} at step '
    f'{e["val_accuracy_peak_step"]} (epoch {e["val_accuracy_peak_epoch"]:.1f}) and ended at '
    f'{e["final_val_accuracy"]:.3f}; the peak is {relation} the not-learning threshold '
    f'{e["not_learning_threshold"]:.3f} (chance 1/{e["num_classes"]} = {e["chance"]:.3f} '
    f'+ {NOT_LEARNING_MARGIN:.2f} x (1 - chance))'
  )
  fall = (
    f'{e["val_accuracy_fall_share"]:.0%} of its margin over chance at the peak '
    f'({e["val_accuracy_margin_at_peak"]:.3f})'
  )
  if e['fell_from_peak']:
    reasons.append(
      f'val accuracy fell {e["val_accuracy_drop_from_peak"]:.3f} from its peak '
      f'{e["val_accuracy_peak"]:.3f} (step {e["val_accuracy_peak_step"]}) to '
      f'{e["final_val_accuracy"]:.3f} over {e["evals_after_val_accuracy_peak"]} evaluations: '
      f'{fall}, >= {PEAK_FALL_FRACTION:.0%}; train accuracy went from '
      f'{e["train_accuracy_at_val_accuracy_peak"]:.3f} to {e["final_train_accuracy"]:.3f}'
      + (
        ' (it fell too: the training itself broke down, e.g. a learning rate too high)'
        if e['train_accuracy_fell_too']
        else ' (it held: what the model learned stopped carrying over to the val split)'
      )
    )
  elif not e['near_chance']:
    reasons.append(
      f'val accuracy held its peak: the final {e["final_val_accuracy"]:.3f} is '
      f'{e["val_accuracy_drop_from_peak"]:.3f} below it, {fall}; losing the run needs '
      f'>= {PEAK_FALL_FRACTION:.0%}'
    )
  if e['few_evaluations']:
    reasons.append(
      f'only {e["evaluations"]} evaluations (< {MIN_EVALUATIONS}): the trends '
      'above are weak evidence; train longer or evaluate more often'
    )
  return reasons


def verdict_summary(evidence: dict[str, Any]) -> str:
  """One line: the verdict and the numbers that decided it."""
  e = evidence
  return (
    f'{e["verdict"]}: val accuracy peak {e["val_accuracy_peak"]:.3f} at step '
    f'{e["val_accuracy_peak_step"]} (chance {e["chance"]:.3f})'
    + (
      f' then down to {e["final_val_accuracy"]:.3f} ({e["val_accuracy_fall_share"]:.0%} of its '
      'margin over chance lost)'
      if e['fell_from_peak']
      else ''
    )
    + ', final train-val accuracy '
    f'gap {e["final_accuracy_gap"]:+.3f}, val loss {e["val_loss_rise"]:+.1%} from its '
    f'minimum at step {e["val_loss_min_step"]}'
  )


def top_confusions(
  confusion, class_names: list[str], k: int = TOP_CONFUSIONS
) -> list[dict[str, Any]]:
  """The k largest off-diagonal cells (true -> predicted), with the share of the true class."""
  confusion = np.asarray(confusion)  # [C, C] rows true, columns predicted
  rows = confusion.sum(axis=1)
  off = confusion.copy()
  np.fill_diagonal(off, 0)
  order = np.argsort(-off, axis=None, kind='stable')
  pairs = []
  for flat in order[:k]:
    true, predicted = np.unravel_index(flat, off.shape)
    if off[true, predicted] == 0:
      break
    pairs.append(
      {
        'true': class_names[true],
        'predicted': class_names[predicted],
        'count': int(off[true, predicted]),
        'share_of_true': float(off[true, predicted] / max(rows[true], 1)),
        'reverse_count': int(off[predicted, true]),
      }
    )
  return pairs


def reason_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
  """How many report rows (skipped clips, rejected input rows) gave each reason, most first."""
  return dict(collections.Counter(row.get('reason', 'unknown') for row in rows).most_common())


def dataset_facts(report: dict[str, Any]) -> dict[str, Any]:
  """Clips per class and split, speakers and their overlap, masks, cuts, skips and rejected rows."""
  splits = report.get('splits', {})
  classes = list(
    report.get('classes') or sorted({c for s in splits.values() for c in s.get('per_class', {})})
  )
  speakers = {name: set(s.get('speakers', [])) for name, s in splits.items()}
  names = list(splits)
  overlaps = {
    f'{a}/{b}': sorted(speakers[a] & speakers[b])
    for i, a in enumerate(names)
    for b in names[i + 1 :]
  }
  return {
    'classes': classes,
    'splits': {
      name: {
        'written': s.get('written', 0),
        'per_class': {c: s.get('per_class', {}).get(c, 0) for c in classes},
        'speakers': len(speakers[name]),
        'speech_fraction': s.get('speech_fraction'),
        'face_detection_rate': s.get('face_detection_rate'),
        'cut_to_max_frames': s.get('cut_to_max_frames', 0),
        'skipped': len(s.get('skipped', [])),
        'skip_reasons': reason_counts(s.get('skipped', [])),
      }
      for name, s in splits.items()
    },
    'speaker_overlaps': overlaps,
    'speaker_disjoint': all(not v for v in overlaps.values()),
    # Input rows refused before extraction (a bad manifest row, a split that is none of
    # train/val/test): in no split's counts, so the table lists them apart.
    'rejected': len(report.get('rejected', [])),
    'reject_reasons': reason_counts(report.get('rejected', [])),
  }


def edge_set(senders, receivers) -> set[tuple[int, int]]:
  """Directed edges as a set of (sender, receiver)."""
  return set(zip((int(s) for s in senders), (int(r) for r in receivers)))


def consistency_checks(
  model_config, workdir_meta, data_meta, model_edges, report: dict | None
) -> list[dict[str, Any]]:
  """Whether the model used the data set's edge list and speech mask; one row per check."""
  meta_edges = edge_set(workdir_meta.senders, workdir_meta.receivers)
  used = edge_set(*model_edges)
  edges_mode = model_config.get('edges', EXPECTED_EDGES)
  mask_mode = model_config.get('mask_mode', EXPECTED_MASK)
  checks = [
    {
      'check': 'config model.edges',
      'ok': edges_mode == EXPECTED_EDGES,
      'detail': f'{edges_mode!r}'
      + (
        ''
        if edges_mode == EXPECTED_EDGES
        else f' (an ablation; the data set edge list is {EXPECTED_EDGES!r})'
      ),
    },
    {
      'check': 'model graph == workdir dataset_meta senders/receivers',
      'ok': used == meta_edges,
      'detail': f'model {len(used)} directed edges, metadata {len(meta_edges)}, '
      f'shared {len(used & meta_edges)}',
    },
  ]
  if data_meta is None:
    checks.append(
      {
        'check': 'workdir dataset_meta == data set metadata',
        'ok': None,
        'detail': 'data set not found; cannot compare',
      }
    )
  else:
    data_edges = edge_set(data_meta.senders, data_meta.receivers)
    same = (
      data_edges == meta_edges
      and list(data_meta.class_names) == list(workdir_meta.class_names)
      and data_meta.max_frames == workdir_meta.max_frames
    )
    checks.append(
      {
        'check': 'workdir dataset_meta == data set metadata',
        'ok': same,
        'detail': f'edges {len(meta_edges)} vs {len(data_edges)} (shared '
        f'{len(meta_edges & data_edges)}), classes {workdir_meta.num_classes} vs '
        f'{data_meta.num_classes}, max_frames {workdir_meta.max_frames} vs '
        f'{data_meta.max_frames}',
      }
    )
  detail = f'{mask_mode!r}'
  if mask_mode == 'none':
    detail += ' (pools over padding too, the seed behaviour)'
  elif mask_mode == 'frames':
    detail += ' (pools over all real frames, speech mask ignored)'
  ok = mask_mode == EXPECTED_MASK
  fractions = [s.get('speech_fraction') for s in (report or {}).get('splits', {}).values()]
  fractions = [f for f in fractions if f is not None]
  if ok and fractions and (min(fractions) >= 0.999 or max(fractions) <= 0.001):
    ok = False
    detail += f' but the speech fraction is {fractions[0]:.3f}: the mask selects nothing useful'
  elif ok and fractions:
    detail += f' (speech fraction {min(fractions):.3f}-{max(fractions):.3f} across splits)'
  checks.append(
    {'check': 'config model.mask_mode (pooling over speech frames)', 'ok': ok, 'detail': detail}
  )
  return checks


# ---------------------------------------------------------------- report text


def _fmt(value, spec: str = '.3f') -> str:
  return 'n/a' if value is None else format(value, spec)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return lines


def _reasons(counts: dict[str, int]) -> str:
  """Reasons with their counts in one table cell."""
  return '; '.join(f'{reason} ({n})' for reason, n in counts.items()) or '-'


def dataset_tables(facts: dict[str, Any]) -> list[str]:
  """The data-set section's Markdown: clips per class and split, then per split (and rejected rows)."""
  split_names = list(facts['splits'])
  rows = [[c] + [facts['splits'][s]['per_class'][c] for s in split_names] for c in facts['classes']]
  rows.append(['**clips written**'] + [facts['splits'][s]['written'] for s in split_names])
  lines = _table(['class'] + split_names, rows) + ['']
  split_rows = [
    [
      s,
      f['speakers'],
      _fmt(f['speech_fraction']),
      _fmt(f['face_detection_rate']),
      f['cut_to_max_frames'],
      f['skipped'],
      _reasons(f['skip_reasons']),
    ]
    for s, f in facts['splits'].items()
  ]
  if facts['rejected']:
    rejected = ['rejected input rows', '-', '-', '-', '-', facts['rejected']]
    split_rows.append(rejected + [_reasons(facts['reject_reasons'])])
  header = ['split', 'speakers', 'speech fraction', 'face-detection rate']
  header += ['clips cut to max_frames', 'clips skipped', 'skip reasons']
  lines += _table(header, split_rows)
  overlaps = {k: v for k, v in facts['speaker_overlaps'].items() if v}
  lines += [
    '',
    'Splits are speaker-disjoint.'
    if facts['speaker_disjoint']
    else 'Splits are NOT speaker-disjoint: '
    + '; '.join(
      f'{pair} share {len(v)} ({", ".join(v[:5])}{"..." if len(v) > 5 else ""})'
      for pair, v in overlaps.items()
    ),
  ]
  return lines


def render_report(
  workdir: str,
  config,
  evidence,
  param_rows,
  checkpoint: dict,
  facts,
  facts_source: str,
  checks,
  evaluation: dict | None,
  confusions,
) -> str:
  """The Markdown report."""
  e = evidence
  lines = [
    f'# Diagnosis of {workdir_lib.absolute(workdir)}',
    '',
    f'**Verdict: {e["verdict"]}** after {e["evaluations"]} evaluations '
    f'(last at step {e["final_step"]}, epoch {e["final_epoch"]:.1f}).',
    '',
    '![learning curves](learning_curves.png)',
    '',
    '## Evidence',
    '',
  ]
  lines += [f'- {r}' for r in verdict_reasons(e)]
  lines += [
    '',
    'Thresholds (lipjax/diagnose.py): overfitting if the final train-val accuracy gap '
    f'is >= {GAP_THRESHOLD}, or val loss ends >= {VAL_LOSS_RISE:.0%} above its minimum '
    f'with >= {MIN_EVALS_AFTER_MIN} evaluations after it while train loss falls; '
    'underfitting/not learning if the best val accuracy is below chance + '
    f'{NOT_LEARNING_MARGIN} x (1 - chance) and the gap is small; {VERDICT_FELL_FROM_PEAK} '
    f'if the final val accuracy is below its peak by >= {PEAK_FALL_FRACTION:.0%} of the '
    "peak's margin over chance; otherwise healthy. "
    'Train figures are running means over the steps since the previous log, with '
    "the config's dropout, augmentation and label smoothing, so they can understate the fit.",
    '',
  ]
  lines += _table(
    ['', 'step', 'epoch', 'train loss', 'val loss', 'train acc', 'val acc'],
    [
      [
        'val loss minimum',
        e['val_loss_min_step'],
        f'{e["val_loss_min_epoch"]:.1f}',
        f'{e["train_loss_at_val_loss_min"]:.4f}',
        f'{e["val_loss_min"]:.4f}',
        '',
        '',
      ],
      [
        'val accuracy peak',
        e['val_accuracy_peak_step'],
        f'{e["val_accuracy_peak_epoch"]:.1f}',
        '',
        '',
        '',
        f'{e["val_accuracy_peak"]:.4f}',
      ],
      [
        'final',
        e['final_step'],
        f'{e["final_epoch"]:.1f}',
        f'{e["final_train_loss"]:.4f}',
        f'{e["final_val_loss"]:.4f}',
        f'{e["final_train_accuracy"]:.4f}',
        f'{e["final_val_accuracy"]:.4f}',
      ],
    ],
  )

  total = sum(c for p, c in param_rows if '/' not in p)
  lines += [
    '',
    '## Parameters by module',
    '',
    f'{checkpoint["which"]} checkpoint, step {checkpoint["step"]}; model '
    f'{config.model.get("temporal", "?")}.',
    '',
    '![parameters](parameters.png)',
    '',
  ]
  lines += _table(
    ['module', 'parameters', 'share'],
    [
      [
        ('&nbsp;&nbsp;&nbsp;&nbsp;' * path.count('/')) + path.split('/')[-1],
        f'{count:,}',
        f'{count / max(total, 1):.1%}',
      ]
      for path, count in param_rows
    ],
  )
  lines += [f'| **total** | **{total:,}** | 100% |']

  lines += ['', '## Data set', '', facts_source, '']
  if facts:
    lines += dataset_tables(facts)

  lines += ['', '## Consistency with the data set', '']
  lines += _table(
    ['check', 'result', 'detail'],
    [
      [c['check'], {True: 'ok', False: '**MISMATCH**', None: 'not checked'}[c['ok']], c['detail']]
      for c in checks
    ],
  )

  lines += ['', '## Confusion', '']
  if evaluation is None:
    lines += ['No confusion matrix: the data set is not available to evaluate on.']
  else:
    lines += [
      f'{evaluation["split"]} split, {evaluation["checkpoint"]} checkpoint (step '
      f'{evaluation["step"]}): accuracy {evaluation["accuracy"]:.4f}, macro-F1 '
      f'{evaluation["macro_f1"]:.4f}, top-5 {evaluation["top5"]:.4f} on '
      f'{evaluation["examples"]} clips.',
      '',
      f'![confusion](confusion_{evaluation["split"]}.png)',
      '',
    ]
    if confusions:
      lines += ['Most confused (true -> predicted):', '']
      lines += _table(
        ['true', 'predicted', 'clips', 'share of true', 'reverse'],
        [
          [p['true'], p['predicted'], p['count'], f'{p["share_of_true"]:.1%}', p['reverse_count']]
          for p in confusions
        ],
      )
    else:
      lines += ['No confusions: every clip was classified correctly.']
  return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- I/O shell


def read_metrics(workdir: str) -> dict[str, np.ndarray]:
  """The workdir's evaluation curves from metrics.jsonl."""
  return metric_curves(
    metrics_log.read(workdir), str(workdir_lib.path(workdir, workdir_lib.METRICS))
  )


def read_extraction_report(data_dir: str) -> dict | None:
  """The data set's extraction_report.json, or None if there is none."""
  path = workdir_lib.path(data_dir, 'extraction_report.json')
  if not path.exists():
    return None
  return json.loads(path.read_text())


def load_evaluation(workdir: str, split: str, step: int, data_dir: str | None) -> dict | None:
  """eval_{split}.json of this checkpoint step, evaluating first when it is missing or stale."""
  path = workdir_lib.path(workdir, f'eval_{split}.json')
  if path.exists():
    evaluation = json.loads(path.read_text())
    if (
      evaluation.get('step') == step
      and workdir_lib.path(workdir, f'confusion_{split}.png').exists()
    ):
      return evaluation
  if not data_dir:
    return None
  from lipjax import evaluate

  return evaluate.evaluate_workdir(workdir, split, data_dir)


def diagnose_workdir(
  workdir: str, split: str = 'val', data_dir: str | None = None
) -> dict[str, Any]:
  """Writes report.md and PNGs into the workdir; returns the evidence and the report path."""
  from lipjax import evaluate
  from lipjax import graphs

  config, meta = workdir_lib.load(workdir)
  workdir_lib.require_words(workdir, meta, 'lipjax.diagnose')
  curves = read_metrics(workdir)
  evidence = overfitting_evidence(curves, meta.num_classes)

  _, _, _, params, step, which = evaluate.restore_model(workdir)
  param_rows = models.parameter_counts(params)

  data_dir = data_dir or config.data_dir
  data_available = bool(data_dir) and workdir_lib.path(data_dir).exists()
  data_meta = schema.DatasetMeta.load(data_dir) if data_available else None
  report = read_extraction_report(data_dir) if data_available else None
  if not data_available:
    facts_source = (
      f'Data set {data_dir or "(none in config.json)"} not found: no extraction '
      'report, no metadata comparison, no fresh evaluation. Split sizes from '
      f"the workdir's dataset_meta.json: {meta.split_sizes}."
    )
  elif report is None:
    facts_source = (
      f'{data_dir} has no extraction_report.json (it was not written by '
      '`python -m extraction`), so per-class, speaker, speech and face facts are '
      f'unknown. Split sizes from its metadata: {data_meta.split_sizes}.'
    )
  else:
    facts_source = f'From {os.path.join(data_dir, "extraction_report.json")}.'
  facts = dataset_facts(report) if report else None
  model_edges = graphs.edges_for(
    meta, config.model.get('edges', EXPECTED_EDGES), config.model.get('knn_k', 4)
  )
  checks = consistency_checks(config.model, meta, data_meta, model_edges, report)

  evaluation = load_evaluation(workdir, split, step, data_dir if data_available else None)
  confusions = (
    top_confusions(evaluation['confusion_matrix'], evaluation['class_names']) if evaluation else []
  )

  plots.learning_curves(curves, workdir_lib.path(workdir, 'learning_curves.png'), evidence)
  plots.parameter_bars(
    [(p, c) for p, c in param_rows if '/' not in p], workdir_lib.path(workdir, 'parameters.png')
  )
  text = render_report(
    workdir,
    config,
    evidence,
    param_rows,
    {'step': step, 'which': which},
    facts,
    facts_source,
    checks,
    evaluation,
    confusions,
  )
  report_path = workdir_lib.path(workdir, 'report.md')
  report_path.write_text(text)
  return {
    'evidence': evidence,
    'checks': checks,
    'report_path': str(report_path),
    'evaluation': evaluation,
  }


def main(argv):
  """Prints the verdict line."""
  usage = 'usage: python -m lipjax.diagnose --workdir DIR [--split val] [--data_dir DIR]'
  positional = argv[1:]
  if len(positional) > 1 or (positional and FLAGS.workdir):
    raise app.UsageError(usage)
  workdir = FLAGS.workdir or (positional[0] if positional else None)
  if not workdir:
    raise app.UsageError(usage)
  cli.quiet_third_party_logs()
  result = diagnose_workdir(workdir, FLAGS.split, FLAGS.data_dir)
  mismatches = [c['check'] for c in result['checks'] if c['ok'] is False]
  print(
    verdict_summary(result['evidence'])
    + (f'; consistency problems: {", ".join(mismatches)}' if mismatches else '')
    + f'; wrote {result["report_path"]}'
  )


if __name__ == '__main__':
  cli.run(main, 'lipjax.diagnose', define_flags)
