"""Evaluation of a model on a whole split: the per-device eval step and the loop over batches.

Used by training (validation), `lipjax.evaluate` (a workdir's best checkpoint)
and the experiments; the metrics themselves are pure functions in metrics.py.
Words: `evaluate_model` (loss, accuracy, macro-F1, top-5). Sentences:
`evaluate_sentences` (CTC loss, and WER and CER of greedy decoding on the host).
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lipjax import metrics as metrics_lib
from lipjax import parallel
from lipjax import sentences


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


def sentence_evaluate_step(params, batch, apply_fn):
  """Per-utterance CTC loss and per-frame log-probabilities of a device's slice of an eval batch."""
  logits = apply_fn({'params': params}, batch, train=False)  # [B, T, K]
  return {
    'loss': sentences.ctc_loss(logits, batch['frame_mask'], batch['tokens'], batch['token_length']),
    'log_probs': jax.nn.log_softmax(logits),  # [B, T, K]
    'length': batch['length'],
    'tokens': batch['tokens'],
    'token_length': batch['token_length'],
    'example_mask': batch['example_mask'],
  }


def evaluate_sentences(p_evaluate_step, params, batches) -> dict[str, Any]:
  """Runs a whole split once; returns CTC loss and the WER and CER of greedy decoding.

  Also, in the split's index order, padding dropped: each utterance's reference
  and greedy text ('references', 'hypotheses'), log-probabilities [E, T, K] and
  frame count ('log_probs', 'lengths'), for other decoders. Arguments as
  evaluate_model's, with p_evaluate_step a sentence_evaluate_step.
  """
  outputs = [parallel.to_host(p_evaluate_step(params, batch)) for batch in batches]
  out = {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}
  out = parallel.gather_batches(out, len(outputs))
  keep = out['example_mask'] > 0
  count = int(keep.sum())
  references = sentences.reference_texts(out['tokens'][keep], out['token_length'][keep])
  hypotheses = sentences.read(out['log_probs'][keep], out['length'][keep], 'greedy')
  return {
    # where, not a product: a padding utterance's loss is not read at all.
    'loss': float(np.where(keep, out['loss'], 0.0).sum() / max(count, 1)),
    'wer': metrics_lib.word_error_rate(references, hypotheses),
    'cer': metrics_lib.character_error_rate(references, hypotheses),
    'count': count,
    'references': references,
    'hypotheses': hypotheses,
    'log_probs': out['log_probs'][keep],
    'lengths': out['length'][keep],
  }


def parallel_evaluate_step(apply_fn, sentence_reader: bool = False):
  """evaluate_step (or sentence_evaluate_step) compiled over the local devices for a model."""
  step = sentence_evaluate_step if sentence_reader else evaluate_step
  return parallel.data_parallel(lambda params, batch: step(params, batch, apply_fn))
