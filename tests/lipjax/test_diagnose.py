"""Diagnosis: verdicts from recorded metrics, the pure helpers, and a real trained workdir end to end."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from lipjax import diagnose
from lipjax import models

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = np.arange(200, 3001, 200)  # 15 evaluations, 10 steps per epoch


def write_metrics(workdir, train_loss, val_loss, train_accuracy, val_accuracy):
  """Writes metrics.jsonl lines the way train.py does (one per evaluation)."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    for i, step in enumerate(STEPS):
      f.write(
        json.dumps(
          {
            'step': int(step),
            'epoch': step / 10,
            'train_loss': float(train_loss[i]),
            'train_accuracy': float(train_accuracy[i]),
            'val_loss': float(val_loss[i]),
            'val_accuracy': float(val_accuracy[i]),
            'val_macro_f1': float(val_accuracy[i]) * 0.95,
            'val_top5': min(1.0, float(val_accuracy[i]) + 0.2),
            'val_examples': 200,
            'learning_rate': 1e-3,
            'steps_per_sec': 5.0,
            'devices': 1,
            'examples_per_sec': 160.0,
          }
        )
        + '\n'
      )
  return str(workdir)


def decay(start, end, rate=4.0):
  """A smooth exponential approach from start to end over the evaluations.  # [E]"""
  x = np.linspace(0, 1, len(STEPS))
  return end + (start - end) * np.exp(-rate * x)


def jitter(seed, scale):
  return np.random.default_rng(seed).normal(0, scale, len(STEPS))


def evidence_of(workdir, num_classes=10):
  return diagnose.overfitting_evidence(diagnose.read_metrics(workdir), num_classes)


def test_healthy_run(tmp_path):
  # 10 words: both losses fall together, val accuracy tracks train accuracy to ~0.8.
  workdir = write_metrics(
    tmp_path / 'healthy',
    decay(2.3, 0.95) + jitter(0, 0.01),
    decay(2.25, 0.72) + jitter(1, 0.01),
    decay(0.1, 0.78, 3.0) + jitter(2, 0.01),
    decay(0.1, 0.81, 3.0) + jitter(3, 0.01),
  )
  e = evidence_of(workdir)
  assert e['verdict'] == diagnose.VERDICT_HEALTHY
  assert not e['loss_diverging'] and not e['gap_too_large'] and not e['near_chance']
  assert e['evaluations'] == 15 and e['final_step'] == 3000 and e['final_epoch'] == 300.0
  assert abs(e['final_accuracy_gap']) < diagnose.GAP_THRESHOLD


def test_overfitting_run(tmp_path):
  # Train loss keeps falling to ~0; val loss bottoms out at step 800 then climbs; val accuracy
  # peaks at step 1000 and sags while train accuracy reaches 1.
  val_loss = np.array(
    [2.1, 1.8, 1.6, 1.42, 1.45, 1.5, 1.58, 1.67, 1.78, 1.9, 2.0, 2.12, 2.25, 2.37, 2.5]
  )
  val_accuracy = np.array(
    [0.2, 0.31, 0.4, 0.48, 0.52, 0.51, 0.5, 0.49, 0.5, 0.48, 0.47, 0.47, 0.46, 0.46, 0.45]
  )
  workdir = write_metrics(
    tmp_path / 'overfit', decay(2.2, 0.03, 5.0), val_loss, decay(0.15, 1.0, 5.0), val_accuracy
  )
  e = evidence_of(workdir)
  assert e['verdict'] == diagnose.VERDICT_OVERFITTING
  assert e['loss_diverging'] and e['gap_too_large']
  assert e['val_loss_min_step'] == 800 and e['val_loss_min'] == pytest.approx(1.42)
  assert e['evals_after_val_loss_min'] == 11
  assert e['val_loss_rise'] == pytest.approx(2.5 / 1.42 - 1)
  assert e['train_loss_change_after_val_loss_min'] < 0
  assert e['val_accuracy_peak'] == pytest.approx(0.52) and e['val_accuracy_peak_step'] == 1000
  assert e['val_accuracy_peak_epoch'] == pytest.approx(100.0)
  assert e['val_accuracy_drop_from_peak'] == pytest.approx(0.07)
  assert e['final_accuracy_gap'] == pytest.approx(decay(0.15, 1.0, 5.0)[-1] - 0.45)
  text = ' '.join(diagnose.verdict_reasons(e))
  assert 'step 800' in text and 'step 1000' in text and '+76.1%' in text


def test_val_loss_divergence_alone_is_overfitting(tmp_path):
  # Accuracies stay close, but val loss climbs 25% from its minimum while train loss falls.
  val_loss = np.concatenate([decay(2.2, 1.0)[:8], np.linspace(1.05, 1.3, 7)])
  workdir = write_metrics(
    tmp_path / 'diverge', decay(2.3, 0.6), val_loss, decay(0.1, 0.7, 3.0), decay(0.1, 0.66, 3.0)
  )
  e = evidence_of(workdir)
  assert not e['gap_too_large'] and e['loss_diverging']
  assert e['verdict'] == diagnose.VERDICT_OVERFITTING


def test_one_late_val_loss_spike_is_not_overfitting(tmp_path):
  # A single noisy last evaluation is not a trend (needs MIN_EVALS_AFTER_MIN after the minimum).
  val_loss = decay(2.25, 0.72)
  val_loss[-1] = val_loss[-2] * 1.3
  workdir = write_metrics(
    tmp_path / 'spike', decay(2.3, 0.95), val_loss, decay(0.1, 0.78, 3.0), decay(0.1, 0.8, 3.0)
  )
  e = evidence_of(workdir)
  assert e['evals_after_val_loss_min'] == 1 and not e['loss_diverging']
  assert e['verdict'] == diagnose.VERDICT_HEALTHY


def test_not_learning_run(tmp_path):
  # 10 words: losses hover at ln(10), accuracies at chance.
  workdir = write_metrics(
    tmp_path / 'flat',
    2.30 + jitter(4, 0.005),
    2.303 + jitter(5, 0.004),
    0.1 + jitter(6, 0.015),
    0.1 + jitter(7, 0.012),
  )
  e = evidence_of(workdir)
  assert e['verdict'] == diagnose.VERDICT_NOT_LEARNING
  assert e['near_chance'] and e['chance'] == pytest.approx(0.1)
  assert e['not_learning_threshold'] == pytest.approx(0.19)


def test_memorising_train_set_at_chance_val_is_overfitting(tmp_path):
  workdir = write_metrics(
    tmp_path / 'memorise',
    decay(1.1, 0.02, 5.0),
    1.1 + np.linspace(0, 1.5, 15),
    decay(0.33, 1.0, 5.0),
    0.33 + jitter(8, 0.02),
  )
  e = evidence_of(workdir, num_classes=3)
  assert e['near_chance'] and e['gap_too_large']
  assert e['verdict'] == diagnose.VERDICT_OVERFITTING


def rise_and_fall(peak, final, rise=5):
  """Accuracy climbing to peak at evaluation rise - 1, then sinking evenly to final.  # [E]"""
  return np.concatenate(
    [np.linspace(0.15, peak, rise), np.linspace(peak, final, len(STEPS) - rise + 1)[1:]]
  )


def write_rise_and_fall(workdir, peak, final):
  """10 words: train accuracy 0.03 above val's all along, losses mirroring the accuracies.

  Train and val sink together and both losses climb after the peak (a run that blew up),
  so neither the accuracy gap nor a val loss rising under a falling train loss can fire.
  """
  val_accuracy = rise_and_fall(peak, final)
  loss = 2.4 - 2.0 * val_accuracy
  return write_metrics(workdir, loss - 0.05, loss, val_accuracy + 0.03, val_accuracy)


def test_val_accuracy_collapsing_after_its_peak_is_not_healthy(tmp_path):
  # The run: val accuracy peaked at 0.85 and ended at 0.31.
  e = evidence_of(write_rise_and_fall(tmp_path / 'collapse', 0.85, 0.31))
  assert not e['loss_diverging'] and not e['gap_too_large'] and not e['near_chance']
  assert e['verdict'] == diagnose.VERDICT_FELL_FROM_PEAK
  assert e['fell_from_peak'] and e['train_accuracy_fell_too']
  assert e['val_accuracy_peak'] == pytest.approx(0.85) and e['val_accuracy_peak_step'] == 1000
  assert e['final_val_accuracy'] == pytest.approx(0.31)
  assert e['val_accuracy_drop_from_peak'] == pytest.approx(0.54)
  assert e['val_accuracy_margin_at_peak'] == pytest.approx(0.75)  # over chance 0.1
  assert e['val_accuracy_fall_share'] == pytest.approx(0.72)
  assert e['val_accuracy_fall_threshold'] == pytest.approx(0.1875)
  assert e['evals_after_val_accuracy_peak'] == 10
  assert e['train_accuracy_at_val_accuracy_peak'] == pytest.approx(0.88)
  text = ' '.join(diagnose.verdict_reasons(e))
  assert (
    'val accuracy fell 0.540 from its peak 0.850 (step 1000) to 0.310 over 10 evaluations: '
    '72% of its margin over chance at the peak (0.750), >= 25%; train accuracy went from '
    '0.880 to 0.340 (it fell too' in text
  )
  assert diagnose.verdict_summary(e).startswith(
    'val accuracy fell from its peak: val accuracy peak 0.850 at step 1000 (chance 0.100) then '
    'down to 0.310 (72% of its margin over chance lost), final train-val accuracy gap +0.030'
  )


@pytest.mark.parametrize('final, verdict', [(0.67, 'healthy'), (0.66, 'val accuracy fell')])
def test_a_fall_counts_from_a_quarter_of_the_peaks_margin_over_chance(tmp_path, final, verdict):
  # Peak 0.85 over chance 0.1: a margin of 0.75, so the rule fires from a fall of 0.1875.
  e = evidence_of(write_rise_and_fall(tmp_path / 'dip', 0.85, final))
  assert e['verdict'].startswith(verdict)
  assert e['fell_from_peak'] == (verdict != 'healthy')
  if not e['fell_from_peak']:
    assert (
      f'val accuracy held its peak: the final {final:.3f} is {0.85 - final:.3f} below it, '
      '24% of its margin over chance at the peak (0.750); losing the run needs >= 25%'
    ) in ' '.join(diagnose.verdict_reasons(e))


def test_metrics_errors_name_the_file_and_line(tmp_path):
  workdir = tmp_path / 'bad'
  with pytest.raises(FileNotFoundError, match='metrics.jsonl does not exist'):
    diagnose.read_metrics(str(workdir))
  workdir.mkdir()
  (workdir / 'metrics.jsonl').write_text('{"step": 1, "epoch": 0.1, "train_loss": 1.0}\n')
  with pytest.raises(ValueError, match=r'metrics.jsonl:1: evaluation record lacks'):
    diagnose.read_metrics(str(workdir))
  (workdir / 'metrics.jsonl').write_text('\n')
  with pytest.raises(ValueError, match='no evaluations recorded'):
    diagnose.read_metrics(str(workdir))


def test_top_confusions_orders_off_diagonal_cells():
  confusion = np.array([[5, 3, 0], [1, 6, 0], [0, 4, 2]])
  pairs = diagnose.top_confusions(confusion, ['bat', 'pat', 'moon'])
  assert [(p['true'], p['predicted'], p['count']) for p in pairs] == [
    ('moon', 'pat', 4),
    ('bat', 'pat', 3),
    ('pat', 'bat', 1),
  ]
  assert pairs[0]['share_of_true'] == pytest.approx(4 / 6)
  assert pairs[1]['reverse_count'] == 1


def test_parameter_counts_by_module():
  params = {
    'encoder': {
      'dense': {'kernel': np.zeros((3, 4)), 'bias': np.zeros(4)},
      'norm': {'scale': np.zeros(4)},
    },
    'classifier': {'kernel': np.zeros((4, 2)), 'bias': np.zeros(2)},
  }
  assert models.parameter_counts(params) == [
    ('encoder', 20),
    ('encoder/dense', 16),
    ('encoder/norm', 4),
    ('classifier', 10),
  ]


def test_dataset_facts_find_shared_speakers_and_skips():
  report = {
    'classes': ['bat', 'pat'],
    'splits': {
      'train': {
        'written': 3,
        'per_class': {'bat': 2, 'pat': 1},
        'speakers': ['a', 'b'],
        'speech_fraction': 0.6,
        'face_detection_rate': 0.99,
        'cut_to_max_frames': 1,
        'skipped': [{'video_id': 'x', 'reason': 'face found in 2/29 frames'}],
      },
      'val': {
        'written': 1,
        'per_class': {'pat': 1},
        'speakers': ['b'],
        'speech_fraction': 0.5,
        'face_detection_rate': 1.0,
        'cut_to_max_frames': 0,
        'skipped': [],
      },
    },
  }
  facts = diagnose.dataset_facts(report)
  assert facts['splits']['val']['per_class'] == {'bat': 0, 'pat': 1}
  assert facts['speaker_overlaps'] == {'train/val': ['b']} and not facts['speaker_disjoint']
  assert facts['splits']['train']['skip_reasons'] == {'face found in 2/29 frames': 1}


def test_dataset_table_lists_the_rejected_input_rows_apart_from_the_splits():
  split = {'written': 2, 'per_class': {'bat': 1, 'pat': 1}, 'speakers': ['a'], 'skipped': []}
  reasons = [
    "manifest.csv:4: split 'holdout' is not one of ('train', 'val', 'test')",
    "manifest.csv:5: start/end must be seconds, found 'zero'/'1'",
  ]
  report = {
    'classes': ['bat', 'pat'],
    'splits': {'train': split, 'test': split},
    'rejected': [
      {'video_id': f'row{k}', 'path': f'row{k}.mp4', 'reason': reason}
      for k, reason in enumerate(reasons + reasons[:1])
    ],
  }
  facts = diagnose.dataset_facts(report)
  assert facts['rejected'] == 3
  assert facts['reject_reasons'] == {reasons[0]: 2, reasons[1]: 1}
  rows = {
    row['split']: row for row in markdown_table('\n'.join(diagnose.dataset_tables(facts)), 'split')
  }
  assert list(rows) == ['train', 'test', 'rejected input rows']
  assert rows['rejected input rows']['clips skipped'] == '3'
  assert rows['rejected input rows']['skip reasons'] == f'{reasons[0]} (2); {reasons[1]} (1)'
  assert rows['train']['skip reasons'] == '-'
  del report['rejected']  # a report from before bad rows were recorded, or with none
  text = '\n'.join(diagnose.dataset_tables(diagnose.dataset_facts(report)))
  assert 'rejected input rows' not in text


def test_consistency_flags_an_ablated_graph_and_mask(dataset):
  from lipjax import graphs

  _, meta = dataset
  model_config = {'edges': 'knn_index', 'knn_k': 4, 'mask_mode': 'none'}
  edges = graphs.edges_for(meta, 'knn_index', 4)
  checks = {
    c['check']: c for c in diagnose.consistency_checks(model_config, meta, meta, edges, None)
  }
  assert not checks['config model.edges']['ok']
  assert not checks['model graph == workdir dataset_meta senders/receivers']['ok']
  assert checks['workdir dataset_meta == data set metadata']['ok']
  assert not checks['config model.mask_mode (pooling over speech frames)']['ok']


def test_diagnose_a_trained_workdir_end_to_end(learned):
  workdir = learned['workdir']
  result = diagnose.diagnose_workdir(workdir)

  e = result['evidence']
  records = learned['records']
  assert e['evaluations'] == len(records) == 7 and e['final_step'] == records[-1]['step'] == 35
  assert e['num_classes'] == 3
  # The run peaked at its best checkpoint, then gradient ascent took val accuracy away.
  assert e['val_accuracy_peak_step'] == learned['best_step']
  assert e['val_accuracy_peak'] == pytest.approx(max(r['val_accuracy'] for r in records))
  assert e['final_val_accuracy'] == pytest.approx(records[-1]['val_accuracy'])
  assert e['val_accuracy_drop_from_peak'] == pytest.approx(
    e['val_accuracy_peak'] - records[-1]['val_accuracy']
  )
  assert not e['near_chance']  # it did learn: the peak is far above 1/3

  with open(result['report_path']) as f:
    report = f.read()
  assert f'**Verdict: {e["verdict"]}** after 7 evaluations' in report
  assert (
    f'val accuracy peaked at {e["val_accuracy_peak"]:.3f} at step {learned["best_step"]}' in report
  )
  assert f'final train-val accuracy gap {e["final_accuracy_gap"]:+.3f}' in report
  assert f'best checkpoint, step {learned["best_step"]}' in report
  assert re.search(r'\| BiLSTM_0 \| [\d,]+ \|', report) and '| **total** |' in report
  assert 'has no extraction_report.json' in report  # the test data set was not extracted
  assert '| model graph == workdir dataset_meta senders/receivers | ok |' in report
  assert '| config model.mask_mode (pooling over speech frames) | ok |' in report
  evaluation = result['evaluation']
  assert evaluation['split'] == 'val' and evaluation['examples'] == 13
  assert evaluation['step'] == learned['best_step']
  assert (
    evaluation['accuracy']
    == records[[r['step'] for r in records].index(learned['best_step'])]['val_accuracy']
  )
  assert f'accuracy {evaluation["accuracy"]:.4f}' in report
  assert os.path.exists(os.path.join(workdir, 'eval_val.json'))
  for name in ('learning_curves.png', 'parameters.png', 'confusion_val.png'):
    with open(os.path.join(workdir, name), 'rb') as f:
      png = f.read()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000, name


def markdown_table(text, first_header):
  """The rows of the Markdown table whose header starts with first_header, as dicts."""
  lines = text.splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith(f'| {first_header} |'))
  cells = lambda line: [c.strip() for c in line.strip().strip('|').split('|')]
  header = cells(lines[start])
  rows = []
  for line in lines[start + 2 :]:
    if not line.startswith('|'):
      break
    rows.append(dict(zip(header, cells(line))))
  return rows


def test_diagnose_reports_the_extracted_data_sets_classes_speakers_and_skipped_clips(carphone_run):
  # By hand from the manifest (conftest.carphone_run): clip k is speaker s{k % 3}, the
  # faceless blank.mp4 (train, s9) is skipped, the row of split 'holdout' is rejected, and
  # every 4 s clip is cut to 29 frames.
  result = diagnose.diagnose_workdir(carphone_run['workdir'])
  with open(result['report_path']) as f:
    report = f.read()
  classes = {row['class']: row for row in markdown_table(report, 'class')}
  assert {k: (v['train'], v['val'], v['test']) for k, v in classes.items()} == {
    'EARLY': ('4', '1', '1'),
    'LATE': ('4', '1', '3'),
    '**clips written**': ('8', '2', '4'),
  }
  splits = {row['split']: row for row in markdown_table(report, 'split')}
  assert {
    s: (r['speakers'], r['clips cut to max_frames'], r['clips skipped']) for s, r in splits.items()
  } == {
    'train': ('3', '8', '1'),
    'val': ('2', '2', '0'),
    'test': ('3', '4', '0'),
    'rejected input rows': ('-', '-', '1'),
  }
  assert re.fullmatch(
    r'\S*blank\.mp4: face found in 0 of 29 frames .* \(1\)', splits['train']['skip reasons']
  )
  assert splits['val']['skip reasons'] == splits['test']['skip reasons'] == '-'
  rejected = splits['rejected input rows']  # the manifest's row in no split
  assert rejected['clips skipped'] == '1'
  assert re.fullmatch(
    r"\S*manifest\.csv:\d+: split 'holdout' is not one of .* \(1\)", rejected['skip reasons']
  )
  assert 'Splits are NOT speaker-disjoint' in report and 'train/val share 2 (s0, s2)' in report
  # Two val clips: whichever verdict its curves give (the rules have tests of their own), the
  # report states it.
  assert f'**Verdict: {result["evidence"]["verdict"]}**' in report


def test_cli_reports_a_missing_workdir_in_one_line(tmp_path):
  result = subprocess.run(
    [sys.executable, '-m', 'lipjax.diagnose', str(tmp_path / 'nowhere')],
    cwd=REPO,
    env=dict(os.environ, PYTHONPATH=REPO),
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert result.returncode == 2
  assert 'Traceback' not in result.stderr
  assert f'lipjax.diagnose: error: {tmp_path / "nowhere"}: no config.json' in result.stderr
