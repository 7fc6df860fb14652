"""A contact sheet PNG: frames of synthetic clips from several speakers and words.

Each row is one clip (every `step`-th frame); frames inside the transcript's
speech interval get a green border, silence a grey one, so the picture shows
both that the mouths move and that they move when the transcript says so. In
windows cut from running speech (--context-words K > 0), frames of the context
words get a blue border: green is the centred word only.
"""

import cv2
import numpy as np

from extraction.synthetic import dataset
from extraction.synthetic import lexicon as lexicon_lib
from extraction.synthetic import running

_TILE = 128  # pixels per frame on the sheet
_LABEL_W = 150


_BORDERS = {'word': (60, 200, 60), 'context': (200, 120, 40), 'silence': (150, 150, 150)}  # BGR


def _tile(frame: np.ndarray, kind: str) -> np.ndarray:
  """One downscaled frame with a border saying the clip's word, a context word or silence."""
  tile = cv2.resize(frame, (_TILE, _TILE), interpolation=cv2.INTER_AREA)
  color = _BORDERS[kind]
  cv2.rectangle(tile, (0, 0), (_TILE - 1, _TILE - 1), color, 3)
  return tile


def _label(lines) -> np.ndarray:
  """A white label cell with a few lines of text."""
  cell = np.full((_TILE, _LABEL_W, 3), 255, np.uint8)
  for k, line in enumerate(lines):
    cv2.putText(
      cell, line, (6, 28 + 26 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
    )
  return cell


def frame_kinds(clip: dataset.Clip, fps: float) -> list[str]:
  """Per frame: 'word' inside the clip's word, 'context' inside another word, else 'silence'."""
  times = np.arange(len(clip.frames)) / fps
  kinds = []
  for t in times:
    if clip.start <= t < clip.end:
      kinds.append('word')
    elif any(start <= t < end for _, start, end in clip.words[1:]):
      kinds.append('context')
    else:
      kinds.append('silence')
  return kinds


def make_sheet(
  settings: dataset.Settings,
  faces_dir: str | None,
  rows: int,
  step: int,
  speech: running.RunningSpeech | None = None,
  photo: str | None = None,
  face_model: str | None = None,
) -> np.ndarray:
  """Renders `rows` clips cycling through speakers and words; returns the sheet (BGR).

  photo: only that photo's speakers (one row each, in variant order, while they last).
  face_model: the Face Landmarker's bundle (dataset.build_identities).
  """
  speech = speech or running.RunningSpeech()
  speech.check(settings.num_frames, settings.fps)
  words = [w.upper() for w in settings.words]
  lexicon = (
    lexicon_lib.context_lexicon(words, speech.lexicon_size) if speech.context_words else None
  )
  identities, _, _ = dataset.build_identities(settings, faces_dir, face_model)
  if photo is not None:
    identities = [i for i in identities if i.source == photo]
    if not identities:
      raise ValueError(f'no speaker of a photo named {photo!r} (a photo name without -VARIANT)')
  lines = []
  for row in range(rows):
    if photo is not None:
      identity = identities[row % len(identities)]
    else:
      identity = identities[(row * max(1, len(identities) // rows + 1)) % len(identities)]
    word = words[row % len(words)]
    renderer = dataset.make_renderer(identity, settings.lip_paint)
    rng = dataset.clip_rng(settings, word, identity.speaker, 0)
    if speech.context_words:
      clip = dataset.render_window(renderer, identity, word, settings, speech, lexicon, rng)
    else:
      clip = dataset.render_clip(renderer, identity, word, settings, rng)
    kinds = frame_kinds(clip, settings.fps)
    cells = [_label([word, identity.speaker, f'{clip.start:.2f}-{clip.end:.2f} s'])]
    cells += [_tile(clip.frames[t], kinds[t]) for t in range(0, settings.num_frames, step)]
    lines.append(np.hstack(cells))
  return np.vstack(lines)


def write_sheet(path: str, sheet: np.ndarray) -> None:
  """Writes the sheet as PNG (OSError naming the file on failure)."""
  if not cv2.imwrite(path, sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
    raise OSError(f'{path}: OpenCV could not write the PNG (does the folder exist?)')
