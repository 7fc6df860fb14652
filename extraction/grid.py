"""The GRID audiovisual sentence corpus (Cooke, Barker, Cunningham and Shao, 2006) -> clips.

GRID: 34 speakers x 1,000 six-word sentences of one grammar ("bin blue at f two now":
command, colour, preposition, letter, digit, adverb; 51 words), 25 fps video, and an
`.align` file of word timings per video. Layouts recognised, as the corpus is
distributed and as copies of it hold it (anywhere under the input folder):
  videos      SPEAKER/NAME.mpg (also SPEAKER/video/mpg_6000/NAME.mpg; any video extension)
  alignments  alignments/SPEAKER/NAME.align (Zenodo's alignments.zip), SPEAKER/align/NAME.align
              (the corpus site's SPEAKER.tar unpacked in the speaker's folder), beside the video,
              or align/NAME.align in no speaker's folder when one speaker has that NAME
A file's speaker is the nearest folder below the input named like GRID's (`s1` .. `s34`),
else the folder holding it (the generator's speakers). NAME spells the sentence, one
character a word (`bbaf2n`: bin blue at f two now; `z` is zero), which is how a video and
its alignment are paired and checked against each other.

An `.align` line is `START END WORD`, times in 1/25,000 s (1,000 a frame at 25 fps);
`sil` and `sp` are silence, not words.

Examples (`Options.examples`):
  words      each word an example, LRW's shape: a window centred on the word, the word's
             frames the speech mask, label the word (51 classes); id VIDEO@START-END
  sentences  each video an example: the whole utterance, its text, the words' span the
             speech mask (for the sentence reader)
Splits (`Options.split_by`):
  sentence   within each speaker, a seeded share of the sentences to val and to test
             (every word of a sentence in one split): speaker-dependent
  speaker    held-out speakers (LipNet's s1, s2, s20, s22, say) to test, and to val if
             named; else val is a seeded share of the training speakers' sentences
"""

import dataclasses
import os
import re
import zlib

import numpy as np

from extraction import sources

COMMANDS = ('bin', 'lay', 'place', 'set')
COLOURS = ('blue', 'green', 'red', 'white')
PREPOSITIONS = ('at', 'by', 'in', 'with')
LETTERS = tuple('abcdefghijklmnopqrstuvxyz')  # no w: it is the only two-syllable letter name
DIGITS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
ADVERBS = ('again', 'now', 'please', 'soon')
# The grammar: one word of each slot, in this order.
SLOTS = ('command', 'colour', 'preposition', 'letter', 'digit', 'adverb')
GRAMMAR = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
WORDS = tuple(word for slot in GRAMMAR for word in slot)  # the 51 words
SILENCES = ('sil', 'sp')
UNITS_PER_SECOND = 25_000  # .align times
FPS = 25.0
FRAMES = 75  # a GRID video: 3 s at 25 fps

SPLITS_BY = ('sentence', 'speaker')
EXAMPLES = ('words', 'sentences')
_SPEAKER = re.compile(r'^s\d+$')
_DIGIT_CODES = {'zero': 'z', **{word: str(k) for k, word in enumerate(DIGITS) if k}}
# A sentence's name: a character per slot, a word's initial (the letter itself; a digit's code).
_NAME = re.compile(
  ''.join(
    f'[{"".join(sorted({_DIGIT_CODES.get(word, word[0]) for word in slot}))}]' for slot in GRAMMAR
  )
  + '$'
)


class AlignError(ValueError):
  """An .align file that cannot be read or does not fit GRID; the message names the file."""


@dataclasses.dataclass(frozen=True)
class Options:
  """How a GRID folder becomes examples: which, and in which splits."""

  examples: str = 'words'  # EXAMPLES
  split_by: str = 'sentence'  # SPLITS_BY
  seed: int = 0
  val_fraction: float = 0.1
  test_fraction: float = 0.1
  test_speakers: tuple[str, ...] = ()  # split_by='speaker'
  val_speakers: tuple[str, ...] = ()

  def problems(self) -> list[tuple[str, str]]:
    """(option, what is wrong) for each unusable value."""
    checks = [
      ('examples', self.examples in EXAMPLES, f'must be one of {EXAMPLES}'),
      ('split_by', self.split_by in SPLITS_BY, f'must be one of {SPLITS_BY}'),
      ('val_fraction', 0 <= self.val_fraction < 1, 'must be in [0, 1)'),
      ('test_fraction', 0 <= self.test_fraction < 1, 'must be in [0, 1)'),
      (
        'val_fraction',
        self.val_fraction + self.test_fraction < 1,
        f'with test_fraction {self.test_fraction} leaves no training sentence',
      ),
      (
        'test_speakers',
        self.split_by == 'speaker' or not (self.test_speakers or self.val_speakers),
        'need split_by=speaker (held-out speakers)',
      ),
      (
        'test_speakers',
        self.split_by != 'speaker' or bool(self.test_speakers),
        'must name the held-out speakers with split_by=speaker (e.g. s1,s2,s20,s22)',
      ),
      (
        'val_speakers',
        not set(self.val_speakers) & set(self.test_speakers),
        'must not also be test speakers',
      ),
    ]
    return [
      (name, f'{message}, got {getattr(self, name)!r}') for name, ok, message in checks if not ok
    ]

  def check(self) -> None:
    """Raises ValueError naming every bad option."""
    problems = self.problems()
    if problems:
      raise ValueError('bad GRID options: ' + '; '.join(f'{n} {p}' for n, p in problems))


def sentence_name(words) -> str:
  """GRID's file name of a sentence: a character per word (`bin blue at f two now` -> bbaf2n)."""
  command, colour, preposition, letter, digit, adverb = words
  return f'{command[0]}{colour[0]}{preposition[0]}{letter}{_DIGIT_CODES[digit]}{adverb[0]}'


def sentence_words(name: str) -> tuple[str, ...]:
  """The words a GRID file name spells (`bbaf2n` -> bin blue at f two now)."""
  if not _NAME.match(name):
    raise ValueError(f'{name!r} is not a GRID sentence name (like bbaf2n)')
  return tuple(
    next(word for word in slot if _DIGIT_CODES.get(word, word[0]) == code)
    for code, slot in zip(name, GRAMMAR)
  )


def draw_sentences(count: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
  """`count` different sentences of the grammar, each word drawn uniformly from its slot."""
  drawn, names = [], set()
  while len(drawn) < count:
    words = tuple(slot[rng.integers(len(slot))] for slot in GRAMMAR)
    if sentence_name(words) not in names:
      names.add(sentence_name(words))
      drawn.append(words)
  return drawn


def check_sentence(words, where: str) -> None:
  """Raises AlignError unless words are one word of each slot of GRID's grammar, in order."""
  if len(words) != len(GRAMMAR) or any(w not in slot for w, slot in zip(words, GRAMMAR)):
    raise AlignError(
      f'{where}: words {" ".join(words)!r} are not a GRID sentence '
      f'({" ".join(SLOTS)}, one word of each)'
    )


def read_align(path: str) -> tuple[tuple[str, float, float], ...]:
  """The words of an .align file with their start and end in seconds (silences left out)."""
  try:
    with open(path, encoding='utf-8') as f:
      lines = f.read().splitlines()
  except (OSError, UnicodeDecodeError) as error:
    raise AlignError(f'{path}: cannot read alignment ({error})') from error
  words = []
  for number, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    fields = line.split()
    try:
      start, end = int(fields[0]), int(fields[1])
      word = fields[2].lower()
      if len(fields) != 3:
        raise ValueError
    except (ValueError, IndexError):
      raise AlignError(
        f'{path}:{number}: expected "START END WORD", found {line.strip()!r}'
      ) from None
    if end < start:
      raise AlignError(f'{path}:{number}: {word!r} ends at {end}, before its start at {start}')
    if word not in SILENCES:
      words.append((word, start / UNITS_PER_SECOND, end / UNITS_PER_SECOND))
  check_sentence([w for w, _, _ in words], path)
  return tuple(words)


def align_text(words, duration: float) -> str:
  """An .align file's text: silence, the words (word, start, end in seconds), silence to the end.

  As GRID's: `sil` before and after the sentence, `sp` for a pause between two words.
  """
  units = lambda seconds: int(round(seconds * UNITS_PER_SECOND))
  lines, t = [], 0
  for word, start, end in words:
    if units(start) > t:
      lines.append(f'{t} {units(start)} {"sp" if lines else "sil"}')
    lines.append(f'{units(start)} {units(end)} {word}')
    t = units(end)
  if units(duration) > t:
    lines.append(f'{t} {units(duration)} sil')
  return '\n'.join(lines) + '\n'


def _speaker_of(path: str, root: str) -> str:
  """The speaker of a file: its nearest folder below root named like GRID's, else its folder."""
  folders = os.path.relpath(os.path.dirname(path), root).split(os.sep)
  for folder in reversed(folders):
    if _SPEAKER.match(folder):
      return folder
  return folders[-1] if folders[-1] != os.curdir else os.path.basename(os.path.abspath(root))


def find(root: str) -> tuple[dict, dict]:
  """(speaker, name) -> path, for GRID-named videos and for .align files under root."""
  videos, aligns = {}, {}
  for folder, _, files in os.walk(root):
    for file in files:
      name, ext = os.path.splitext(file)
      if not _NAME.match(name):
        continue
      path = os.path.join(folder, file)
      if ext == '.align':
        aligns[_speaker_of(path, root), name] = path
      elif ext.lower() in sources.VIDEO_EXTENSIONS:
        videos[_speaker_of(path, root), name] = path
  return videos, aligns


def has_alignments(root: str) -> bool:
  """True if a folder holds a GRID-named .align file (GRID's layout)."""
  for _, _, files in os.walk(root):
    if any(f.endswith('.align') and _NAME.match(f[: -len('.align')]) for f in files):
      return True
  return False


def _share(items: list, fraction: float) -> int:
  return int(round(fraction * len(items)))


def _seeded_order(items: list, seed: int, name: str) -> list:
  """items in an order drawn from (seed, name): the same on every machine and run."""
  rng = np.random.default_rng([seed, zlib.crc32(name.encode('utf-8'))])
  return [items[i] for i in rng.permutation(len(items))]


def _split_sentences(names: list[str], options: Options, speaker: str, held: bool) -> dict:
  """name -> split for one speaker's sentences: a seeded share to test (unless held) and to val."""
  order = _seeded_order(sorted(names), options.seed, speaker)
  test = 0 if held else _share(order, options.test_fraction)
  val = _share(order, options.val_fraction)
  return {
    name: 'test' if k < test else 'val' if k < test + val else 'train'
    for k, name in enumerate(order)
  }


def assign_splits(sentences: dict[str, list[str]], options: Options) -> dict[tuple[str, str], str]:
  """(speaker, name) -> split, by sentence within each speaker or by held-out speaker."""
  split_of = {}
  for speaker, names in sorted(sentences.items()):
    if options.split_by == 'sentence':
      by_name = _split_sentences(names, options, speaker, held=False)
    elif speaker in options.test_speakers:
      by_name = dict.fromkeys(names, 'test')
    elif speaker in options.val_speakers:
      by_name = dict.fromkeys(names, 'val')
    elif options.val_speakers:
      by_name = dict.fromkeys(names, 'train')
    else:  # no val speakers named: val is a share of the training speakers' sentences
      by_name = _split_sentences(names, options, speaker, held=True)
    split_of.update({(speaker, name): split for name, split in by_name.items()})
  return split_of


def _unknown_speakers(options: Options, speakers, root: str) -> None:
  named = set(options.test_speakers) | set(options.val_speakers)
  missing = sorted(named - set(speakers))
  if missing:
    raise sources.SourceError(
      f'{root}: speaker(s) {", ".join(missing)} named as held out have no videos here; '
      f'found {", ".join(sorted(speakers, key=_speaker_order))}'
    )


def _speaker_order(speaker: str):
  return (0, int(speaker[1:])) if _SPEAKER.match(speaker) else (1, speaker)


def _video_id(speaker: str, name: str) -> str:
  return f'{speaker}/{name}'


def discover(root: str, options: Options | None = None) -> list[sources.Clip]:
  """The examples of a GRID folder: a clip per word (or per sentence) of each aligned video.

  A video without an alignment, or whose alignment does not spell its name, is a clip
  error (reported, the rest go on); an alignment without a video is ignored (GRID's
  alignments come as one archive for all speakers).
  """
  options = options or Options()
  options.check()
  videos, aligns = find(root)
  if not videos:
    raise sources.SourceError(
      f'{root}: no GRID videos found (SPEAKER/NAME.mpg, NAME like bbaf2n); '
      'for LRW folders or manifests see --help'
    )
  speakers = {speaker for speaker, _ in videos}
  _unknown_speakers(options, speakers, root)
  # Alignments in no speaker's folder (one speaker's align/ archive unpacked at the top):
  # paired with a video by name where only one speaker has that name.
  unclaimed, named = {}, {}
  for speaker, name in aligns:
    if speaker not in speakers:
      unclaimed.setdefault(name, []).append(aligns[speaker, name])
  for speaker, name in videos:
    named.setdefault(name, []).append(speaker)
  for name, paths in unclaimed.items():
    if len(paths) == 1 and len(named.get(name, ())) == 1:
      aligns.setdefault((named[name][0], name), paths[0])
  sentences = {}
  for speaker, name in videos:
    sentences.setdefault(speaker, []).append(name)
  split_of = assign_splits(sentences, options)
  clips = []
  for (speaker, name), video_path in sorted(videos.items()):
    split, video_id = split_of[speaker, name], _video_id(speaker, name)
    align_path = aligns.get((speaker, name))
    try:
      if align_path is None:
        raise AlignError(
          f'{video_path}: no {name}.align for speaker {speaker} under {root} '
          '(GRID alignments: alignments/SPEAKER/NAME.align)'
        )
      words = read_align(align_path)
      spelled = sentence_name([w for w, _, _ in words])
      if spelled != name:
        raise AlignError(
          f'{align_path}: spells {spelled!r} ({" ".join(w for w, _, _ in words)}), '
          f'not its video {video_path}; alignments of another speaker?'
        )
    except AlignError as error:
      clips.append(sources.Clip(video_path, '', split, speaker, video_id, error=str(error)))
      continue
    if options.examples == 'sentences':
      text = ' '.join(w for w, _, _ in words)
      clips.append(
        sources.Clip(
          video_path,
          text.upper(),
          split,
          speaker,
          video_id,
          interval=(words[0][1], words[-1][2]),
          text=text,
        )
      )
      continue
    for word, start, end in words:
      clips.append(
        sources.Clip(
          video_path,
          word.upper(),
          split,
          speaker,
          sources.interval_id(video_id, (start, end)),
          interval=(start, end),
        )
      )
  return clips
