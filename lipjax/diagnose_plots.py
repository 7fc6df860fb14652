"""PNG figures of a diagnosis: loss and accuracy curves with the evidence marked (matplotlib Agg)."""

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position


def _epoch_axis(ax, steps_per_epoch: float | None) -> None:
  """Adds an epoch scale on top of a step axis."""
  if steps_per_epoch:
    top = ax.secondary_xaxis('top', functions=(lambda s: s / steps_per_epoch,
                                               lambda e: e * steps_per_epoch))
    top.set_xlabel('epoch')


def learning_curves(curves: dict, evidence: dict, png_path: str) -> None:
  """Train/val loss and accuracy over steps, marking the val-loss minimum, val peak and chance."""
  steps = curves['step']  # [E] one entry per evaluation
  fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
  loss_ax.plot(steps, curves['train_loss'], 'o-', ms=3,
               label='train loss (augmented batches, label smoothing)')
  loss_ax.plot(steps, curves['val_loss'], 's-', ms=3, label='val loss')
  loss_ax.axvline(evidence['val_loss_min_step'], color='gray', ls=':', lw=1)
  loss_ax.plot([evidence['val_loss_min_step']], [evidence['val_loss_min']], 'v', color='C1',
               ms=9, label=f'val loss minimum {evidence["val_loss_min"]:.3f} '
                           f'(step {evidence["val_loss_min_step"]})')
  loss_ax.set(title='Loss', xlabel='step', ylabel='cross-entropy')
  loss_ax.set_ylim(bottom=0)
  loss_ax.grid(alpha=0.3)
  loss_ax.legend(fontsize=8)
  _epoch_axis(loss_ax, evidence.get('steps_per_epoch'))

  acc_ax.plot(steps, curves['train_accuracy'], 'o-', ms=3,
              label='train accuracy (augmented batches, dropout on)')
  acc_ax.plot(steps, curves['val_accuracy'], 's-', ms=3, label='val accuracy')
  acc_ax.axhline(evidence['chance'], color='k', ls='--', lw=1,
                 label=f'chance 1/{evidence["num_classes"]} = {evidence["chance"]:.3f}')
  acc_ax.plot([evidence['val_accuracy_peak_step']], [evidence['val_accuracy_peak']], '*',
              color='C1', ms=13, label=f'val peak {evidence["val_accuracy_peak"]:.3f} '
                                        f'(step {evidence["val_accuracy_peak_step"]})')
  acc_ax.set(title='Accuracy', xlabel='step', ylabel='fraction correct', ylim=(0, 1.02))
  acc_ax.grid(alpha=0.3)
  acc_ax.legend(fontsize=8, loc='lower right')
  _epoch_axis(acc_ax, evidence.get('steps_per_epoch'))
  fig.suptitle(f'Verdict: {evidence["verdict"]} - final train-val accuracy gap '
               f'{evidence["final_accuracy_gap"]:+.3f}', fontsize=12)
  fig.tight_layout()
  fig.savefig(png_path, dpi=100)
  plt.close(fig)


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
  fig.savefig(png_path, dpi=100)
  plt.close(fig)
