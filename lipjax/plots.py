"""PNG figures for a workdir: training curves and confusion matrices (matplotlib Agg)."""

import json
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position


def training_curves(metrics_path: str, png_path: str) -> None:
  """Plots train/val loss and val accuracy/F1 over steps from metrics.jsonl."""
  if not os.path.exists(metrics_path):
    return
  with open(metrics_path) as f:
    records = [json.loads(line) for line in f if line.strip()]
  if not records:
    return
  steps = [r['step'] for r in records]
  fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
  loss_ax.plot(steps, [r['train_loss'] for r in records], label='train')
  loss_ax.plot(steps, [r['val_loss'] for r in records], label='val')
  loss_ax.set(title='Loss', xlabel='step', ylabel='cross-entropy')
  loss_ax.legend()
  acc_ax.plot(steps, [r['train_accuracy'] for r in records], label='train accuracy')
  acc_ax.plot(steps, [r['val_accuracy'] for r in records], label='val accuracy')
  acc_ax.plot(steps, [r['val_macro_f1'] for r in records], label='val macro-F1')
  acc_ax.set(title='Accuracy', xlabel='step', ylabel='fraction', ylim=(0, 1))
  acc_ax.legend()
  fig.tight_layout()
  fig.savefig(png_path, dpi=100)
  plt.close(fig)


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
  fig.savefig(png_path, dpi=100)
  plt.close(fig)
