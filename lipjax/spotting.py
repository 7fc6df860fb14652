"""Word spotting: per-hop class scores over time -> one timed word per spoken word.

Pure numpy, no model: `lipjax.stream` feeds it the probabilities of each scored
window, and the benchmark and tests feed it hand-made or recorded scores.

The rule, per hop (a scored window, its centre time t):
  * The hop's word is its top class, if that is not the background class and its
    probability reaches `threshold`; otherwise the hop has no word.
  * Consecutive hops with the same word form a segment. Inside a segment the
    word's peak is tracked; hops tied with the peak widen it into a plateau.
  * The word is emitted at the first hop after its peak where the score is lower
    (or the segment ends), with time = the peak's window centre (the middle of a
    plateau) and its peak score. That is the earliest hop at which the peak is
    known to be one, so latency is one hop past the peak window.
  * Once emitted, the rest of the segment emits nothing (a second, higher rise of
    the same word without falling below the threshold is the same spoken word),
    and a new segment of the same word whose peak lies within `min_gap` seconds of
    the last emitted one is dropped too (two peaks of one word split by a brief dip).
  * A window that could not be scored (no face) ends any segment.
"""

import dataclasses

import numpy as np

from extraction import schema


@dataclasses.dataclass(frozen=True)
class Word:
  """One emitted word."""

  word: str
  time: float  # seconds: the centre of the peak window (the middle of a plateau)
  score: float  # the word's probability at its peak
  emitted_at: float  # stream time (seconds) of the hop that emitted it

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


@dataclasses.dataclass
class _Segment:
  """Consecutive hops whose top word is the same, above the threshold."""

  index: int
  peak: float
  first: float  # time of the first hop at the peak score
  last: float  # time of the last hop at the peak score (a plateau's end)
  emitted: bool = False


class Spotter:
  """The spotting rule, run online: one `step` per scored window, `flush` at the end."""

  def __init__(
    self,
    class_names,
    threshold: float = 0.5,
    min_gap: float = 0.3,
    background: str = schema.BACKGROUND_LABEL,
  ):
    if not 0.0 <= threshold <= 1.0:
      raise ValueError(f'threshold must be a probability in [0, 1], got {threshold}')
    if min_gap < 0:
      raise ValueError(f'min_gap must be >= 0 seconds, got {min_gap}')
    self.class_names = list(class_names)
    self.threshold = threshold
    self.min_gap = min_gap
    self._background = self.class_names.index(background) if background in self.class_names else -1
    self._segment: _Segment | None = None
    self._last_emitted: dict[int, float] = {}  # class -> time of its last emitted word

  def step(self, time: float, emitted_at: float, probabilities) -> list[Word]:
    """Takes the next window's probabilities [C] (None: not scored); returns the words it emits."""
    index, score = -1, 0.0
    if probabilities is not None:
      p = np.asarray(probabilities)
      index = int(np.argmax(p))
      score = float(p[index])
      if index == self._background or score < self.threshold:
        index = -1
    out = []
    segment = self._segment
    if segment is not None and index == segment.index:
      if score > segment.peak:
        segment.peak, segment.first, segment.last = score, time, time
        return out
      if score == segment.peak:
        segment.last = time
        return out
    if segment is not None and not segment.emitted:
      out += self._emit(segment, emitted_at)
    if segment is None or index != segment.index:
      self._segment = None if index < 0 else _Segment(index, score, time, time)
    return out

  def flush(self, emitted_at: float) -> list[Word]:
    """Ends the stream: emits the open segment's word if it has not been emitted."""
    segment, self._segment = self._segment, None
    if segment is None or segment.emitted:
      return []
    return self._emit(segment, emitted_at)

  def _emit(self, segment: _Segment, emitted_at: float) -> list[Word]:
    """Marks the segment emitted; its word unless the same word was emitted within min_gap."""
    segment.emitted = True
    time = 0.5 * (segment.first + segment.last)
    last = self._last_emitted.get(segment.index)
    if last is not None and time - last < self.min_gap:
      return []
    self._last_emitted[segment.index] = time
    return [Word(self.class_names[segment.index], time, segment.peak, emitted_at)]


def spot(
  times,
  probabilities,
  class_names,
  threshold: float = 0.5,
  min_gap: float = 0.3,
  emitted_at=None,
) -> list[Word]:
  """The words a Spotter emits over a whole score sequence.

  times: [H] window centres (s); probabilities: [H, C] (a row of NaN: window not
  scored); emitted_at: [H] stream time at which each hop is scored (default: times).
  """
  times = np.asarray(times, float)
  emitted_at = times if emitted_at is None else np.asarray(emitted_at, float)
  spotter = Spotter(class_names, threshold, min_gap)
  words = []
  for t, e, p in zip(times, emitted_at, np.asarray(probabilities, float)):
    words += spotter.step(float(t), float(e), None if np.isnan(p).any() else p)
  return words + spotter.flush(float(emitted_at[-1]) if len(emitted_at) else 0.0)
