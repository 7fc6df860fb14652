"""Metrics on hand-computed arrays."""

import numpy as np
import pytest

from lipjax import metrics


def test_masked_accuracy_ignores_padding():
  labels = np.array([0, 1, 2, 2, 0])
  predictions = np.array([0, 2, 2, 2, 1])
  mask = np.array([1, 1, 1, 0, 0])
  assert metrics.masked_accuracy(labels, predictions, mask) == 2 / 3


def test_confusion_matrix_counts_masked_examples_once():
  labels = np.array([0, 0, 1, 2, 2, 1])
  predictions = np.array([0, 1, 1, 2, 0, 0])
  mask = np.array([1, 1, 1, 1, 1, 0])
  expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]])
  np.testing.assert_array_equal(metrics.confusion_matrix(labels, predictions, 3, mask), expected)


def test_macro_f1_and_per_class_accuracy_by_hand():
  confusion = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]])
  # F1 = 2TP / (support + predicted): class 0: 2/(2+2), class 1: 2/(1+2), class 2: 2/(2+1).
  assert np.isclose(metrics.macro_f1(confusion), (0.5 + 2 / 3 + 2 / 3) / 3)
  np.testing.assert_allclose(metrics.per_class_accuracy(confusion), [0.5, 1.0, 0.5])


def test_macro_f1_skips_absent_classes_and_per_class_is_nan_without_support():
  confusion = np.array([[2, 0, 0], [0, 0, 0], [0, 0, 1]])
  assert metrics.macro_f1(confusion) == 1.0
  assert np.isnan(metrics.per_class_accuracy(confusion)[1])


def test_accuracy_by_group_by_hand_weakest_first():
  labels = np.array([0, 1, 1, 2, 0, 2, 1])
  predictions = np.array([0, 1, 0, 2, 1, 0, 1])
  groups = np.array(['b', 'b', 'a', 'c', 'a', 'c', 'c'])
  by_group = metrics.accuracy_by_group(labels, predictions, groups)
  assert by_group == {
    'a': {'examples': 2, 'accuracy': 0.0},
    'c': {'examples': 3, 'accuracy': 2 / 3},
    'b': {'examples': 2, 'accuracy': 1.0},
  }
  assert list(by_group) == ['a', 'c', 'b']


def test_accuracy_by_group_refuses_arrays_of_different_lengths():
  with pytest.raises(ValueError, match='differ'):
    metrics.accuracy_by_group([0, 1], [0, 1], ['a'])


@pytest.mark.parametrize(
  'reference, hypothesis, distance',
  [
    ('kitten', 'sitting', 3),  # k->s, e->i, +g
    ('bin', 'bin', 0),
    ('bin', 'pin', 1),
    ('bin', 'bn', 1),
    ('bin', 'bins', 1),
    ('', 'abc', 3),
    ('abc', '', 3),
    (['set', 'red', 'by'], ['set', 'by', 'a'], 2),  # -red, +a
  ],
)
def test_edit_distance_by_hand(reference, hypothesis, distance):
  assert metrics.edit_distance(reference, hypothesis) == distance
  assert metrics.edit_distance(hypothesis, reference) == distance


def test_word_error_rate_totals_edits_over_reference_words():
  references = ['bin blue at f two now', 'set red by a one soon']
  hypotheses = ['bin blue at f two now', 'set red a one soon please']
  # Second pair: 'by' deleted, 'please' inserted: 2 edits over 6 + 6 reference words.
  assert metrics.word_error_rate(references, hypotheses) == 2 / 12
  assert metrics.word_error_rate(['place  green\tat x'], [' place green at x ']) == 0.0


def test_word_error_rate_is_one_for_an_empty_hypothesis_and_can_exceed_one():
  assert metrics.word_error_rate(['bin blue at f two now'], ['']) == 1.0
  assert metrics.word_error_rate(['now'], ['now lay red']) == 2.0


def test_character_error_rate_counts_spaces_as_characters():
  # 'bin blue' is 8 characters; 'binblue' deletes the space, 'bin blu' deletes the e.
  assert metrics.character_error_rate(['bin blue'], ['binblue']) == 1 / 8
  assert metrics.character_error_rate(['bin blue', 'now'], ['bin blu', 'no']) == 2 / 11
  assert metrics.character_error_rate(['bin  blue '], ['bin blue']) == 0.0
  assert metrics.character_error_rate(['now'], ['']) == 1.0
  assert metrics.character_error_rate(['Now'], ['now']) == 1 / 3  # case counts


def test_error_rates_refuse_unpaired_or_empty_references():
  with pytest.raises(ValueError, match='2 references but 1 hypotheses'):
    metrics.word_error_rate(['bin', 'set'], ['bin'])
  with pytest.raises(ValueError, match='no words'):
    metrics.word_error_rate(['', ' '], ['bin', ''])
  with pytest.raises(ValueError, match='no characters'):
    metrics.character_error_rate([], [])
  with pytest.raises(ValueError, match='got a string'):
    metrics.character_error_rate('bin blue', 'bin blu')


def test_error_rates_by_group_per_speaker_highest_wer_first():
  references = ['bin blue', 'set red', 'lay green', 'bin red']
  hypotheses = ['bin blue', 'set rad', 'lay', 'bin red']
  report = metrics.error_rates_by_group(references, hypotheses, ['s2', 's1', 's1', 's2'])
  assert list(report) == ['s1', 's2']
  # s1: words 'set red' / 'set rad' (1 of 2) and 'lay green' / 'lay' (1 of 2): 2 of 4 words;
  # characters: 1 of 7 and 6 of 9 ('lay green' loses ' green'): 7 of 16.
  assert report['s1'] == {'examples': 2, 'wer': 0.5, 'cer': 7 / 16}
  assert report['s2'] == {'examples': 2, 'wer': 0.0, 'cer': 0.0}
  with pytest.raises(ValueError, match='differ'):
    metrics.error_rates_by_group(references, hypotheses, ['s1'])
