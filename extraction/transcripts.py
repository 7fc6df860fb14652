"""Transcripts -> the word and its speech interval -> a per-frame speech mask.

Two text formats, one `Key: value` per line (keys case-insensitive):

LRW (the word sits centred in the clip; its duration is given):
    Text:  ABOUT
    Conf:  4
    Duration: 0.420000 seconds

Start/end (seconds from the clip's first frame; several Start/End pairs may
follow each other for several speech intervals):
    Text: ABOUT
    Start: 0.36
    End: 0.78

LRS2/LRS3 (a sentence; after a blank line, a table of each word's start and
end in seconds from the clip's first frame; ASDSCORE, the audio-visual sync
score, is optional and ignored):
    Text: THE WHOLE SENTENCE
    Conf: 4

    WORD START END ASDSCORE
    THE 0.12 0.40 1.0
    WHOLE 0.40 0.71 1.0

The table's words become `Transcript.words`; without Duration or Start/End, the
words' intervals are the speech intervals. After a blank line, anything but such
a table is ignored. A CSV manifest's start/end columns give an interval without
a file.
"""

import dataclasses
import re

import numpy as np


class TranscriptError(Exception):
  """A malformed transcript; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class Transcript:
  """The spoken word and either its speech intervals or its centred duration."""

  text: str | None
  intervals: tuple[tuple[float, float], ...] = ()
  centred_duration: float | None = None  # LRW: word of this length centred in the clip
  words: tuple[tuple[str, float, float], ...] = ()  # LRS2/LRS3 table: (word, start, end)

  def speech_intervals(self, clip_seconds: float) -> tuple[tuple[float, float], ...]:
    """Returns the speech intervals in seconds for a clip of the given length."""
    if self.centred_duration is not None:
      start = max(0.0, 0.5 * (clip_seconds - self.centred_duration))
      return ((start, min(clip_seconds, start + self.centred_duration)),)
    return self.intervals


_LINE = re.compile(r'^\s*([A-Za-z]+)\s*:\s*(.*?)\s*$')
_TABLE_HEADER = re.compile(r'^\s*WORD\s+START\s+END(\s+ASDSCORE)?\s*$', re.IGNORECASE)
_SECONDS = re.compile(r'^([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:s|sec|secs|seconds)?$')


def _seconds(value: str, where: str) -> float:
  match = _SECONDS.match(value)
  if not match:
    raise TranscriptError(f'{where}: expected a time in seconds, found {value!r}')
  return float(match.group(1))


def _word_row(line: str, where: str) -> tuple[str, float, float]:
  """One row of an LRS2/LRS3 word table: WORD START END [ASDSCORE]."""
  fields = line.split()
  if len(fields) not in (3, 4):
    raise TranscriptError(f'{where}: expected "WORD START END [ASDSCORE]", found {line.strip()!r}')
  start, end = _seconds(fields[1], where), _seconds(fields[2], where)
  if end < start:
    raise TranscriptError(
      f'{where}: word {fields[0]!r} ends at {end} s, before its start at {start} s'
    )
  return fields[0].upper(), start, end


def _word_table(lines, first_number: int, source: str) -> tuple[tuple[str, float, float], ...]:
  """The word table after a transcript's blank line, if its first line is the header, else ()."""
  rows, header_seen = [], False
  for number, line in enumerate(lines, start=first_number):
    if not line.strip():
      continue
    if not header_seen:
      if not _TABLE_HEADER.match(line):
        return ()  # not a word table: ignored, as before word tables were read
      header_seen = True
      continue
    rows.append(_word_row(line, f'{source}:{number}'))
  return tuple(rows)


def parse(text: str, source: str = '<transcript>') -> Transcript:
  """Parses LRW, start/end or LRS2/LRS3 transcript text; errors name source and line number."""
  word, duration, starts, ends, words = None, None, [], [], ()
  lines = text.splitlines()
  for number, line in enumerate(lines, start=1):
    where = f'{source}:{number}'
    if not line.strip():
      if word is not None:
        words = _word_table(lines[number:], number + 1, source)
        break
      continue
    match = _LINE.match(line)
    if not match:
      raise TranscriptError(f'{where}: expected "Key: value", found {line.strip()!r}')
    key, value = match.group(1).lower(), match.group(2)
    if key == 'text':
      if not value:
        raise TranscriptError(f'{where}: empty Text')
      word = value.upper()
    elif key == 'duration':
      duration = _seconds(value, where)
    elif key == 'start':
      if len(starts) != len(ends):
        raise TranscriptError(f'{where}: Start without a preceding End')
      starts.append(_seconds(value, where))
    elif key == 'end':
      if len(ends) + 1 != len(starts):
        raise TranscriptError(f'{where}: End without a preceding Start')
      ends.append(_seconds(value, where))
      if ends[-1] <= starts[-1]:
        raise TranscriptError(f'{where}: End {ends[-1]} is not after Start {starts[-1]}')
    elif key in ('conf', 'confidence', 'speaker'):
      pass
    else:
      raise TranscriptError(f'{where}: unknown key {match.group(1)!r}')
  if len(starts) != len(ends):
    raise TranscriptError(f'{source}: Start without End')
  if duration is not None and starts:
    raise TranscriptError(f'{source}: both Duration and Start/End given')
  intervals = tuple(zip(starts, ends))
  if duration is None and not starts:
    if not words:
      raise TranscriptError(
        f'{source}: no Duration, no Start/End and no word table; cannot place the speech'
      )
    intervals = tuple((start, end) for _, start, end in words)
  return Transcript(text=word, intervals=intervals, centred_duration=duration, words=words)


def read(path: str) -> Transcript:
  """Reads and parses a transcript file."""
  try:
    with open(path, encoding='utf-8') as f:
      content = f.read()
  except (OSError, UnicodeDecodeError) as error:
    raise TranscriptError(f'{path}: cannot read transcript ({error})') from error
  return parse(content, source=path)


def speech_mask(intervals, num_frames: int, fps: float) -> np.ndarray:
  """1 for frames whose centre lies in any interval [start, end] (seconds).  # [T] uint8"""
  centres = (np.arange(num_frames) + 0.5) / fps
  mask = np.zeros(num_frames, bool)
  for start, end in intervals:
    mask |= (centres >= start) & (centres <= end)
  return mask.astype(np.uint8)
