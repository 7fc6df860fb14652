"""CTC decoding on hand-built log-probabilities with known readings, and against brute force."""

import collections
import itertools

import numpy as np
import pytest

from extraction import tokens
from lipjax import decoding

# GRID's sentence: command, colour, preposition, letter (no w), digit, adverb.
GRID_GRAMMAR = (
  ('bin', 'lay', 'place', 'set'),
  ('blue', 'green', 'red', 'white'),
  ('at', 'by', 'in', 'with'),
  tuple('abcdefghijklmnopqrstuvxyz'),
  ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'),
  ('again', 'now', 'please', 'soon'),
)
GRID_WORDS = sorted({word for slot in GRID_GRAMMAR for word in slot})


def log_probs(*columns, floor=0.0):
  """Log-probabilities [T, 29], one frame per column.

  A column is a character (probability 0.9), '-' (a blank frame) or a dict
  {character: probability}; the blank takes what is left. `floor` is then added to
  every token and each frame renormalised; without it, unnamed tokens are impossible.
  """
  probs = np.zeros((len(columns), tokens.NUM_TOKENS))  # [T, K]
  for t, column in enumerate(columns):
    named = {} if column == '-' else {column: 0.9} if isinstance(column, str) else column
    for char, p in named.items():
      probs[t, tokens.encode(char)[0]] = p
    probs[t, tokens.BLANK_ID] = 1.0 - probs[t].sum()
  probs = probs + floor
  probs /= probs.sum(axis=1, keepdims=True)
  with np.errstate(divide='ignore'):
    return np.log(probs)


def scatter(probs, support):
  """Log-probabilities [T, 29] of probabilities [T, len(support)] over the support's token ids."""
  full = np.zeros((probs.shape[0], tokens.NUM_TOKENS))
  full[:, support] = probs
  with np.errstate(divide='ignore'):
    return np.log(full)


def collapse(path) -> tuple[int, ...]:
  """The labelling an alignment spells: repeats merged, then blanks dropped."""
  return tuple(k for k, _ in itertools.groupby(path) if k != tokens.BLANK_ID)


def labelling_probabilities(frames, support) -> dict[tuple[int, ...], float]:
  """P(labelling) by summing over every alignment of the support tokens (tiny T only)."""
  paths = np.array(list(itertools.product(support, repeat=frames.shape[0])))  # [P, T]
  path_probs = np.exp(frames[np.arange(frames.shape[0]), paths].sum(axis=1))  # [P]
  totals = collections.defaultdict(float)
  for path, p in zip(paths.tolist(), path_probs.tolist()):
    totals[collapse(path)] += p
  return totals


def brute_force(frames, support, is_complete=lambda text: True) -> tuple[int, ...]:
  """The likeliest labelling among the complete ones, by enumeration."""
  totals = labelling_probabilities(frames, support)
  complete = {ids: p for ids, p in totals.items() if is_complete(tokens.decode(ids))}
  ranked = sorted(complete.items(), key=lambda item: -item[1])
  assert ranked[0][1] > ranked[1][1] * (1 + 1e-9), 'a near tie: pick another seed'
  return ranked[0][0]


def read(ids) -> str:
  return tokens.decode(ids)


def test_greedy_merges_repeats_and_drops_blanks():
  frames = log_probs('b', 'b', '-', 'i', 'n', 'n', '-')
  assert read(decoding.greedy(frames, 7)) == 'bin'


def test_a_repeated_letter_needs_a_blank_between_in_greedy_and_beam():
  merged = log_probs('s', 'o', 'o', 'n')
  separated = log_probs('s', 'o', '-', 'o', 'n')
  assert read(decoding.greedy(merged, 4)) == 'son'
  assert read(decoding.greedy(separated, 5)) == 'soon'
  assert read(decoding.beam_search(merged, 4)) == 'son'
  assert read(decoding.beam_search(separated, 5)) == 'soon'


def test_frames_after_length_are_ignored():
  frames = log_probs('n', 'o', 'w', 'x', 'x', '-')
  assert read(decoding.greedy(frames, 3)) == 'now'
  assert read(decoding.beam_search(frames, 3)) == 'now'
  assert read(decoding.beam_search(frames, 3, lexicon=['now', 'nowx'])) == 'now'
  assert read(decoding.greedy(frames, 0)) == read(decoding.beam_search(frames, 0)) == ''


def test_batches_decode_each_utterance_with_its_length():
  batch = np.stack([log_probs('n', 'o', 'w', 'x'), log_probs('s', 'o', '-', 'o')])  # [2, 4, K]
  assert [read(ids) for ids in decoding.greedy_batch(batch, [3, 4])] == ['now', 'soo']
  readings = decoding.beam_search_batch(batch, np.array([3, 4]), beam_width=4)
  assert [read(ids) for ids in readings] == ['now', 'soo']
  with pytest.raises(ValueError, match=r'\[B, T, K\]'):
    decoding.greedy_batch(batch, [3])


def test_beam_search_sums_alignments_where_greedy_follows_the_best_path():
  # Two frames, P(a) = 0.3, P(blank) = 0.7 each. The best path is (blank, blank): '' with
  # 0.49. But 'a' has three alignments, aa + a- + -a = 0.09 + 0.21 + 0.21 = 0.51: the
  # labelling beats the best path though none of its alignments does.
  frames = log_probs({'a': 0.3}, {'a': 0.3})
  assert read(decoding.greedy(frames, 2)) == ''
  assert read(decoding.beam_search(frames, 2)) == 'a'
  totals = labelling_probabilities(frames, [tokens.BLANK_ID, tokens.encode('a')[0]])
  assert np.isclose(totals[()], 0.49) and np.isclose(totals[tuple(tokens.encode('a'))], 0.51)


@pytest.mark.parametrize('seed', range(6))
def test_wide_beam_finds_the_likeliest_labelling_of_brute_force(seed):
  rng = np.random.default_rng(seed)
  frames = np.log(rng.dirichlet(np.full(4, 0.5), size=6))  # [6, 4]: blank and three tokens
  expected = brute_force(frames, range(4))
  assert tuple(decoding.beam_search(frames, 6, beam_width=10_000)) == expected


@pytest.mark.parametrize('seed', range(5))
def test_beam_width_one_equals_greedy_when_each_frame_is_confident(seed):
  rng = np.random.default_rng(seed)
  best = rng.integers(0, 5, size=20)  # [T]: blanks, space and a few letters
  probs = np.full((20, tokens.NUM_TOKENS), 0.05 / (tokens.NUM_TOKENS - 1))
  probs[np.arange(20), best] = 0.95
  frames = np.log(probs)
  assert decoding.beam_search(frames, 20, beam_width=1) == decoding.greedy(frames, 20)


def test_lexicon_corrects_a_misspelt_word_that_greedy_and_free_beam_keep():
  frames = log_probs('b', {'k': 0.5, 'l': 0.4}, 'u', 'e')
  assert read(decoding.greedy(frames, 4)) == 'bkue'
  assert read(decoding.beam_search(frames, 4)) == 'bkue'
  assert read(decoding.beam_search(frames, 4, lexicon={'blue', 'green', 'red'})) == 'blue'


def test_lexicon_reading_ends_at_a_word_end():
  # Greedy stops mid-word and leaves a trailing space; a lexicon reading must not.
  frames = log_probs('b', 'i', 'n', ' ', 'b', 'l', 'u', {'e': 0.2}, ' ')
  assert read(decoding.greedy(frames, 9)) == 'bin blu '
  assert read(decoding.beam_search(frames, 9, lexicon=GRID_WORDS)) == 'bin blue'


def test_lexicon_reading_may_be_empty_when_nothing_is_said():
  frames = log_probs('-', {'a': 0.2}, '-')
  assert read(decoding.beam_search(frames, 3, lexicon=['at', 'by'])) == ''


def test_grammar_fills_the_slot_that_greedy_and_the_lexicon_skip():
  # Weak evidence for 'at' between 'blue' and 'f': without a grammar the blanks win.
  columns = ['b', 'i', 'n', ' ', 'b', 'l', 'u', 'e', ' ', {'a': 0.3}, {'t': 0.3}, {' ': 0.3}]
  columns += ['f', ' ', 't', 'w', 'o', ' ', 'n', 'o', 'w']
  frames = log_probs(*columns, floor=1e-3)
  length = len(columns)
  assert read(decoding.greedy(frames, length)) == 'bin blue f two now'
  assert read(decoding.beam_search(frames, length, lexicon=GRID_WORDS)) == 'bin blue f two now'
  assert read(decoding.beam_search(frames, length, grammar=GRID_GRAMMAR)) == 'bin blue at f two now'


def test_grammar_corrects_a_word_into_its_slot():
  # 'blua' is no colour; the grammar reads the colour the other letters support.
  columns = ['s', 'e', 't', ' ', 'b', 'l', 'u', {'a': 0.5, 'e': 0.4}, ' ', 'i', 'n', ' ']
  columns += ['a', ' ', 'o', 'n', 'e', ' ', 's', 'o', '-', 'o', 'n']
  frames = log_probs(*columns, floor=1e-3)
  assert read(decoding.greedy(frames, len(columns))) == 'set blua in a one soon'
  reading = decoding.beam_search(frames, len(columns), grammar=GRID_GRAMMAR)
  assert read(reading) == 'set blue in a one soon'


@pytest.mark.parametrize('seed', range(4))
def test_grammar_reading_is_a_complete_sentence_even_from_noise(seed):
  # An untrained model: no sentence is likely, yet every slot is filled with one of its words.
  frames = np.log(np.random.default_rng(seed).dirichlet(np.ones(tokens.NUM_TOKENS), size=75))
  for beam_width in (1, 16):
    words = read(decoding.beam_search(frames, 75, beam_width, grammar=GRID_GRAMMAR)).split(' ')
    assert len(words) == len(GRID_GRAMMAR)
    assert all(word in slot for word, slot in zip(words, GRID_GRAMMAR))


SMALL_SUPPORT = [tokens.BLANK_ID, tokens.SPACE_ID, *tokens.encode('ab')]


@pytest.mark.parametrize('seed', range(4))
def test_wide_lexicon_beam_finds_the_likeliest_lexicon_reading_of_brute_force(seed):
  lexicon = {'a', 'ab', 'bb', 'bab'}
  frames = scatter(np.random.default_rng(seed).dirichlet(np.ones(4), size=7), SMALL_SUPPORT)

  def is_complete(text):
    return text == '' or all(word in lexicon for word in text.split(' '))

  expected = brute_force(frames, SMALL_SUPPORT, is_complete)
  assert tuple(decoding.beam_search(frames, 7, beam_width=10_000, lexicon=lexicon)) == expected


@pytest.mark.parametrize('seed', range(4))
def test_wide_grammar_beam_finds_the_likeliest_grammar_reading_of_brute_force(seed):
  grammar = [('a', 'ab', 'b'), ('ba', 'b', 'aa')]
  frames = scatter(np.random.default_rng(seed).dirichlet(np.ones(4), size=7), SMALL_SUPPORT)

  def is_complete(text):
    words = text.split(' ')
    return len(words) == 2 and all(word in slot for word, slot in zip(words, grammar))

  expected = brute_force(frames, SMALL_SUPPORT, is_complete)
  assert tuple(decoding.beam_search(frames, 7, beam_width=10_000, grammar=grammar)) == expected


def test_grammar_needs_frames_for_its_shortest_sentence_repeats_included():
  frames = np.log(np.random.default_rng(0).dirichlet(np.ones(tokens.NUM_TOKENS), size=5))
  # 'soon' is s, o, blank, o, n: five frames, whatever the model says.
  assert read(decoding.beam_search(frames, 5, grammar=[['soon']])) == 'soon'
  with pytest.raises(ValueError, match='4 frames cannot hold a complete reading.*needs 5'):
    decoding.beam_search(frames, 4, grammar=[['soon']])


def test_constraint_counts_the_frames_each_state_needs():
  constraint = decoding.grammar_constraint([['at', 'a'], ['soon']])
  # Shortest: 'a soon' = a, space, s, o, blank, o, n.
  assert constraint.frames_after_blank[constraint.start] == 7
  lexicon = decoding.lexicon_constraint(['aa'])
  assert lexicon.final[lexicon.start] and lexicon.frames_after_blank[lexicon.start] == 0
  after_a = lexicon.transitions[lexicon.start, tokens.encode('a')[0]]
  assert lexicon.frames_after_token[after_a] == 2 and lexicon.frames_after_blank[after_a] == 1


@pytest.mark.parametrize(
  'options, message',
  [
    ({'lexicon': ['bin'], 'grammar': [['bin']]}, 'not both'),
    ({'lexicon': 'bin'}, 'collection of words'),
    ({'lexicon': []}, 'no words'),
    ({'lexicon': ['bin', 'b2']}, "cannot encode '2' in 'b2'"),
    ({'lexicon': ['bin blue']}, 'holds a space'),
    ({'grammar': ['bin']}, 'grammar slot 0 must be a collection'),
    ({'grammar': []}, 'no slots'),
    ({'beam_width': 0}, 'beam_width'),
  ],
)
def test_beam_search_refuses_bad_options(options, message):
  with pytest.raises(ValueError, match=message):
    decoding.beam_search(log_probs('b', 'i', 'n'), 3, **options)


def test_decoders_refuse_bad_log_probabilities():
  with pytest.raises(ValueError, match=r'length 4 is outside \[0, 3\]'):
    decoding.greedy(log_probs('b', 'i', 'n'), 4)
  with pytest.raises(ValueError, match=r'\[T, K\]'):
    decoding.beam_search(np.zeros((2, 3, 29)), 3)
  with pytest.raises(ValueError, match='NaN'):
    decoding.beam_search(np.full((3, 29), np.nan), 3)
  with pytest.raises(ValueError, match='29 tokens'):
    decoding.beam_search(np.zeros((3, 5)), 3, lexicon=['bin'])
