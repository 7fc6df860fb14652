"""CTC decoding of a sentence reader's per-frame log-probabilities: greedy and prefix beam search.

Kept apart from the model and in numpy: the log-probabilities come back to the host
and are decoded there, one utterance at a time. Token ids are extraction/tokens.py's:
the blank is 0 and a space separates words; `tokens.decode` turns a result into text.

Beam search is the CTC prefix beam search of Hannun et al. 2014 (arXiv:1408.2873).
Each prefix carries two log-probabilities, of its alignments that end in a blank and
of those that end in its last token, because only the former may be extended by a
repeat of that token ("aa" is a, blank, a). A labelling's probability sums over all
its alignments, so the search can find a reading that no single best path spells.

A lexicon or a grammar constrains the search while it runs. The constraint is an
automaton over tokens (a `Constraint`): a character trie of the words, its word ends
leading by a space back to its root (lexicon) or to the next slot's trie (grammar).
A prefix is extended only with the tokens its state allows, and a prefix that can no
longer reach a complete reading in the frames left is dropped, so the reading returned
always ends at a word end, and with a grammar fills every slot.
"""

import dataclasses
import functools

import numpy as np

from extraction import tokens


@dataclasses.dataclass(frozen=True)
class Constraint:
  """An automaton over token ids: which tokens may extend a prefix, and which prefixes are complete.

  The state a prefix is in is determined by its tokens. Every way into a state ends in
  the same token, `entry_token`, which is what lets the automaton count the frames a
  completion needs: repeating the entry token costs a blank frame first.
  """

  transitions: np.ndarray  # [S, K] the state after each token, -1 where the token may not follow
  final: np.ndarray  # [S] bool: a reading may end here
  entry_token: np.ndarray  # [S] the token every way into the state ends with; -1 for none
  start: int
  # The fewest frames that take each state to a final one, when the alignment so far
  # ends in the state's entry token (a repeat of it waits for a blank) or in a blank.
  frames_after_token: np.ndarray  # [S]
  frames_after_blank: np.ndarray  # [S]


class _ConstraintBuilder:
  """Grows a Constraint one state at a time."""

  def __init__(self, num_tokens: int):
    self.num_tokens = num_tokens
    self.transitions: list[np.ndarray] = []
    self.entry_token: list[int] = []
    self.final: list[bool] = []

  def add_state(self, entry_token: int) -> int:
    """A new state without transitions, not final; returns its id."""
    self.transitions.append(np.full(self.num_tokens, -1, np.int32))
    self.entry_token.append(entry_token)
    self.final.append(False)
    return len(self.final) - 1

  def add_trie(self, root: int, words) -> list[int]:
    """Spells each word from `root`, sharing common prefixes; returns the states where words end."""
    ends = []
    for word in sorted(words):
      state = root
      for token in _spelling(word):
        if self.transitions[state][token] < 0:
          self.transitions[state][token] = self.add_state(token)
        state = int(self.transitions[state][token])
      ends.append(state)
    return ends

  def build(self, start: int) -> Constraint:
    """The finished automaton, with the frames each state needs to reach a final one."""
    transitions = np.stack(self.transitions)  # [S, K]
    final = np.asarray(self.final, bool)
    entry_token = np.asarray(self.entry_token, np.int32)
    after_token, after_blank = _frames_to_final(transitions, final, entry_token)
    return Constraint(transitions, final, entry_token, start, after_token, after_blank)


def _frames_to_final(transitions, final, entry_token):
  """Fewest frames from each state to a final one, after its entry token and after a blank."""
  num_tokens = transitions.shape[1]
  allowed = transitions >= 0
  target = np.maximum(transitions, 0)
  # A token equal to the entry token is a repeat: CTC needs a blank frame between the two.
  cost = 1.0 + (np.arange(num_tokens)[None, :] == entry_token[:, None])  # [S, K]
  after_token = np.where(final, 0.0, np.inf)  # [S]
  while True:  # Bellman-Ford: at most as many rounds as the longest shortest completion
    through = np.where(allowed, cost + after_token[target], np.inf).min(axis=1)
    updated = np.minimum(after_token, through)
    if np.array_equal(updated, after_token):
      break
    after_token = updated
  through = np.where(allowed, 1.0 + after_token[target], np.inf).min(axis=1)
  after_blank = np.where(final, 0.0, through)
  return after_token, after_blank


def _spelling(word) -> np.ndarray:
  """The token ids of one word of a lexicon or grammar.  # [L]"""
  if not isinstance(word, str) or not word:
    raise ValueError(f'a lexicon or grammar word must be a non-empty string, got {word!r}')
  ids = tokens.encode(word)
  if (ids == tokens.SPACE_ID).any():
    raise ValueError(f'{word!r} holds a space: list single words, the search places the spaces')
  return ids


def _words(words, what: str) -> set[str]:
  """The distinct words of a collection; refuses a bare string (which would be its characters)."""
  if isinstance(words, str):
    raise ValueError(f'{what} must be a collection of words, got the string {words!r}')
  words = set(words)
  if not words:
    raise ValueError(f'{what} holds no words')
  return words


def lexicon_constraint(words) -> Constraint:
  """Readings that are space-separated sequences of the words (none at all included)."""
  builder = _ConstraintBuilder(tokens.NUM_TOKENS)
  start = builder.add_state(-1)
  root = builder.add_state(tokens.SPACE_ID)  # after a space, where a word must follow
  for end in builder.add_trie(root, _words(words, 'the lexicon')):
    builder.transitions[end][tokens.SPACE_ID] = root
    builder.final[end] = True
  builder.transitions[start] = builder.transitions[root].copy()
  builder.final[start] = True  # the empty reading: no word was spoken
  return builder.build(start)


def grammar_constraint(slots) -> Constraint:
  """Readings of exactly one word from each slot, in order, separated by spaces."""
  if isinstance(slots, str):
    raise ValueError(f'a grammar is a sequence of slots (collections of words), got {slots!r}')
  slots = list(slots)
  if not slots:
    raise ValueError('the grammar has no slots')
  builder = _ConstraintBuilder(tokens.NUM_TOKENS)
  roots = [builder.add_state(-1 if i == 0 else tokens.SPACE_ID) for i in range(len(slots))]
  for i, slot in enumerate(slots):
    for end in builder.add_trie(roots[i], _words(slot, f'grammar slot {i}')):
      if i + 1 < len(slots):
        builder.transitions[end][tokens.SPACE_ID] = roots[i + 1]
      else:
        builder.final[end] = True
  return builder.build(roots[0])


@functools.lru_cache(maxsize=8)
def _unconstrained(num_tokens: int) -> Constraint:
  """Any sequence of the non-blank tokens: one final state."""
  builder = _ConstraintBuilder(num_tokens)
  state = builder.add_state(-1)
  builder.transitions[state][:] = 0
  builder.transitions[state][tokens.BLANK_ID] = -1
  builder.final[state] = True
  return builder.build(state)


_cached_lexicon = functools.lru_cache(maxsize=8)(lexicon_constraint)
_cached_grammar = functools.lru_cache(maxsize=8)(grammar_constraint)


def _constraint(num_tokens: int, lexicon, grammar) -> Constraint:
  """The automaton of a beam search's options, built once per distinct lexicon or grammar."""
  if lexicon is not None and grammar is not None:
    raise ValueError('give a lexicon or a grammar, not both (a grammar names its own words)')
  if lexicon is None and grammar is None:
    return _unconstrained(num_tokens)
  if num_tokens != tokens.NUM_TOKENS:
    raise ValueError(
      f'a lexicon or grammar spells words in the {tokens.NUM_TOKENS} tokens of '
      f'extraction/tokens.py, but the log-probabilities have {num_tokens} per frame'
    )
  if lexicon is not None:
    return _cached_lexicon(frozenset(_words(lexicon, 'the lexicon')))
  if isinstance(grammar, str):
    raise ValueError(f'a grammar is a sequence of slots (collections of words), got {grammar!r}')
  slots = (frozenset(_words(slot, f'grammar slot {i}')) for i, slot in enumerate(grammar))
  return _cached_grammar(tuple(slots))


def min_frames(lexicon=None, grammar=None) -> int:
  """The fewest frames that hold a complete reading under a lexicon or grammar (0 for neither)."""
  constraint = _constraint(tokens.NUM_TOKENS, lexicon, grammar)
  return int(constraint.frames_after_blank[constraint.start])


def _frames(log_probs, length) -> np.ndarray:
  """The first `length` frames of one utterance's log-probabilities, checked.  # [length, K]"""
  log_probs = np.asarray(log_probs, np.float64)
  if log_probs.ndim != 2:
    raise ValueError(f'expected log-probabilities [T, K] of one utterance, got {log_probs.shape}')
  length = int(length)
  if not 0 <= length <= log_probs.shape[0]:
    raise ValueError(f'length {length} is outside [0, {log_probs.shape[0]}] frames')
  frames = log_probs[:length]
  if np.isnan(frames).any() or (frames == np.inf).any():
    raise ValueError('log-probabilities hold NaN or +inf; is the model diverging?')
  return frames


def _batch(log_probs, lengths) -> tuple[np.ndarray, np.ndarray]:
  """A batch's log-probabilities and lengths, checked against each other."""
  log_probs = np.asarray(log_probs)
  lengths = np.asarray(lengths).reshape(-1)
  if log_probs.ndim != 3 or lengths.shape[0] != log_probs.shape[0]:
    raise ValueError(
      f'expected log-probabilities [B, T, K] and lengths [B], got {log_probs.shape} and '
      f'{lengths.shape}'
    )
  return log_probs, lengths


def greedy(log_probs, length) -> list[int]:
  """The best path's labelling: each frame's likeliest token, repeats merged, blanks dropped."""
  best = np.argmax(_frames(log_probs, length), axis=-1)  # [length]
  previous = np.concatenate([[tokens.BLANK_ID], best])[:-1]
  return best[(best != previous) & (best != tokens.BLANK_ID)].tolist()


def greedy_batch(log_probs, lengths) -> list[list[int]]:
  """`greedy` of each utterance of a batch [B, T, K] with its length [B]."""
  log_probs, lengths = _batch(log_probs, lengths)
  return [greedy(frames, length) for frames, length in zip(log_probs, lengths)]


def beam_search(log_probs, length, beam_width: int = 16, lexicon=None, grammar=None) -> list[int]:
  """The likeliest complete labelling that a CTC prefix beam search finds.

  Args:
    log_probs: [T, K] per-frame log-probabilities of one utterance (logits give the
      same result: a constant added to a frame scales every labelling alike).
    length: the number of real frames; later frames are ignored.
    beam_width: how many prefixes survive each frame.
    lexicon: optional collection of words; the reading is a space-separated sequence
      of them (or empty).
    grammar: optional sequence of slots, each a collection of words; the reading is
      one word of each slot, in order.

  Returns:
    The token ids of the reading (`tokens.decode` gives its text).

  Raises:
    ValueError: on malformed input, a lexicon and a grammar both given, or `length`
      too short for any complete reading of the grammar.
  """
  frames = _frames(log_probs, length)  # [length, K]
  if beam_width < 1:
    raise ValueError(f'beam_width must be at least 1, got {beam_width}')
  num_tokens = frames.shape[1]
  constraint = _constraint(num_tokens, lexicon, grammar)
  needed = constraint.frames_after_blank[constraint.start]
  if needed > len(frames):
    raise ValueError(
      f'{len(frames)} frames cannot hold a complete reading: the grammar needs {needed:.0f}'
    )
  token_ids = np.arange(num_tokens)
  prefixes = [()]
  blank_score = np.zeros(1)  # [W] log P(the prefix's alignments that end in a blank)
  token_score = np.full(1, -np.inf)  # [W] log P(... that end in its last token)
  state = np.array([constraint.start])  # [W]
  last = np.array([tokens.BLANK_ID])  # [W] the empty prefix's "last token" matches no extension
  for t, frame in enumerate(frames):
    frames_left = len(frames) - t - 1
    width = len(prefixes)
    total = np.logaddexp(blank_score, token_score)  # [W]
    # A repeat of the last token starts a new token only after a blank.
    before = np.where(token_ids == last[:, None], blank_score[:, None], total[:, None])  # [W, K]
    next_state = constraint.transitions[state]  # [W, K]
    can_finish = constraint.frames_after_token[next_state] <= frames_left
    extend = np.where((next_state >= 0) & can_finish, before + frame, -np.inf)  # [W, K]
    # Paths that can no longer complete a reading are dropped, whatever their probability.
    stay_blank = np.where(
      constraint.frames_after_blank[state] <= frames_left, total + frame[tokens.BLANK_ID], -np.inf
    )  # [W]
    stay_token = np.where(
      constraint.frames_after_token[state] <= frames_left, token_score + frame[last], -np.inf
    )  # [W]
    # An extension that spells a prefix already in the beam adds to that prefix.
    position = {prefix: i for i, prefix in enumerate(prefixes)}
    for j, prefix in enumerate(prefixes):
      parent = position.get(prefix[:-1]) if prefix else None
      if parent is not None:
        stay_token[j] = np.logaddexp(stay_token[j], extend[parent, prefix[-1]])
        extend[parent, prefix[-1]] = -np.inf
    scores = np.concatenate([np.logaddexp(stay_blank, stay_token), extend.ravel()])  # [W + W*K]
    chosen = np.argsort(-scores, kind='stable')[:beam_width]
    chosen = chosen[scores[chosen] > -np.inf]
    stays = chosen < width
    source = np.where(stays, chosen, (chosen - width) // num_tokens)
    last = np.where(stays, last[source], (chosen - width) % num_tokens)
    blank_score = np.where(stays, stay_blank[source], -np.inf)
    token_score = np.where(stays, stay_token[source], scores[chosen])
    state = np.where(stays, state[source], next_state[source, last])
    prefixes = [
      prefixes[i] if stay else prefixes[i] + (token,)
      for i, stay, token in zip(source.tolist(), stays.tolist(), last.tolist())
    ]
  if not prefixes:
    raise ValueError('no complete reading has a non-zero probability under these log-probabilities')
  # With no frames left, only final states survived: the best prefix is a complete reading.
  return list(prefixes[0])


def beam_search_batch(log_probs, lengths, **options) -> list[list[int]]:
  """`beam_search` of each utterance of a batch [B, T, K] with its length [B]."""
  log_probs, lengths = _batch(log_probs, lengths)
  return [beam_search(frames, length, **options) for frames, length in zip(log_probs, lengths)]
