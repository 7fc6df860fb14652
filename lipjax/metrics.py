"""Metrics as pure functions: of labels, predictions and masks (words), of texts (sentences)."""

import numpy as np


def masked_accuracy(labels, predictions, mask) -> float:
  """Fraction of examples with mask 1 whose prediction equals the label."""
  mask = np.asarray(mask, np.float64)
  hits = (np.asarray(labels) == np.asarray(predictions)) * mask
  return float(hits.sum() / max(mask.sum(), 1.0))


def confusion_matrix(labels, predictions, num_classes: int, mask=None):
  """Counts [true class, predicted class] over examples with mask 1.  # [C, C]"""
  labels = np.asarray(labels, np.int64)
  predictions = np.asarray(predictions, np.int64)
  keep = np.ones(labels.shape, bool) if mask is None else np.asarray(mask) > 0
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (labels[keep], predictions[keep]), 1)
  return matrix


def per_class_accuracy(confusion):
  """Recall of each class; NaN for a class with no examples.  # [C]"""
  confusion = np.asarray(confusion, np.float64)
  support = confusion.sum(axis=1)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(support > 0, np.diag(confusion) / support, np.nan)


def macro_f1(confusion) -> float:
  """Unweighted mean F1 over the classes that occur as a label or a prediction."""
  confusion = np.asarray(confusion, np.float64)
  true_positive = np.diag(confusion)
  support = confusion.sum(axis=1)
  predicted = confusion.sum(axis=0)
  present = (support + predicted) > 0
  if not present.any():
    return 0.0
  f1 = 2 * true_positive[present] / (support[present] + predicted[present])
  return float(f1.mean())


def accuracy_by_group(labels, predictions, groups) -> dict[str, dict]:
  """Accuracy and example count of each group (a speaker, say), the weakest group first.

  Ties keep the groups' sorted order, so the result is deterministic.
  """
  labels, predictions, groups = np.asarray(labels), np.asarray(predictions), np.asarray(groups)
  if not labels.shape == predictions.shape == groups.shape:
    raise ValueError(
      f'labels {labels.shape}, predictions {predictions.shape} and groups {groups.shape} differ'
    )
  stats = {}
  for group in sorted(set(groups.tolist())):
    members = groups == group
    hits = labels[members] == predictions[members]
    stats[str(group)] = {'examples': int(hits.size), 'accuracy': float(hits.mean())}
  return dict(sorted(stats.items(), key=lambda item: item[1]['accuracy']))


def edit_distance(reference, hypothesis) -> int:
  """Levenshtein distance: the fewest substitutions, insertions and deletions between sequences."""
  reference, hypothesis = list(reference), list(hypothesis)
  previous = list(range(len(hypothesis) + 1))  # distances from the empty reference prefix
  for i, unit in enumerate(reference, 1):
    current = [i]
    for j, guess in enumerate(hypothesis, 1):
      current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (unit != guess)))
    previous = current
  return previous[-1]


def word_error_rate(references, hypotheses) -> float:
  """Corpus WER: word edits over all utterances divided by the number of reference words.

  Words are split on whitespace. Texts are compared as given, case included:
  normalise both sides alike first (the sentence reader writes
  `tokens.decode(tokens.encode(text))`, extraction/tokens.py). Insertions can make it exceed 1.
  """
  return _error_rate(references, hypotheses, str.split, 'words')


def character_error_rate(references, hypotheses) -> float:
  """Corpus CER: character edits divided by the number of reference characters, spaces included.

  Each text is first reduced to its words joined by single spaces (so leading,
  trailing and repeated whitespace do not count), then compared character by
  character, case included, a space being a character like any other.
  """
  return _error_rate(references, hypotheses, lambda text: ' '.join(text.split()), 'characters')


def error_rates_by_group(references, hypotheses, groups) -> dict[str, dict]:
  """WER, CER and utterance count of each group (a speaker, say), the highest WER first.

  Ties keep the groups' sorted order, so the result is deterministic.
  """
  references, hypotheses, groups = list(references), list(hypotheses), list(groups)
  if not len(references) == len(hypotheses) == len(groups):
    raise ValueError(
      f'{len(references)} references, {len(hypotheses)} hypotheses and {len(groups)} groups differ'
    )
  stats = {}
  for group in sorted(set(map(str, groups))):
    members = [i for i, g in enumerate(groups) if str(g) == group]
    refs, hyps = [references[i] for i in members], [hypotheses[i] for i in members]
    stats[group] = {
      'examples': len(members),
      'wer': word_error_rate(refs, hyps),
      'cer': character_error_rate(refs, hyps),
    }
  return dict(sorted(stats.items(), key=lambda item: -item[1]['wer']))


def _error_rate(references, hypotheses, units, what: str) -> float:
  """Total edit distance between the units of paired texts over the reference units' number."""
  if isinstance(references, str) or isinstance(hypotheses, str):
    raise ValueError('expected a sequence of texts for references and hypotheses, got a string')
  references, hypotheses = list(references), list(hypotheses)
  if len(references) != len(hypotheses):
    raise ValueError(f'{len(references)} references but {len(hypotheses)} hypotheses')
  edits = total = 0
  for reference, hypothesis in zip(references, hypotheses):
    reference_units = units(reference)
    edits += edit_distance(reference_units, units(hypothesis))
    total += len(reference_units)
  if total == 0:
    raise ValueError(f'the references hold no {what}, so the error rate is undefined')
  return edits / total
