"""A contact sheet PNG: frames of synthetic clips from several speakers and words.

Each row is one clip (every `step`-th frame); frames inside the transcript's
speech interval get a green border, silence a grey one, so the picture shows
both that the mouths move and that they move when the transcript says so.
"""

import cv2
import numpy as np

from extraction.synthetic import dataset
from extraction.synthetic import render

_TILE = 128  # pixels per frame on the sheet
_LABEL_W = 150


def _tile(frame: np.ndarray, speaking: bool) -> np.ndarray:
  """One downscaled frame with a border saying speech (green) or silence (grey)."""
  tile = cv2.resize(frame, (_TILE, _TILE), interpolation=cv2.INTER_AREA)
  color = (60, 200, 60) if speaking else (150, 150, 150)
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


def make_sheet(
  settings: dataset.Settings, faces_dir: str | None, rows: int, step: int
) -> np.ndarray:
  """Renders `rows` clips cycling through speakers and words; returns the sheet (BGR)."""
  identities, _, _ = dataset.build_identities(settings, faces_dir)
  lines = []
  for row in range(rows):
    identity = identities[(row * max(1, len(identities) // rows + 1)) % len(identities)]
    word = settings.words[row % len(settings.words)].upper()
    renderer = render.FrameRenderer(identity.image, identity.landmarks)
    clip = dataset.render_clip(
      renderer, identity, word, settings, dataset.clip_rng(settings, word, identity.speaker, 0)
    )
    times = np.arange(settings.num_frames) / settings.fps
    speaking = (times >= clip.start) & (times < clip.end)
    cells = [_label([word, identity.speaker, f'{clip.start:.2f}-{clip.end:.2f} s'])]
    cells += [_tile(clip.frames[t], speaking[t]) for t in range(0, settings.num_frames, step)]
    lines.append(np.hstack(cells))
  return np.vstack(lines)


def write_sheet(path: str, sheet: np.ndarray) -> None:
  """Writes the sheet as PNG (OSError naming the file on failure)."""
  if not cv2.imwrite(path, sheet):
    raise OSError(f'{path}: OpenCV could not write the PNG (does the folder exist?)')
