"""Video files -> RGB frames at the data set's frame rate.

`read_window` is what extraction and prediction use: it decodes a video as a
stream and keeps only the frames of the window they need, so memory holds
max_frames frames, not the video (a minute of 1080p is ~22 GB decoded).
`read_frames` decodes everything, for small clips in tests and benchmarks.
"""

import dataclasses
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
  import cv2

  capture = _open(path)
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


@dataclasses.dataclass(frozen=True)
class Window:
  """Consecutive frames of a video at the target rate, and where they sit in it."""

  frames: np.ndarray  # [L, H, W, 3] uint8 RGB, L <= the length asked for
  first: int  # index of frames[0] among the video's frames at the target rate
  source_index: np.ndarray  # [L] each frame's index among the video's own frames
  num_frames: int  # frames of the whole video at the target rate
  source_frames: int  # frames decoded at the video's own rate
  source_fps: float
  resampled: bool  # the video's rate differs from the target rate


def read_window(path: str, target_fps: float, length: int, first_of) -> Window:
  """Decodes a video as a stream; keeps `length` frames at target_fps from `first_of(num_frames)`.

  `first_of` maps the video's frame count at target_fps to the window's first
  frame (it may be called again if the container's frame count was wrong). Only
  the window's frames are converted and held, whatever the video's length.
  Errors are VideoErrors naming the file, ending with FFmpeg's reason if it gave one.
  """
  if not os.path.isfile(path):
    raise VideoError(f'{path}: no such video file')
  log = []
  try:
    with native_stderr.captured(log):
      return _read_window(path, target_fps, length, first_of)
  except VideoError as error:
    detail = native_stderr.decoder_messages(log[0])
    if detail:
      raise VideoError(f'{error}; the decoder says: {detail}') from error
    raise


def _read_window(path: str, target_fps: float, length: int, first_of) -> Window:
  """read_window without its stderr handling."""
  import cv2

  capture = _open(path)
  fps = float(capture.get(cv2.CAP_PROP_FPS))
  has_rate = np.isfinite(fps) and fps > 0
  total = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)  # the container's claim, checked below
  for _ in range(3):  # the claim, else the count the first pass decoded (else give up)
    index = (
      resample_indices(total, fps, target_fps) if total and has_rate else np.zeros(0, np.int64)
    )
    first = first_of(len(index)) if len(index) else 0
    frames, decoded = _scan(path, capture or _open(path), index[first : first + length])
    capture = None
    if not decoded:
      raise VideoError(f'{path}: no decodable frames (empty or corrupt video)')
    if not has_rate:
      raise VideoError(f'{path}: the container reports no frame rate')
    if decoded == total:
      return Window(
        frames=frames,
        first=first,
        source_index=index[first : first + len(frames)],
        num_frames=len(index),
        source_frames=decoded,
        source_fps=fps,
        resampled=not np.array_equal(index, np.arange(len(index))),
      )
    total = decoded
  raise VideoError(f'{path}: decodes to a different number of frames on every pass')


def _open(path: str):
  """An OpenCV capture of a video file, or VideoError."""
  import cv2

  # One decoding thread: extraction runs one worker per core, and FFmpeg's own threads
  # only add CPU per frame once every core is busy with a worker.
  capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
  if not capture.isOpened():
    raise VideoError(f'{path}: OpenCV cannot open it (not a video, or an unsupported codec)')
  return capture


def _scan(path: str, capture, wanted: np.ndarray) -> tuple[np.ndarray | None, int]:
  """Decodes every frame, converting the wanted ones (source indices, in window order) into one array.

  Returns (window [len(wanted), H, W, 3] RGB, or None if no frame was wanted, and the frames
  decoded). Each wanted frame is converted straight into its row: the window is held once.
  """
  import cv2

  rows = {}  # source frame -> the window's rows showing it (several when upsampling)
  for row, source in enumerate(wanted.tolist()):
    rows.setdefault(source, []).append(row)
  window, position = None, 0
  try:
    while capture.grab():
      if position in rows:
        ok, frame = capture.retrieve()
        if not ok:
          break
        if window is None:
          window = np.empty((len(wanted),) + frame.shape, np.uint8)  # [L, H, W, 3]
        if frame.shape != window.shape[1:]:
          raise VideoError(
            f'{path}: frame {position} is {frame.shape[1]}x{frame.shape[0]}, '
            f'earlier ones {window.shape[2]}x{window.shape[1]}'
          )
        first, *repeats = rows[position]
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=window[first])
        for row in repeats:
          window[row] = window[first]
      position += 1
  finally:
    capture.release()
  return window, position


def resample_indices(num_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
  """Frame indices that resample a clip to target_fps by nearest frame (identity if equal)."""
  if abs(source_fps - target_fps) <= 1e-3 * target_fps:
    return np.arange(num_frames)
  duration = num_frames / source_fps
  count = max(1, int(round(duration * target_fps)))
  times = (np.arange(count) + 0.5) / target_fps  # frame centres
  return np.clip(np.floor(times * source_fps).astype(np.int64), 0, num_frames - 1)
