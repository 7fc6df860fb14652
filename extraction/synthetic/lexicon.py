"""English words by frequency that CMUdict can pronounce: vocabularies and context words.

Frequencies come from the `wordfreq` package (its 'best' English list, shipped
inside the package; constraints.txt pins its version, so the lists are
deterministic). A word qualifies if it is ASCII letters only and CMUdict has it;
single letters qualify only as the words A and I. A vocabulary is the N most
frequent qualifying words of at least MIN_VOCABULARY_LETTERS letters, as LRW's
words are. Context words (the words spoken around a target word, in background
windows and in sentences) are the `size` most frequent qualifying words less the
vocabulary and less every word that looks like a vocabulary word on the lips
(the same viseme sequence): a context word must never be a class in disguise.
They are drawn with probability proportional to their frequency, as in speech.
"""

import dataclasses
import functools
import itertools

import numpy as np

from extraction.synthetic import phonetics

LANGUAGE = 'en'
MIN_VOCABULARY_LETTERS = 4
ONE_LETTER_WORDS = frozenset({'A', 'I'})
DEFAULT_LEXICON_SIZE = 3000


def _wordfreq():
  """The wordfreq module (ValueError with the install command if it is missing)."""
  try:
    import wordfreq
  except ModuleNotFoundError:
    raise ValueError(
      "the word lexicon needs the wordfreq package (pip install -c constraints.txt -e '.[extract]')"
    ) from None
  return wordfreq


def wordfreq_version() -> str:
  """The installed wordfreq version (it decides the word lists)."""
  from importlib import metadata

  _wordfreq()
  return metadata.version('wordfreq')


def qualifies(word: str) -> bool:
  """True for a word of ASCII letters that CMUdict pronounces (single letters: only A and I)."""
  word = word.upper()
  if not (word.isascii() and word.isalpha()):
    return False
  if len(word) == 1 and word not in ONE_LETTER_WORDS:
    return False
  return word.lower() in phonetics._cmudict()


def _qualifying_words():
  """Qualifying words, upper-case, most frequent first (an iterator over wordfreq's list)."""
  return (w.upper() for w in _wordfreq().iter_wordlist(LANGUAGE) if qualifies(w))


@functools.lru_cache(maxsize=8)
def frequent_words(count: int) -> tuple[str, ...]:
  """The `count` most frequent qualifying words, most frequent first."""
  words = tuple(itertools.islice(_qualifying_words(), count))
  if len(words) < count:
    raise ValueError(f'wordfreq has only {len(words)} qualifying words, {count} asked for')
  return words


@functools.lru_cache(maxsize=8)
def vocabulary(size: int) -> tuple[str, ...]:
  """The `size` most frequent qualifying words of >= MIN_VOCABULARY_LETTERS letters."""
  if size < 1:
    raise ValueError(f'--vocabulary_size must be at least 1, got {size}')
  long_words = (w for w in _qualifying_words() if len(w) >= MIN_VOCABULARY_LETTERS)
  words = tuple(itertools.islice(long_words, size))
  if len(words) < size:
    raise ValueError(f'wordfreq has only {len(words)} qualifying words, {size} asked for')
  return words


@dataclasses.dataclass(frozen=True, eq=False)
class Lexicon:
  """Context words with their draw probabilities and viseme sequences."""

  words: tuple[str, ...]
  probabilities: np.ndarray  # [W] proportional to word frequency, sum 1
  visemes: dict  # word -> viseme sequence
  excluded: tuple[str, ...]  # frequent words left out: vocabulary words and their look-alikes

  def draw(self, rng: np.random.Generator, min_letters: int = 1) -> str:
    """Draws one word by frequency among words of at least `min_letters` letters."""
    p = self.probabilities
    if min_letters > 1:
      p = p * (np.array([len(w) for w in self.words]) >= min_letters)
      if not p.any():
        raise ValueError(f'the context lexicon has no word of {min_letters} or more letters')
      p = p / p.sum()
    return self.words[rng.choice(len(self.words), p=p)]


def context_lexicon(vocabulary_words, size: int = DEFAULT_LEXICON_SIZE) -> Lexicon:
  """The `size` most frequent qualifying words, less the vocabulary and its look-alikes."""
  if size < 1:
    raise ValueError(f'--lexicon_size must be at least 1, got {size}')
  vocabulary_words = [w.upper() for w in vocabulary_words]
  classified = {phonetics.visemes(w) for w in vocabulary_words}
  words, excluded = [], []
  for word in frequent_words(size):
    if word in vocabulary_words or phonetics.visemes(word) in classified:
      excluded.append(word)
    else:
      words.append(word)
  if not words:
    raise ValueError(f'no context words left in the top {size} after removing the vocabulary')
  frequency = np.array([_wordfreq().word_frequency(w.lower(), LANGUAGE) for w in words])
  return Lexicon(
    tuple(words),
    frequency / frequency.sum(),
    {w: phonetics.visemes(w) for w in words},
    tuple(excluded),
  )
