"""Words in running speech: utterances of several words, windows cut from them, sentences.

An `Utterance` is a list of words spoken back to back at one speaking rate, as
one viseme sequence ('sil' marks a pause) with each word's time, so that the
renderer draws one continuous, coarticulated articulation track through it.
Pauses fall between words only some of the time (`pause_probability`) and are
short (`pause_range`), so the mouth never rests for long inside an utterance.

Three uses (pure planning here; dataset.py renders and writes):
  context window     a target word with context words on each side, cut as LRW
                     cuts it: `num_frames` long, the word's centre at the window's
                     centre, speech in every frame
  background window  the same cut centred on a context word of 4+ letters, on a
                     pause, or on the boundary between two words
  sentence           a whole utterance: vocabulary and context words mixed
"""

import dataclasses

import numpy as np

from extraction.synthetic import lexicon as lexicon_lib
from extraction.synthetic import phonetics

# What a background window is centred on, and how often.
BACKGROUND_KINDS = ('word', 'pause', 'boundary')
BACKGROUND_KIND_PROBABILITIES = (0.5, 0.25, 0.25)


@dataclasses.dataclass(frozen=True)
class RunningSpeech:
  """How words are strung together (the defaults: isolated words only, as before)."""

  context_words: int = 0  # K: at least K words on each side of the target; 0 = isolated words
  lexicon_size: int = lexicon_lib.DEFAULT_LEXICON_SIZE  # most frequent words the context draws on
  pause_probability: float = 0.25  # of a pause between two words
  pause_range: tuple[float, float] = (0.04, 0.15)  # pause length LO,HI in seconds
  background_fraction: float = 0.0  # background windows per speaker / word clips per speaker
  sentences: int = 0  # whole utterances per speaker
  grid_sentences: int = 0  # sentences of GRID's grammar per speaker, in GRID's layout
  sentence_words: tuple[int, int] = (4, 8)  # words per sentence LO,HI
  sentence_vocabulary_share: float = 0.35  # chance that a sentence word is a vocabulary word

  def uses_lexicon(self) -> bool:
    """True if context words are needed (running speech, background windows or sentences)."""
    return self.context_words > 0 or self.sentences > 0 or self.background_fraction > 0

  def check(self, num_frames: int, fps: float) -> None:
    """Raises ValueError naming the first setting that cannot work."""
    lo, hi = self.pause_range
    problems = [
      ('context_words', self.context_words >= 0, 'must be >= 0'),
      ('lexicon_size', self.lexicon_size >= 1, 'must be >= 1'),
      ('pause_probability', 0 <= self.pause_probability <= 1, 'must be in [0, 1]'),
      ('pause_range', 0 <= lo <= hi, 'must be 0 <= LO <= HI'),
      ('background_fraction', self.background_fraction >= 0, 'must be >= 0'),
      (
        'background_fraction',
        self.background_fraction == 0 or self.context_words > 0,
        'needs --context_words K > 0 (background windows are cut from running speech)',
      ),
      ('sentences', self.sentences >= 0, 'must be >= 0'),
      ('grid_sentences', self.grid_sentences >= 0, 'must be >= 0'),
      (
        'sentence_words',
        1 <= self.sentence_words[0] <= self.sentence_words[1],
        'need 1 <= LO <= HI',
      ),
      ('sentence_vocabulary_share', 0 <= self.sentence_vocabulary_share <= 1, 'must be in [0, 1]'),
      ('num_frames', self.context_words == 0 or num_frames / fps >= 0.4, 'window under 0.4 s'),
    ]
    for name, ok, message in problems:
      if not ok:
        raise ValueError(f'{name} = {getattr(self, name, num_frames)}: {message}')


@dataclasses.dataclass(frozen=True)
class Utterance:
  """Words spoken back to back; times in seconds from the first viseme."""

  visemes: tuple[str, ...]  # 'sil' for a pause
  durations: np.ndarray  # [V] seconds
  words: tuple[tuple[str, float, float], ...]  # (word, start, end)

  @property
  def duration(self) -> float:
    return float(np.sum(self.durations))

  def shifted(self, offset: float) -> tuple[tuple[str, float, float], ...]:
    """The words' times minus `offset` (e.g. a window's start)."""
    return tuple((w, s - offset, e - offset) for w, s, e in self.words)


@dataclasses.dataclass(frozen=True)
class Voice:
  """A speaker's delivery in one clip: rate and timing randomness (drawn per clip)."""

  rate: float  # speaking-rate factor
  duration_jitter: float  # log-normal std of each viseme's duration
  running: RunningSpeech

  def durations(self, viseme_seq, rng: np.random.Generator) -> np.ndarray:
    """Seconds per viseme of one word.  # [V]"""
    jitter = np.exp(rng.normal(0.0, self.duration_jitter, size=len(viseme_seq)))
    return phonetics.viseme_durations(viseme_seq, self.rate, jitter)

  def pause(self, rng: np.random.Generator) -> float:
    """A pause between two words: usually none, else a short one (seconds)."""
    if rng.random() >= self.running.pause_probability:
      return 0.0
    return float(rng.uniform(*self.running.pause_range))


@dataclasses.dataclass
class _Spoken:
  """One word as spoken: its visemes, their durations and the pause on its inner side."""

  word: str
  visemes: tuple[str, ...]
  durations: np.ndarray
  pause: float  # seconds of pause between this word and its neighbour toward the centre

  @property
  def span(self) -> float:
    return self.pause + float(self.durations.sum())


def _side(
  min_words: int,
  min_reach: float,
  voice: Voice,
  lexicon: lexicon_lib.Lexicon,
  rng: np.random.Generator,
  inner_pause: bool,
) -> list[_Spoken]:
  """Context words outward from the centre until there are min_words and they reach min_reach s."""
  spoken, reach = [], 0.0
  while len(spoken) < min_words or reach < min_reach:
    pause = voice.pause(rng) if (spoken or inner_pause) else 0.0
    word = lexicon.draw(rng)
    visemes = lexicon.visemes[word]
    spoken.append(_Spoken(word, visemes, voice.durations(visemes, rng), pause))
    reach += spoken[-1].span
  return spoken


def _assemble(left: list[_Spoken], centre: list[_Spoken], right: list[_Spoken]) -> Utterance:
  """Joins outward-ordered left words, the centre words (in time order) and right words."""
  # In time order a left word's pause follows it; a centre or right word's pause precedes it.
  visemes, durations, words, t = [], [], [], 0.0

  def say(item: _Spoken, pause_before: bool):
    nonlocal t
    if pause_before and item.pause > 0:
      visemes.append('sil')
      durations.append(item.pause)
      t += item.pause
    visemes.extend(item.visemes)
    durations.extend(item.durations)
    words.append((item.word, t, t + float(item.durations.sum())))
    t = words[-1][2]
    if not pause_before and item.pause > 0:
      visemes.append('sil')
      durations.append(item.pause)
      t += item.pause

  for item in reversed(left):
    say(item, pause_before=False)
  for item in centre + right:
    say(item, pause_before=True)
  return Utterance(tuple(visemes), np.array(durations, np.float64), tuple(words))


def window_utterance(
  centre: str,
  voice: Voice,
  lexicon: lexicon_lib.Lexicon,
  rng: np.random.Generator,
  window_s: float,
  margin_s: float,
  target_visemes=None,
) -> tuple[Utterance, float, float]:
  """An utterance to cut a window from, centred on `centre`; returns (utterance, centre time, duration).

  centre: a word (with target_visemes), or 'pause' / 'boundary' (background). At
  least `voice.running.context_words` words are spoken on each side, and more
  until the speech reaches margin_s beyond the window's edges. `duration` is the
  centred word's, or for a pause or boundary the mean of the two words beside it
  (a nominal word-sized interval, so its length does not give the class away).
  A target word longer than the window less two frames is spoken faster to fit.
  """
  k = voice.running.context_words
  half = 0.5 * window_s + margin_s
  if centre in ('pause', 'boundary'):
    gap = float(rng.uniform(*voice.running.pause_range)) if centre == 'pause' else 0.0
    left = _side(k, half - 0.5 * gap, voice, lexicon, rng, inner_pause=False)
    right = _side(k, half - 0.5 * gap, voice, lexicon, rng, inner_pause=False)
    right[0].pause = gap
    utterance = _assemble(left, [], right)
    before, after = utterance.words[len(left) - 1], utterance.words[len(left)]
    centre_time = 0.5 * (before[2] + after[1])
    duration = 0.5 * ((before[2] - before[1]) + (after[2] - after[1]))
    return utterance, centre_time, duration
  durations = voice.durations(target_visemes, rng)
  room = window_s - 2.0 * margin_s
  if durations.sum() > room:  # a long word in a short window: speak faster
    durations *= room / durations.sum()
  target = _Spoken(centre, tuple(target_visemes), durations, 0.0)
  reach = half - 0.5 * float(durations.sum())
  left = _side(k, reach, voice, lexicon, rng, inner_pause=True)
  right = _side(k, reach, voice, lexicon, rng, inner_pause=True)
  utterance = _assemble(left, [target], right)
  _, start, end = utterance.words[len(left)]
  return utterance, 0.5 * (start + end), end - start


def sentence_utterance(
  vocabulary,
  voice: Voice,
  lexicon: lexicon_lib.Lexicon,
  rng: np.random.Generator,
) -> Utterance:
  """A whole utterance: vocabulary and context words mixed, at least one vocabulary word."""
  running = voice.running
  count = int(rng.integers(running.sentence_words[0], running.sentence_words[1] + 1))
  from_vocabulary = rng.random(count) < running.sentence_vocabulary_share
  if not from_vocabulary.any():
    from_vocabulary[rng.integers(count)] = True
  spoken = []
  for index, is_word in enumerate(from_vocabulary):
    word = vocabulary[rng.integers(len(vocabulary))] if is_word else lexicon.draw(rng)
    visemes = phonetics.visemes(word) if is_word else lexicon.visemes[word]
    pause = voice.pause(rng) if index else 0.0
    spoken.append(_Spoken(word, visemes, voice.durations(visemes, rng), pause))
  return _assemble([], spoken, [])


def words_utterance(words, visemes_of, voice: Voice, rng: np.random.Generator) -> Utterance:
  """A given sequence of words spoken back to back (pauses as in any utterance).

  visemes_of(word): the word's viseme sequence (GRID's letters are said by their names).
  """
  spoken = []
  for index, word in enumerate(words):
    visemes = visemes_of(word)
    pause = voice.pause(rng) if index else 0.0
    spoken.append(_Spoken(word, visemes, voice.durations(visemes, rng), pause))
  return _assemble([], spoken, [])
