"""Live lip reading: `python -m lipjax.stream SOURCE (--workdir DIR | --model DIR)`.

SOURCE is a camera index (`0`), a video file, or any URL OpenCV's VideoCapture opens.
Each frame goes through FaceMesh (tracking from frame to frame) and face
normalisation as it arrives (`extraction.clip.face_frame`); a ring buffer keeps
the latest max_frames of them. Every `--hop` frames the window is turned into an
example by the code that turns a clip into one (`extraction.clip.window_arrays`:
smoothing from the window's first frame, frames without a face filled from the
window's others, the same features) and scored; `lipjax.spotting` turns the
scores into timed words. A window is scored only once its last frame has
arrived, so filling inside it looks at no future frame.

Speech mask of a window: a transcript-free window gets a centred speech interval
of `--word_seconds` (default 0.35 s: the median word length of the demo's training
clips, 0.34 s). LRW-style training clips have their word centred with a speech
mask on it and the model pools over the mask, so a centred mask asks "is a word
centred in this window?" and the window centre of the best-scoring window dates
the word; an empty mask (pooling over all 1.16 s) would score any word anywhere
in the window and blur the timing.

A file is read as fast as it can be and the real-time factor (processing time
over video duration) is reported; a camera or URL is read by a thread that keeps
only the newest frame, and frames that arrive while one is processed are dropped
and counted. A dropped frame stays in the time line as a frame without a face
(filled and flagged in face_mask like a FaceMesh miss), so words keep their timing.

Output: one line per emitted word (`12.48s  ABOUT  0.91`) or, with --json, one JSON
object per word; a summary line on stderr at the end.
"""

import collections
import dataclasses
import json
import math
import os
import sys
import threading
import time as time_lib

from absl import app
from absl import flags
from absl import logging
import numpy as np

from extraction import clip as clip_lib
from extraction import schema
from extraction import transcripts
from lipjax import cli
from lipjax import data_source
from lipjax import exported
from lipjax import spotting

FLAGS = flags.FLAGS

DEFAULT_WORD_SECONDS = 0.35


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('workdir', None, 'Training workdir whose best checkpoint scores windows.')
  flags.DEFINE_string('model', None, 'Exported model folder (python -m lipjax.export --out).')
  flags.DEFINE_enum(
    'backend', exported.SAVEDMODEL, exported.BACKENDS, 'With --model: which of its models runs.'
  )
  flags.DEFINE_integer('hop', 2, 'Frames between scored windows.')
  flags.DEFINE_float('threshold', 0.5, 'Lowest peak probability of an emitted word.')
  flags.DEFINE_float(
    'min_gap', 0.3, 'Seconds within which a second peak of the same word is the same word.'
  )
  flags.DEFINE_float(
    'word_seconds', DEFAULT_WORD_SECONDS, 'Length of the centred speech interval of each window.'
  )
  flags.DEFINE_bool('json', False, 'Print one JSON object per word instead of text lines.')
  flags.DEFINE_bool('show', False, 'Draw the mouth graph and the top words in an OpenCV window.')
  flags.DEFINE_string(
    'face_model',
    None,
    "The Face Landmarker's bundle, face_landmarker.task, where the data set was extracted with "
    'it. Default: $LIPJAX_FACE_MODEL, else the user cache, else one checked download.',
  )


# --- the model: a workdir (JAX) or an exported model (TensorFlow), both through predict ---------


def load_predictor(
  workdir: str | None = None, model: str | None = None, backend: str = 'savedmodel'
):
  """lipjax.predict's Predictor of a workdir or an exported model folder (exactly one of them).

  The stream needs its meta, settings and probabilities(examples, batch_size).
  """
  from lipjax import predict
  from lipjax import workdir as workdir_lib

  if (workdir is None) == (model is None):
    raise ValueError('give exactly one of --workdir and --model')
  predictor = (
    predict.Predictor(workdir) if workdir else predict.Predictor.from_export(model, backend)
  )
  # Spotting scores words: a sentence reader has none.
  workdir_lib.require_words(workdir or model, predictor.meta, 'lipjax.stream')
  return predictor


# --- frames: a file as fast as possible, a live source without falling behind ----------------


def open_capture(source: str):
  """(OpenCV capture, live): a camera index or URL is live, an existing file is not."""
  import cv2

  if source.isdigit():
    capture, live = cv2.VideoCapture(int(source)), True
  elif os.path.isfile(source):
    capture, live = cv2.VideoCapture(source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1]), False
  else:
    capture, live = cv2.VideoCapture(source), True
  if not capture.isOpened():
    raise OSError(f'{source}: OpenCV cannot open it (no such camera, file or stream)')
  return capture, live


class Resampler:
  """Maps source frames to the data set's frame rate online, as video.resample_indices does.

  Target frame j shows source frame floor((j + 0.5) / target_fps * source_fps); a rate
  within 0.1% of the target keeps every frame.
  """

  def __init__(self, source_fps: float, target_fps: float):
    self.same = not (math.isfinite(source_fps) and source_fps > 0) or (
      abs(source_fps - target_fps) <= 1e-3 * target_fps
    )
    self._ratio = source_fps / target_fps
    self._next = 0  # the next target frame

  def repeats(self, source_index: int) -> int:
    """How many target frames source frame `source_index` becomes (0: skipped)."""
    if self.same:
      return 1
    count = 0
    while math.floor((self._next + 0.5) * self._ratio) == source_index:
      self._next += 1
      count += 1
    return count


def file_frames(capture, target_fps: float):
  """Yields every frame of a video file (RGB) at the data set's rate."""
  import cv2

  resampler = Resampler(float(capture.get(cv2.CAP_PROP_FPS)), target_fps)
  index = 0
  try:
    while True:
      ok, frame = capture.read()
      if not ok:
        return
      rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
      for _ in range(resampler.repeats(index)):
        yield rgb
      index += 1
  finally:
    capture.release()


class LiveFrames:
  """A thread reading a live source; the consumer takes the newest frame, older ones are dropped.

  Iterating yields a frame (RGB) or None for each frame at the data set's rate that
  arrived while the consumer was busy (a dropped frame), in arrival order.
  """

  def __init__(self, capture, target_fps: float):
    import cv2

    self._resampler = Resampler(float(capture.get(cv2.CAP_PROP_FPS)), target_fps)
    self._capture = capture
    self._slot = None  # (target frames so far, of them the newest frame's, newest BGR frame)
    self._ready = threading.Condition()
    self._done = False
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._read, daemon=True)
    self._thread.start()

  def _read(self):
    """The reader thread: only it touches the capture, and it releases it."""
    index, count = 0, 0
    try:
      while not self._stop.is_set():
        ok, frame = self._capture.read()
        if not ok:
          break
        repeats = self._resampler.repeats(index)
        index += 1
        if not repeats:  # resampled away: not a frame of the time line
          continue
        count += repeats
        with self._ready:
          self._slot = (count, repeats, frame)
          self._ready.notify()
    finally:
      self._capture.release()
      with self._ready:
        self._done = True
        self._ready.notify()

  def __iter__(self):
    import cv2

    taken = 0  # target frames handed out so far (frames and drops)
    try:
      while True:
        with self._ready:
          while self._slot is None or self._slot[0] == taken:
            if self._done:
              return
            self._ready.wait()
          count, repeats, frame = self._slot
        shown = min(repeats, count - taken)  # the newest frame's places not yet handed out
        for _ in range(count - taken - shown):
          yield None
        taken = count
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        for _ in range(shown):
          yield rgb
    finally:
      self._stop.set()
      self._thread.join(timeout=2.0)


# --- windows and spotting ---------------------------------------------------------------------


def parsed_example(arrays: dict, max_frames: int) -> dict:
  """A window's arrays -> the parsed model inputs lipjax.predict feeds the model."""
  example = schema.pad_example(
    **arrays, label=0, speaker='', video_id='stream', max_frames=max_frames
  )
  return data_source.model_example(example)


def centred_speech_mask(max_frames: int, fps: float, word_seconds: float) -> np.ndarray:
  """The speech mask of a transcript-free window: word_seconds centred in it.  # [T] uint8"""
  centre = 0.5 * max_frames / fps
  return transcripts.speech_mask(
    [(centre - 0.5 * word_seconds, centre + 0.5 * word_seconds)], max_frames, fps
  )


@dataclasses.dataclass
class Hop:
  """One scored (or unscorable) window."""

  first: int  # index of the window's first frame at the data set's rate
  centre: float  # seconds: the window's centre
  end: float  # seconds: the end of its last frame (when it can be scored)
  probabilities: np.ndarray | None  # [C]; None: too few frames with a face
  example: dict | None  # the parsed model inputs scored (None when not scored)
  words: list  # spotting.Word emitted at this hop
  seconds: float  # processing time of this hop's scoring (features + model)


class WindowStream:
  """Ring buffer of face-normalised frames; scores every `hop` frames and spots words."""

  def __init__(self, scorer, hop: int, threshold: float, min_gap: float, word_seconds: float):
    if hop < 1:
      raise ValueError(f'--hop must be at least 1 frame, got {hop}')
    if word_seconds <= 0:
      raise ValueError(f'--word_seconds must be positive, got {word_seconds}')
    self.scorer = scorer
    self.meta = scorer.meta
    self.settings = scorer.settings
    self.hop = hop
    self.length = self.meta.max_frames
    self.fps = self.meta.fps
    self.spotter = spotting.Spotter(self.meta.class_names, threshold, min_gap)
    self.speech_mask = centred_speech_mask(self.length, self.fps, word_seconds)
    if not self.speech_mask.any():
      raise ValueError(
        f'--word_seconds {word_seconds:g} covers no frame centre of a '
        f'{self.length}-frame window at {self.fps:g} fps'
      )
    # Compile the model now rather than at the first window (a live source would drop frames).
    empty = {
      'landmarks': np.zeros((self.length, self.meta.num_nodes, 3), np.float32),
      'au': np.zeros((self.length, schema.NUM_AU), np.float32),
      'geometry': np.zeros((self.length, schema.NUM_GEOMETRY), np.float32),
      'face_mask': np.ones(self.length, np.uint8),
      'speech_mask': self.speech_mask,
    }
    scorer.probabilities([parsed_example(empty, self.length)], 1)
    self._faces = collections.deque(maxlen=self.length)  # [468, 3] float32 or None
    self.frames = 0  # frames pushed so far

  def push(self, face: np.ndarray | None) -> Hop | None:
    """Adds the next frame's face-normalised landmarks (None: no face); a Hop when one is due."""
    self._faces.append(face)
    self.frames += 1
    if self.frames < self.length or (self.frames - self.length) % self.hop:
      return None
    return self._score()

  def window(self) -> dict | None:
    """The current window's per-frame arrays (clip extraction's), or None without enough faces."""
    detected = np.array([f is not None for f in self._faces])
    try:
      clip_lib.check_faces('window', detected, self.settings)
    except clip_lib.ClipError:
      return None
    faces = np.zeros(
      (self.length, len(next(f for f in self._faces if f is not None)), 3), np.float32
    )
    for t, face in enumerate(self._faces):
      if face is not None:
        faces[t] = face
    landmarks, au, geometry = clip_lib.window_arrays(faces, detected, self.settings)
    return {
      'landmarks': landmarks,
      'au': au,
      'geometry': geometry,
      'face_mask': detected.astype(np.uint8),
      'speech_mask': self.speech_mask,
    }

  def _score(self) -> Hop:
    started = time_lib.perf_counter()
    first = self.frames - self.length
    centre = (first + 0.5 * self.length) / self.fps
    end = self.frames / self.fps
    arrays = self.window()
    example = probabilities = None
    if arrays is not None:
      example = parsed_example(arrays, self.length)
      probabilities = self.scorer.probabilities([example], 1)[0]
    words = self.spotter.step(centre, end, probabilities)
    return Hop(first, centre, end, probabilities, example, words, time_lib.perf_counter() - started)

  def finish(self) -> list:
    """The words still open when the stream ends."""
    return self.spotter.flush(self.frames / self.fps)


@dataclasses.dataclass
class Summary:
  """What one run of the stream did."""

  frames: int = 0  # at the data set's rate, dropped ones included
  dropped: int = 0
  faces: int = 0  # frames where FaceMesh found a face
  hops: int = 0
  unscored: int = 0  # windows with too few faces
  words: int = 0
  seconds: float = 0.0  # wall time from the first frame to the end
  facemesh_seconds: float = 0.0  # FaceMesh + face normalisation, all frames
  scoring_seconds: float = 0.0  # window features + model, all hops
  live: bool = False
  fps: float = 25.0

  @property
  def duration(self) -> float:
    """Seconds of video."""
    return self.frames / self.fps

  @property
  def real_time_factor(self) -> float:
    """Processing time over video duration (< 1: faster than real time)."""
    return self.seconds / self.duration if self.frames else float('nan')

  def line(self) -> str:
    """The one-line summary printed at the end."""
    text = (
      f'{self.duration:.2f} s of video ({self.frames} frames at {self.fps:g} fps), '
      f'face in {self.faces}, {self.hops} windows scored ({self.unscored} without a face), '
      f'{self.words} words; '
    )
    if self.live:
      return text + f'dropped {self.dropped} frames to keep up with the source'
    return text + (
      f'processed in {self.seconds:.2f} s: real-time factor {self.real_time_factor:.3f} '
      f'({1 / self.real_time_factor:.1f}x real time; FaceMesh '
      f'{1e3 * self.facemesh_seconds / max(self.frames - self.dropped, 1):.1f} ms/frame, '
      f'scoring {1e3 * self.scoring_seconds / max(self.hops, 1):.1f} ms/window)'
    )

  def to_dict(self) -> dict:
    return dict(
      dataclasses.asdict(self), duration=self.duration, real_time_factor=self.real_time_factor
    )


def run(frames, tracker, window: WindowStream, on_hop=None, on_frame=None, summary=None) -> Summary:
  """Feeds frames (RGB arrays, or None for a dropped frame) through FaceMesh and the windows.

  Calls on_hop(hop) for every scored window and on_frame(frame, points, hop or None)
  after each frame; returns the summary (filled in as it goes, so an interrupted run
  still has one). Emitted words are in each hop's `words`; those still open at the
  end come in a last on_hop call (a Hop with no probabilities and first = -1).
  """
  summary = summary or Summary(fps=window.fps)
  started = time_lib.perf_counter()
  for frame in frames:
    summary.seconds = time_lib.perf_counter() - started
    summary.frames += 1
    points = face = None
    if frame is None:
      summary.dropped += 1
    else:
      tick = time_lib.perf_counter()
      points = tracker.track(frame)
      if points is not None:
        face = clip_lib.face_frame(points)
        summary.faces += 1
      summary.facemesh_seconds += time_lib.perf_counter() - tick
    hop = window.push(face)
    if hop is not None:
      summary.hops += 1
      summary.unscored += hop.probabilities is None
      summary.scoring_seconds += hop.seconds
      summary.words += len(hop.words)
      if on_hop:
        on_hop(hop)
    if on_frame and frame is not None:
      on_frame(frame, points, hop)
  last = window.finish()
  summary.words += len(last)
  if on_hop and last:
    end = window.frames / window.fps
    on_hop(Hop(-1, end, end, None, None, last, 0.0))
  summary.seconds = time_lib.perf_counter() - started
  return summary


def spot_file(
  path: str,
  scorer,
  hop: int = 2,
  threshold: float = 0.5,
  min_gap: float = 0.3,
  word_seconds: float = DEFAULT_WORD_SECONDS,
  face_model: str | None = None,
):
  """Runs a video file through the stream in-process; returns (hops, summary).

  face_model: the Face Landmarker's bundle (face_model.resolve), for a landmarker data set.
  """
  from extraction import facemesh

  window = WindowStream(scorer, hop, threshold, min_gap, word_seconds)
  capture, _ = open_capture(path)
  hops = []
  with facemesh.tracker_for_video(scorer.settings, face_model) as tracker:
    summary = run(file_frames(capture, window.fps), tracker, window, on_hop=hops.append)
  return hops, summary


# --- the command line ---------------------------------------------------------------------------


def word_line(word: spotting.Word) -> str:
  """The text line of an emitted word."""
  return f'{word.time:6.2f}s  {word.word}  {word.score:.2f}'


class Display:
  """--show: the frame with the ROI's mouth graph and the latest window's top words."""

  def __init__(self, meta: schema.DatasetMeta, top_k: int = 3):
    self.meta = meta
    self.top_k = top_k
    self.edges = list(zip(meta.senders, meta.receivers))
    self.text: list[str] = []

  def render(self, frame: np.ndarray, points, hop) -> np.ndarray:
    """The frame (BGR) with the mouth graph where FaceMesh found the face and the top words."""
    import cv2

    image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    if points is not None:
      xy = [tuple(int(v) for v in p) for p in np.round(points[self.meta.roi_indices, :2])]
      for s, r in self.edges:
        if s < r:
          cv2.line(image, xy[s], xy[r], (0, 200, 0), 1, cv2.LINE_AA)
      for point in xy:
        cv2.circle(image, point, 1, (0, 0, 255), -1)
    if hop is not None and hop.probabilities is not None:
      order = np.argsort(-hop.probabilities)[: self.top_k]
      self.text = [f'{self.meta.class_names[k]} {hop.probabilities[k]:.2f}' for k in order]
    elif hop is not None:
      self.text = ['(no face)']
    for row, line in enumerate(self.text):
      cv2.putText(image, line, (8, 20 + 18 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1)
    return image

  def draw(self, frame: np.ndarray, points, hop) -> bool:
    """Shows one frame; returns False once the user pressed q or Esc."""
    import cv2

    cv2.imshow('lipjax.stream', self.render(frame, points, hop))
    return cv2.waitKey(1) & 0xFF not in (ord('q'), 27)


class _Stop(Exception):
  """The user closed the --show window."""


def main(argv):
  """Prints words as they are spotted; a summary line on stderr at the end."""
  from extraction import facemesh
  from extraction import native_stderr

  if len(argv) != 2:
    raise app.UsageError('give one SOURCE: a camera index, a video file or a URL')
  source = argv[1]
  logging.set_verbosity(logging.WARNING)
  scorer = load_predictor(FLAGS.workdir, FLAGS.model, FLAGS.backend)
  window = WindowStream(scorer, FLAGS.hop, FLAGS.threshold, FLAGS.min_gap, FLAGS.word_seconds)
  display = Display(scorer.meta) if FLAGS.show else None

  def on_hop(hop):
    for word in hop.words:
      print(json.dumps(word.to_dict()) if FLAGS.json else word_line(word), flush=True)

  def on_frame(frame, points, hop):
    if not display.draw(frame, points, hop):
      raise _Stop

  with native_stderr.silenced():
    capture, live = open_capture(source)
    frames = LiveFrames(capture, window.fps) if live else file_frames(capture, window.fps)
    with facemesh.tracker_for_video(scorer.settings, FLAGS.face_model) as tracker:
      summary = Summary(fps=window.fps, live=live)
      try:
        run(frames, tracker, window, on_hop, on_frame if display else None, summary)
      except (_Stop, KeyboardInterrupt):
        pass
  print(f'lipjax.stream: {source}: {summary.line()}', file=sys.stderr)


if __name__ == '__main__':
  cli.run(main, 'lipjax.stream', define_flags)
