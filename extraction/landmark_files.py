"""Landmarks found elsewhere, read from a file beside each video instead of running FaceMesh.

`VIDEO.landmarks.npy` (VIDEO is the video's path without its extension): float
[N, 468, 2 or 3], FaceMesh's 468-point layout in pixels of the video's own frames
(z, if given, scaled like x; missing, it is 0), one row per decoded frame at the
video's own rate, a row of NaN where no face was found. Extraction with
`--landmarks file` takes its frames from here (the video is still read for its
frame count, rate and the window around the speech); the synthetic generator's
`--save_landmarks` writes where it put every landmark, so a set can be extracted
from the landmarks it was rendered with (experiments/README.md: how much FaceMesh
costs).
"""

import os

import numpy as np

from extraction import roi

SUFFIX = '.landmarks.npy'


def path_for(video_path: str) -> str:
  """The landmark file beside a video."""
  return os.path.splitext(video_path)[0] + SUFFIX


def _is_layout(points: np.ndarray) -> bool:
  """True for [frames, 468, 2 or 3]: the file's layout."""
  return (
    points.ndim == 3 and points.shape[1] == roi.NUM_FACEMESH_LANDMARKS and points.shape[2] in (2, 3)
  )


def write(video_path: str, points: np.ndarray) -> str:
  """Writes a video's landmarks [N, 468, 2 or 3] (pixels; NaN: no face) beside it."""
  points = np.asarray(points, np.float32)
  if not _is_layout(points):
    raise ValueError(
      f'{video_path}: landmarks must be [frames, {roi.NUM_FACEMESH_LANDMARKS}, 2 or 3], '
      f'got {points.shape}'
    )
  path = path_for(video_path)
  tmp = path + '.incomplete.npy'
  np.save(tmp, points)
  os.replace(tmp, path)
  return path


class LandmarkFileError(ValueError):
  """A landmark file that is missing or does not fit its video; the message names it."""


def read(
  video_path: str, source_index: np.ndarray, video_frames: int
) -> tuple[np.ndarray, np.ndarray]:
  """The landmarks of a window of a video's frames -> (points [L, 468, 3] pixels, detected [L]).

  source_index: the window's frames as indices among the video's own frames;
  video_frames: how many frames the video decodes to (the file must have as many rows).
  """
  path = path_for(video_path)
  if not os.path.isfile(path):
    raise LandmarkFileError(f'{path}: no landmark file beside {video_path} (--landmarks file)')
  try:
    points = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as error:
    raise LandmarkFileError(f'{path}: not a readable .npy file ({error})') from error
  expected = f'[{video_frames}, {roi.NUM_FACEMESH_LANDMARKS}, 2 or 3]'
  if not _is_layout(points) or not np.issubdtype(points.dtype, np.floating):
    raise LandmarkFileError(
      f'{path}: landmarks must be float {expected}, got {points.dtype} {points.shape}'
    )
  if len(points) != video_frames:
    raise LandmarkFileError(
      f'{path}: {len(points)} rows of landmarks but {video_path} has {video_frames} frames'
    )
  window = points[np.asarray(source_index)].astype(np.float32)
  known = np.isfinite(window)
  finite = known.all(axis=(1, 2))
  partial = known.any(axis=(1, 2)) & ~finite
  if partial.any():
    raise LandmarkFileError(
      f'{path}: frame {int(source_index[np.flatnonzero(partial)[0]])} has some landmarks NaN '
      'and others not (a frame without a face is a row of NaN)'
    )
  window[~finite] = 0.0
  if window.shape[2] == 2:
    window = np.concatenate([window, np.zeros(window.shape[:2] + (1,), np.float32)], axis=-1)
  return window, finite
