"""The word-spotting rule on hand-made score sequences."""

import numpy as np
import pytest

from extraction import schema
from lipjax import spotting

NAMES = ['ABOUT', schema.BACKGROUND_LABEL, 'BLACK']
HOP = 0.1  # seconds between scored windows


def scores(*rows):
  """Per-hop probabilities [H, 3] from rows of (ABOUT, BLACK) scores; background takes the rest."""
  return np.array([[a, 1.0 - a - b, b] for a, b in rows])


def times(n):
  return np.arange(n) * HOP


def test_a_peak_above_threshold_emits_once_at_its_window_centre_one_hop_later():
  p = scores((0.1, 0), (0.4, 0), (0.7, 0), (0.9, 0), (0.6, 0), (0.2, 0), (0.1, 0))
  (word,) = spotting.spot(times(7), p, NAMES, threshold=0.5, emitted_at=times(7) + 0.5)
  assert (word.word, word.time, word.score) == ('ABOUT', pytest.approx(0.3), 0.9)
  assert word.emitted_at == pytest.approx(0.4 + 0.5)  # the first hop past the peak


def test_a_plateau_emits_once_at_its_middle():
  p = scores((0.1, 0), (0.8, 0), (0.8, 0), (0.8, 0), (0.8, 0), (0.3, 0), (0.8, 0), (0.8, 0))
  words = spotting.spot(times(8), p, NAMES, threshold=0.5, min_gap=0.6)
  # The plateau (hops 1-4) emits at its middle; the short rise after the dip is the same word.
  assert [(w.word, round(w.time, 6)) for w in words] == [('ABOUT', 0.25)]


def test_two_close_peaks_of_one_word_emit_once():
  # Peaks at hops 2 and 5, both above the threshold with a dip between that stays above it.
  above = scores((0.2, 0), (0.6, 0), (0.9, 0), (0.7, 0), (0.8, 0), (0.95, 0), (0.3, 0))
  assert [w.time for w in spotting.spot(times(7), above, NAMES, threshold=0.5)] == [
    pytest.approx(0.2)
  ]
  # The same with the dip below the threshold: min_gap merges them; without it, two words.
  dipped = scores((0.2, 0), (0.9, 0), (0.4, 0), (0.8, 0), (0.2, 0))
  assert len(spotting.spot(times(5), dipped, NAMES, threshold=0.5, min_gap=0.3)) == 1
  assert len(spotting.spot(times(5), dipped, NAMES, threshold=0.5, min_gap=0.0)) == 2


def test_scores_below_the_threshold_emit_nothing():
  p = scores((0.1, 0.2), (0.45, 0.3), (0.49, 0.1), (0.2, 0.45), (0.1, 0.1))
  assert spotting.spot(times(5), p, NAMES, threshold=0.5) == []
  assert [w.word for w in spotting.spot(times(5), p, NAMES, threshold=0.4)] == ['ABOUT', 'BLACK']


def test_the_background_class_is_never_emitted():
  p = scores((0.0, 0.0), (0.05, 0.0), (0.0, 0.02), (0.0, 0.0))  # background near 1 throughout
  assert spotting.spot(times(4), p, NAMES, threshold=0.1) == []
  assert spotting.spot(times(4), p, NAMES, threshold=0.0) == []


def test_two_different_words_in_sequence_are_both_emitted_in_order():
  p = scores(
    (0.1, 0.0), (0.7, 0.1), (0.9, 0.0), (0.6, 0.3), (0.3, 0.6), (0.1, 0.85), (0.0, 0.7), (0, 0.1)
  )
  words = spotting.spot(times(8), p, NAMES, threshold=0.5)
  assert [(w.word, round(w.time, 6)) for w in words] == [('ABOUT', 0.2), ('BLACK', 0.5)]
  # ABOUT is emitted when it falls (hop 3), BLACK when it falls (hop 6): both as they happen.
  assert [round(w.emitted_at, 6) for w in words] == [0.3, 0.6]


def test_a_word_peaking_at_the_end_is_emitted_by_flush_and_unscored_windows_end_a_segment():
  p = scores((0.1, 0), (0.7, 0), (0.9, 0))
  (word,) = spotting.spot(times(3), p, NAMES, threshold=0.5)
  assert word.time == pytest.approx(0.2) and word.emitted_at == pytest.approx(0.2)
  gap = np.vstack([scores((0.9, 0)), np.full((1, 3), np.nan), scores((0.9, 0))])
  assert len(spotting.spot(times(3), gap, NAMES, threshold=0.5, min_gap=0.0)) == 2
