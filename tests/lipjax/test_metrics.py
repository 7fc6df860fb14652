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
