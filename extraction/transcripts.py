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

Blank lines and LRW's optional word-timing table after a blank line are ignored.
A CSV manifest's start/end columns give the same interval without a file.
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

  def speech_intervals(self, clip_seconds: float) -> tuple[tuple[float, float], ...]:
    """Returns the speech intervals in seconds for a clip of the given length."""
    if self.centred_duration is not None:
      start = max(0.0, 0.5 * (clip_seconds - self.centred_duration))
      return ((start, min(clip_seconds, start + self.centred_duration)),)
    return self.intervals


_LINE = re.compile(r'^\s*([A-Za-z]+)\s*:\s*(.*?)\s*$')
_SECONDS = re.compile(r'^([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:s|sec|secs|seconds)?$')


def _seconds(value: str, where: str) -> float:
  match = _SECONDS.match(value)
  if not match:
    raise TranscriptError(f'{where}: expected a time in seconds, found {value!r}')
  return float(match.group(1))


def parse(text: str, source: str = '<transcript>') -> Transcript:
  """Parses LRW or start/end transcript text; errors name source and line number."""
  word, duration, starts, ends = None, None, [], []
  for number, line in enumerate(text.splitlines(), start=1):
    where = f'{source}:{number}'
    if not line.strip():
      if word is not None:
        break  # LRW appends a word-timing table after a blank line
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
  if duration is None and not starts:
    raise TranscriptError(f'{source}: no Duration and no Start/End; cannot place the speech')
  return Transcript(text=word, intervals=tuple(zip(starts, ends)), centred_duration=duration)


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
