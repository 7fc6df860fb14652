"""Which clips to extract: LRW-style folders, GRID folders or a CSV manifest -> a list of `Clip`s.

LRW-style folder:  DIR/WORD/{train,val,test}/WORD_00001.mp4 (+ WORD_00001.txt)
GRID folder:       speaker folders of videos and .align word timings (extraction/grid.py)
CSV manifest:      header `path,label,split,speaker,start,end` (or `text` in place of
                   `label`: a sentence manifest, each row an utterance); `path` relative to
                   the manifest's folder; empty start/end means "read the .txt
                   transcript beside the video". speaker may be empty. Several
                   rows may name one video (its words): each is an example, keyed
                   by (video, interval), id `VIDEO@START-END`.

A problem with one row or one file becomes that clip's `error` (reported, the
rest goes on); a problem with the whole input (no such folder, a manifest
without the required columns) raises `SourceError`.
"""

import csv
import dataclasses
import os
import unicodedata

from extraction import schema
from extraction import tokens

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.mpg', '.mpeg')
MANIFEST_COLUMNS = ('path', 'label', 'split', 'speaker', 'start', 'end')
# A sentence manifest (the generator's sentences.csv): `text` in place of `label`.
SENTENCE_COLUMNS = ('path', 'text', 'split', 'speaker', 'start', 'end')
UNKNOWN_SPEAKER = 'unknown'


class SourceError(Exception):
  """The input as a whole cannot be read; the message names the file and problem."""


@dataclasses.dataclass(frozen=True)
class Clip:
  """One video to extract, with where its speech interval comes from."""

  video_path: str
  label: str
  split: str
  speaker: str
  video_id: str
  transcript_path: str | None = None
  interval: tuple[float, float] | None = None  # seconds, from a manifest row or an alignment
  error: str | None = None  # set when the row itself is unusable
  text: str | None = None  # a sentence example's words (GRID sentences); None for a word


def _has_control_characters(text: str) -> bool:
  """True if text holds a control character (newline, tab, NUL ...), which no word or name has."""
  return any(unicodedata.category(ch) == 'Cc' for ch in text)


def _transcript_beside(video_path: str) -> str:
  return os.path.splitext(video_path)[0] + '.txt'


def from_lrw_folder(root: str) -> list[Clip]:
  """Finds WORD/SPLIT/*.mp4 clips under an LRW-style folder."""
  clips = []
  for word in sorted(os.listdir(root)):
    word_dir = os.path.join(root, word)
    if not os.path.isdir(word_dir) or word.startswith('.'):
      continue
    for split in sorted(os.listdir(word_dir)):
      split_dir = os.path.join(word_dir, split)
      if not os.path.isdir(split_dir):
        continue
      if split not in schema.SPLITS:
        raise SourceError(f'{split_dir}: split folder must be one of {schema.SPLITS}')
      for name in sorted(os.listdir(split_dir)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in VIDEO_EXTENSIONS:
          continue
        path = os.path.join(split_dir, name)
        error = (
          f'{word_dir}: word folder name {word!r} holds control characters'
          if _has_control_characters(word)
          else None
        )
        clips.append(
          Clip(
            video_path=path,
            label=word.upper(),
            split=split,
            speaker=UNKNOWN_SPEAKER,
            video_id=f'{word}/{split}/{stem}',
            transcript_path=_transcript_beside(path),
            error=error,
          )
        )
  if not clips:
    raise SourceError(f'{root}: no videos found in WORD/{{train,val,test}}/*.mp4 folders')
  return clips


def _row_clip(row: dict, number: int, manifest: str) -> Clip:
  """Turns one manifest row into a Clip (with `error` set if the row is unusable)."""
  base = os.path.dirname(os.path.abspath(manifest))
  raw_path = (row.get('path') or '').strip()
  path = raw_path if os.path.isabs(raw_path) else os.path.join(base, raw_path)
  text = ' '.join((row.get('text') or '').split()).lower() if 'text' in row else None
  label = (row.get('label') or '').strip().upper() if text is None else (text or '').upper()
  split = (row.get('split') or '').strip()
  speaker = (row.get('speaker') or '').strip() or UNKNOWN_SPEAKER
  video_id = os.path.splitext(raw_path)[0] or f'row{number}'
  where = f'{manifest}:{number}'
  clip = Clip(
    video_path=path,
    label=label,
    split=split,
    speaker=speaker,
    video_id=video_id,
    transcript_path=_transcript_beside(path),
    text=text,
  )
  problems = []
  if not raw_path:
    problems.append('empty path')
  if not label:
    problems.append('empty text' if text is not None else 'empty label')
  if text:
    try:
      tokens.encode(text)
    except ValueError as error:
      problems.append(str(error))
  if split not in schema.SPLITS:
    problems.append(f'split {split!r} is not one of {schema.SPLITS}')
  for column, value in (('label', label), ('speaker', speaker)):
    if _has_control_characters(value):
      problems.append(
        f'{column} {value!r} holds control characters (a line break or tab inside a quoted field?)'
      )
  start, end = (row.get('start') or '').strip(), (row.get('end') or '').strip()
  if start or end:
    try:
      interval = (float(start), float(end))
    except ValueError:
      problems.append(f'start/end must be seconds, found {start!r}/{end!r}')
    else:
      if not 0 <= interval[0] < interval[1]:
        problems.append(f'need 0 <= start < end, found {start}/{end}')
      clip = dataclasses.replace(clip, interval=interval, transcript_path=None)
  if problems:
    clip = dataclasses.replace(clip, error=f'{where}: ' + '; '.join(problems))
  return clip


def interval_id(video_id: str, interval: tuple[float, float]) -> str:
  """The id of one interval of a video that holds several examples: `VIDEO@START-END` (seconds)."""
  return f'{video_id}@{interval[0]:g}-{interval[1]:g}'


def _name_intervals(clips: list[Clip], manifest: str) -> list[Clip]:
  """Rows naming one video are examples of its intervals: ids get the interval, repeats an error.

  An example is keyed by (video, interval): a second row with the same video and interval
  (or, without an interval, the same video and its transcript) is a duplicate.
  """
  first_row, usable = {}, {}
  for k, clip in enumerate(clips):
    if clip.error is not None:
      continue
    example = (clip.video_id, clip.interval)
    if example in first_row:
      where = (
        f'interval {clip.interval[0]:g}-{clip.interval[1]:g} s' if clip.interval else 'transcript'
      )
      clips[k] = dataclasses.replace(
        clip,
        error=f'{manifest}: duplicate path {clip.video_id!r} and {where} '
        f'(first at row {first_row[example]})',
      )
      continue
    first_row[example] = k + 2
    usable[clip.video_id] = usable.get(clip.video_id, 0) + 1
  return [
    dataclasses.replace(clip, video_id=interval_id(clip.video_id, clip.interval))
    if clip.error is None and clip.interval and usable[clip.video_id] > 1
    else clip
    for clip in clips
  ]


def from_manifest(path: str) -> list[Clip]:
  """Reads a CSV manifest (path,label,split,speaker,start,end); rows may share a video."""
  try:
    # utf-8-sig: Excel saves CSV with a byte-order mark, which would otherwise glue onto 'path'.
    with open(path, newline='', encoding='utf-8-sig') as f:
      reader = csv.DictReader(f)
      columns = [c.strip() for c in reader.fieldnames or []]
      required = ('path', 'text' if 'text' in columns else 'label', 'split')
      if any(c not in columns for c in required) or {'label', 'text'} <= set(columns):
        raise SourceError(
          f'{path}: manifest header must have columns {MANIFEST_COLUMNS} (words) or '
          f'{SENTENCE_COLUMNS} (sentences), at least {required}; found {columns}'
        )
      rows = [{k.strip(): v for k, v in row.items() if k} for row in reader]
  except (OSError, UnicodeDecodeError, csv.Error) as error:
    raise SourceError(f'{path}: cannot read manifest ({error})') from error
  clips = [_row_clip(row, number, path) for number, row in enumerate(rows, start=2)]
  if not clips:
    raise SourceError(f'{path}: manifest has no rows')
  return _name_intervals(clips, path)


GRID, LRW, MANIFEST = 'grid', 'lrw', 'manifest'


def layout(input_path: str) -> str:
  """What an input is: GRID (a folder with .align files), LRW (a folder) or MANIFEST (a .csv)."""
  from extraction import grid  # grid builds Clips: imported here, not at the top

  if os.path.isdir(input_path):
    if not _is_lrw_folder(input_path) and grid.has_alignments(input_path):
      return GRID
    return LRW
  if os.path.isfile(input_path) and input_path.lower().endswith('.csv'):
    return MANIFEST
  if os.path.exists(input_path):
    raise SourceError(
      f'{input_path}: input must be a folder (LRW or GRID layout) or a .csv manifest'
    )
  raise SourceError(f'{input_path}: no such folder or manifest')


def discover(input_path: str, grid_options=None) -> list[Clip]:
  """The clips of an LRW-style folder, a GRID folder or a .csv manifest, sorted by split/label/id.

  grid_options (extraction.grid.Options): which examples and splits a GRID folder gives;
  refused for other inputs, whose splits are their own.
  """
  from extraction import grid

  kind = layout(input_path)
  if kind == GRID:
    clips = grid.discover(input_path, grid_options)
  elif grid_options is not None and grid_options != grid.Options():
    raise SourceError(
      f'{input_path}: the GRID options (examples, split_by, speakers) apply to a GRID folder '
      '(speaker folders of videos and .align files); this input sets its own splits'
    )
  elif kind == LRW:
    clips = from_lrw_folder(input_path)
  else:
    clips = from_manifest(input_path)
  return sorted(clips, key=lambda c: (c.split, c.label, c.video_id))


def _is_lrw_folder(root: str) -> bool:
  """True if a top-level folder holds a split folder (WORD/train/...): LRW's layout."""
  for word in os.listdir(root):
    word_dir = os.path.join(root, word)
    if os.path.isdir(word_dir) and any(
      os.path.isdir(os.path.join(word_dir, split)) for split in schema.SPLITS
    ):
      return True
  return False
