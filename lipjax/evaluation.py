"""Evaluation of a model on a whole split: the per-device eval step and the loop over batches.

Used by training (validation), `lipjax.evaluate` (a workdir's best checkpoint)
and the experiments; the metrics themselves are pure functions in metrics.py.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lipjax import metrics as metrics_lib
from lipjax import parallel


def evaluate_step(params, batch, apply_fn):
  """Per-example loss, prediction and top-5 classes of a device's slice of an eval batch."""
  logits = apply_fn({'params': params}, batch, train=False)  # [B, C]
  _, top5 = jax.lax.top_k(logits, min(5, logits.shape[-1]))  # [B, 5]
  one_hot = jax.nn.one_hot(batch['label'], logits.shape[-1])
  return {
    'loss': optax.softmax_cross_entropy(logits, one_hot),
    'prediction': jnp.argmax(logits, -1),
    'top5': top5,
    'label': batch['label'],
    'example_mask': batch['example_mask'],
  }


def evaluate_model(p_evaluate_step, params, batches, num_classes: int) -> dict[str, Any]:
  """Runs a whole split once; returns loss, accuracy, macro-F1, top-5 and the confusion matrix.

  Also each example's label and prediction ('labels', 'predictions'), in the
  split's index order, padding dropped.

  p_evaluate_step: evaluate_step under parallel.data_parallel with apply_fn bound;
  params: replicated over the local devices; batches: input_pipeline.eval_iterator's.
  With several processes each runs its share of every batch (its host index),
  and the per-example outputs of all of them are gathered before the metrics
  are taken, so every process returns what one process would.
  """
  outputs = [parallel.to_host(p_evaluate_step(params, batch)) for batch in batches]
  out = {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}
  out = parallel.gather_batches(out, len(outputs))
  mask = out['example_mask']
  confusion = metrics_lib.confusion_matrix(out['label'], out['prediction'], num_classes, mask)
  top5_hits = np.any(out['top5'] == out['label'][:, None], axis=-1)
  count = float(mask.sum())
  return {
    'loss': float((out['loss'] * mask).sum() / max(count, 1.0)),
    'accuracy': metrics_lib.masked_accuracy(out['label'], out['prediction'], mask),
    'macro_f1': metrics_lib.macro_f1(confusion),
    'top5': float((top5_hits * mask).sum() / max(count, 1.0)),
    'count': int(count),
    'confusion': confusion,
    'labels': out['label'][mask > 0],
    'predictions': out['prediction'][mask > 0],
  }


def parallel_evaluate_step(apply_fn):
  """evaluate_step compiled over the local devices for a model's apply function."""
  return parallel.data_parallel(lambda params, batch: evaluate_step(params, batch, apply_fn))
