"""Video files -> RGB frames at the data set's frame rate.

`read_span` is what extraction uses: it decodes a video once as a stream and hands
each frame of the span it needs to a callback (the face tracker), so memory holds
one frame, not the video (a minute of 1080p is ~22 GB decoded), however many word
windows the span serves. `read_window` keeps a window's frames, for prediction and tests.
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
class Span:
  """Where a stretch of consecutive frames at the target rate sits in its video."""

  first: int  # index of the span's first frame among the video's frames at the target rate
  source_index: np.ndarray  # [L] each frame's index among the video's own frames
  num_frames: int  # frames of the whole video at the target rate
  source_frames: int  # frames decoded at the video's own rate
  source_fps: float
  resampled: bool  # the video's rate differs from the target rate


@dataclasses.dataclass(frozen=True)
class Window(Span):
  """A span of a video with its frames."""

  frames: np.ndarray | None = None  # [L, H, W, 3] uint8 RGB, L <= the length asked for


def read_window(path: str, target_fps: float, length: int, first_of) -> Window:
  """Decodes a video as a stream; keeps `length` frames at target_fps from `first_of(num_frames)`.

  `first_of` maps the video's frame count at target_fps to the window's first
  frame (it may be called again if the container's frame count was wrong). Only
  the window's frames are converted and held, whatever the video's length.
  Errors are VideoErrors naming the file, ending with FFmpeg's reason if it gave one.
  """
  held = {'frames': None, 'rows': 0, 'length': 0}

  def keep(row: int, frame: np.ndarray) -> None:
    if row == 0:  # the first frame, again if the container miscounted and the video is reread
      held['frames'] = np.empty((held['length'],) + frame.shape, np.uint8)  # [L, H, W, 3]
    held['frames'][row] = frame  # straight into its row: the window is held once
    held['rows'] = row + 1

  def span_of(num_frames: int) -> tuple[int, int]:
    first = first_of(num_frames)
    held['length'] = max(0, min(first + length, num_frames) - max(first, 0))
    return first, first + length

  span = read_span(path, target_fps, span_of, keep)
  frames = None if held['frames'] is None else held['frames'][: held['rows']]
  return Window(**{f.name: getattr(span, f.name) for f in dataclasses.fields(Span)}, frames=frames)


def read_span(path: str, target_fps: float, span_of, visit=None) -> Span:
  """Decodes a video once as a stream, handing each frame of a span at target_fps to `visit`.

  `span_of(num_frames)` gives the span [first, stop) among the video's frames at
  target_fps (clamped to the video); `visit(row, frame)` gets each of its frames in
  order (row 0 first, frame [H, W, 3] uint8 RGB, a new array each time), so a caller
  can track a face through the frames without holding them. If the container's frame
  count was wrong the video is read again with the true count: span_of is called
  again and the visits start again at row 0. visit None: no frame is converted (the
  caller needs only the span's place, e.g. landmarks read from a file).
  """
  if not os.path.isfile(path):
    raise VideoError(f'{path}: no such video file')
  log = []
  try:
    with native_stderr.captured(log):
      return _read_span(path, target_fps, span_of, visit)
  except VideoError as error:
    detail = native_stderr.decoder_messages(log[0])
    if detail:
      raise VideoError(f'{error}; the decoder says: {detail}') from error
    raise


def _read_span(path: str, target_fps: float, span_of, visit) -> Span:
  """read_span without its stderr handling."""
  import cv2

  capture = _open(path)
  fps = float(capture.get(cv2.CAP_PROP_FPS))
  has_rate = np.isfinite(fps) and fps > 0
  total = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)  # the container's claim, checked below
  for _ in range(3):  # the claim, else the count the first pass decoded (else give up)
    index = (
      resample_indices(total, fps, target_fps) if total and has_rate else np.zeros(0, np.int64)
    )
    first, stop = span_of(len(index)) if len(index) else (0, 0)
    first, stop = max(first, 0), min(stop, len(index))
    wanted = index[first:stop] if stop > first else index[:0]
    decoded = _scan(path, capture or _open(path), wanted, visit)
    capture = None
    if not decoded:
      raise VideoError(f'{path}: no decodable frames (empty or corrupt video)')
    if not has_rate:
      raise VideoError(f'{path}: the container reports no frame rate')
    if decoded == total:
      return Span(
        first=first,
        source_index=wanted,
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


def _scan(path: str, capture, wanted: np.ndarray, visit) -> int:
  """Decodes every frame, handing the wanted ones (source indices, in row order) to visit(row, frame).

  Returns the number of frames decoded. A source frame wanted by several rows (upsampling)
  is converted once and handed to each of them. visit None: nothing is converted.
  """
  import cv2

  rows = {}  # source frame -> the span's rows showing it (several when upsampling)
  if visit is not None:
    for row, source in enumerate(wanted.tolist()):
      rows.setdefault(source, []).append(row)
  shape, position = None, 0
  try:
    while capture.grab():
      if position in rows:
        ok, frame = capture.retrieve()
        if not ok:
          break
        if shape is None:
          shape = frame.shape
        if frame.shape != shape:
          raise VideoError(
            f'{path}: frame {position} is {frame.shape[1]}x{frame.shape[0]}, '
            f'earlier ones {shape[1]}x{shape[0]}'
          )
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        for row in rows[position]:
          visit(row, rgb)
      position += 1
  finally:
    capture.release()
  return position


def resample_indices(num_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
  """Frame indices that resample a clip to target_fps by nearest frame (identity if equal)."""
  if abs(source_fps - target_fps) <= 1e-3 * target_fps:
    return np.arange(num_frames)
  duration = num_frames / source_fps
  count = max(1, int(round(duration * target_fps)))
  times = (np.arange(count) + 0.5) / target_fps  # frame centres
  return np.clip(np.floor(times * source_fps).astype(np.int64), 0, num_frames - 1)
