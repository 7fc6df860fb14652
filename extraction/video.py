"""Video files -> RGB frames at the data set's frame rate."""

import os

import numpy as np

from extraction import native_stderr


class VideoError(Exception):
  """A video that cannot be used; the message names the file and the problem."""


def read_frames(path: str) -> tuple[np.ndarray, float]:
  """Decodes every frame of a video; returns (frames [T, H, W, 3] uint8 RGB, fps).

  FFmpeg's and OpenCV's messages stay off the terminal; when the video cannot be
  used, FFmpeg's reason (e.g. `moov atom not found`) ends the VideoError's message.
  """
  if not os.path.isfile(path):
    raise VideoError(f'{path}: no such video file')
  log = []
  try:
    with native_stderr.captured(log):
      return _decode(path)
  except VideoError as error:
    detail = native_stderr.decoder_messages(log[0])
    if detail:
      raise VideoError(f'{error}; the decoder says: {detail}') from error
    raise


def _decode(path: str) -> tuple[np.ndarray, float]:
  """read_frames without its stderr handling."""
  import cv2  # pylint: disable=g-import-not-at-top
  # One decoding thread: extraction runs one worker per core, and FFmpeg's own threads
  # cost ~30% more CPU per frame on small clips for no gain once the cores are busy.
  capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
  if not capture.isOpened():
    raise VideoError(f'{path}: OpenCV cannot open it (not a video, or an unsupported codec)')
  fps = float(capture.get(cv2.CAP_PROP_FPS))
  frames = []
  try:
    while True:
      ok, frame = capture.read()
      if not ok:
        break
      frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
  finally:
    capture.release()
  if not frames:
    raise VideoError(f'{path}: no decodable frames (empty or corrupt video)')
  if not np.isfinite(fps) or fps <= 0:
    raise VideoError(f'{path}: the container reports no frame rate')
  return np.stack(frames), fps


def resample_indices(num_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
  """Frame indices that resample a clip to target_fps by nearest frame (identity if equal)."""
  if abs(source_fps - target_fps) <= 1e-3 * target_fps:
    return np.arange(num_frames)
  duration = num_frames / source_fps
  count = max(1, int(round(duration * target_fps)))
  times = (np.arange(count) + 0.5) / target_fps  # frame centres
  return np.clip(np.floor(times * source_fps).astype(np.int64), 0, num_frames - 1)
