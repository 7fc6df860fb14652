"""PNG figures for a workdir: learning curves, confusion matrices, parameter bars (matplotlib Agg).

Figures are written through etils.epath, so a workdir may be a gs:// bucket.
"""

import os

from etils import epath
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np


def _save(fig, png_path: str | os.PathLike) -> None:
  """Writes a figure as PNG to a local or remote (gs://) path and closes it."""
  with epath.Path(png_path).open('wb') as f:
    fig.savefig(f, format='png', dpi=100)
  plt.close(fig)


def _epoch_axis(ax, steps_per_epoch: float | None) -> None:
  """Adds an epoch scale on top of a step axis."""
  if steps_per_epoch:
    top = ax.secondary_xaxis(
      'top', functions=(lambda s: s / steps_per_epoch, lambda e: e * steps_per_epoch)
    )
    top.set_xlabel('epoch')


def learning_curves(curves, png_path, evidence: dict | None = None) -> None:
  """Train/val loss and accuracy (a sentence reader's: val WER and CER) over steps.

  curves: metrics_log records, or diagnose's arrays per key; evidence (diagnose's,
  words only) marks the val-loss minimum, the val accuracy peak and chance, and
  gives the verdict.
  """
  if isinstance(curves, list):
    curves = {k: [r[k] for r in curves] for k in curves[0]} if curves else {}
  if not curves:
    return
  if 'val_cer' in curves:
    _sentence_curves(curves, png_path)
    return
  steps = curves['step']  # [E] one entry per evaluation
  fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
  loss_ax.plot(
    steps, curves['train_loss'], 'o-', ms=3, label='train loss (augmented batches, label smoothing)'
  )
  loss_ax.plot(steps, curves['val_loss'], 's-', ms=3, label='val loss')
  acc_ax.plot(
    steps,
    curves['train_accuracy'],
    'o-',
    ms=3,
    label='train accuracy (augmented batches, dropout on)',
  )
  acc_ax.plot(steps, curves['val_accuracy'], 's-', ms=3, label='val accuracy')
  if evidence:
    loss_ax.axvline(evidence['val_loss_min_step'], color='gray', ls=':', lw=1)
    loss_ax.plot(
      [evidence['val_loss_min_step']],
      [evidence['val_loss_min']],
      'v',
      color='C1',
      ms=9,
      label=f'val loss minimum {evidence["val_loss_min"]:.3f} '
      f'(step {evidence["val_loss_min_step"]})',
    )
    acc_ax.axhline(
      evidence['chance'],
      color='k',
      ls='--',
      lw=1,
      label=f'chance 1/{evidence["num_classes"]} = {evidence["chance"]:.3f}',
    )
    acc_ax.plot(
      [evidence['val_accuracy_peak_step']],
      [evidence['val_accuracy_peak']],
      '*',
      color='C1',
      ms=13,
      label=f'val peak {evidence["val_accuracy_peak"]:.3f} '
      f'(step {evidence["val_accuracy_peak_step"]})',
    )
    for ax in (loss_ax, acc_ax):
      _epoch_axis(ax, evidence.get('steps_per_epoch'))
    fig.suptitle(
      f'Verdict: {evidence["verdict"]} - final train-val accuracy gap '
      f'{evidence["final_accuracy_gap"]:+.3f}',
      fontsize=12,
    )
  loss_ax.set(title='Loss', xlabel='step', ylabel='cross-entropy')
  loss_ax.set_ylim(bottom=0)
  acc_ax.set(title='Accuracy', xlabel='step', ylabel='fraction correct', ylim=(0, 1.02))
  for ax in (loss_ax, acc_ax):
    ax.grid(alpha=0.3)
  loss_ax.legend(fontsize=8)
  acc_ax.legend(fontsize=8, loc='lower right')
  fig.tight_layout()
  _save(fig, png_path)


def _sentence_curves(curves: dict, png_path) -> None:
  """A sentence reader's CTC losses and val error rates of greedy decoding over steps."""
  steps = curves['step']  # [E]
  fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
  loss_ax.plot(steps, curves['train_loss'], 'o-', ms=3, label='train CTC loss (augmented batches)')
  loss_ax.plot(steps, curves['val_loss'], 's-', ms=3, label='val CTC loss')
  error_ax.plot(steps, curves['val_wer'], 's-', ms=3, label='val WER (greedy)')
  error_ax.plot(steps, curves['val_cer'], 'o-', ms=3, label='val CER (greedy)')
  loss_ax.set(title='Loss', xlabel='step', ylabel='CTC loss per utterance')
  loss_ax.set_ylim(bottom=0)
  error_ax.set(title='Error rates', xlabel='step', ylabel='edits per reference unit')
  error_ax.set_ylim(bottom=0)
  for ax in (loss_ax, error_ax):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  _save(fig, png_path)


def confusion_matrix(confusion, class_names, title: str, png_path: str) -> None:
  """Plots a confusion matrix (rows true, columns predicted), row-normalised colours."""
  confusion = np.asarray(confusion)
  rows = confusion.sum(axis=1, keepdims=True)
  normalised = confusion / np.maximum(rows, 1)
  size = max(5.0, min(0.3 * len(class_names) + 2, 40.0))
  fig, ax = plt.subplots(figsize=(size, size))
  image = ax.imshow(normalised, cmap='Blues', vmin=0, vmax=1)
  ax.set_title(title, fontsize=10)
  ax.set(xlabel='predicted word', ylabel='true word')
  if len(class_names) <= 60:
    ax.set_xticks(range(len(class_names)), class_names, rotation=90)
    ax.set_yticks(range(len(class_names)), class_names)
  fig.colorbar(image, ax=ax, fraction=0.046, label='fraction of true word')
  fig.tight_layout()
  _save(fig, png_path)


def parameter_bars(rows: list[tuple[str, int]], png_path: str) -> None:
  """Horizontal bars of parameter counts per module."""
  names = [name for name, _ in rows][::-1]
  counts = [count for _, count in rows][::-1]
  fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.4))
  bars = ax.barh(names, counts, color='C0')
  ax.bar_label(bars, labels=[f'{c:,}' for c in counts], fontsize=8, padding=3)
  ax.set(title=f'Parameters by module (total {sum(counts):,})', xlabel='parameters')
  ax.set_xlim(0, max(counts) * 1.25 if counts else 1)
  fig.tight_layout()
  _save(fig, png_path)
