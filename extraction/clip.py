"""One video (+ speech interval) -> the per-frame arrays of one example.

`extract_clip` is the single definition of what a clip becomes; extraction runs
it for every clip of a corpus and `lipjax.predict` runs it on a user's video,
so training and prediction see the same ROI, normalisation, smoothing and features.
Its steps come in two halves that `lipjax.stream` runs on a live video too: per
frame as it arrives (FaceMesh tracking, `face_frame`), then per window of frames
(`check_faces`, `window_arrays`: smoothing, filling frames without a face, features).
`extract_windows` does the same for many examples of one video (GRID's six words, a
manifest's rows naming one video): one decode and one tracking pass serve every window.
"""

import dataclasses
import math

import numpy as np

from extraction import features
from extraction import landmark_files
from extraction import normalize
from extraction import roi
from extraction import schema
from extraction import transcripts
from extraction import video

FACEMESH = 'facemesh'  # landmarks: the legacy FaceMesh (mediapipe < 1) on the frames
LANDMARKER = 'landmarker'  # landmarks: MediaPipe's Face Landmarker (Tasks API) on the frames
LANDMARK_FILE = 'file'  # landmarks: landmark_files.path_for(video) beside each video
LANDMARK_SOURCES = (FACEMESH, LANDMARKER, LANDMARK_FILE)
TRACKERS = (FACEMESH, LANDMARKER)  # the sources that track faces in the frames


# Whether extraction averages each frame's landmarks with its mirror image's by default. Off:
# on GRID s1 (experiments/README.md, "GRID") it bought the Face Landmarker +1.4 points of word
# accuracy (val and test pooled, one seed) at twice the tracking time; --mirror_average buys it.
MIRROR_AVERAGE = False

# Settings added after data sets were first made, with the value those data sets used.
ADDED_LATER = {'landmarks': FACEMESH, 'refine_landmarks': False, 'mirror_average': False}


class ClipError(Exception):
  """A clip that cannot become an example; the message names the file and why."""


@dataclasses.dataclass(frozen=True)
class Settings:
  """Extraction settings; recorded in the data set's metadata."""

  max_frames: int = 29
  fps: float = 25.0
  ema_alpha: float = 0.7
  min_face_fraction: float = 0.5
  min_frames: int = 4
  min_detection_confidence: float = 0.5
  min_tracking_confidence: float = 0.5
  # Where the landmarks come from: the Face Landmarker (MediaPipe's maintained tracker; its
  # bundle: face_model.py) or the legacy FaceMesh (mediapipe < 1) on the frames (facemesh.py),
  # or a file beside each video (landmark_files: another tracker's, or the generator's own).
  # The landmarker by default: chosen against the legacy model on GRID s1 (experiments/README.md).
  landmarks: str = LANDMARKER
  # The legacy FaceMesh's attention model (the landmarker always runs its own): lip and eye
  # contours placed again by a sub-model; on generated faces held-out accuracy at 100 words
  # rose from 0.39 to 0.45 with it (experiments/README.md).
  refine_landmarks: bool = True
  # The tracker on every frame and on its mirror image, the two estimates averaged
  # (facemesh.py): twice the tracker's time.
  mirror_average: bool = MIRROR_AVERAGE

  @classmethod
  def from_record(cls, recorded: dict) -> 'Settings':
    """The settings a data set's metadata records; a setting the record predates takes the
    value every extraction made before it used (not today's default), unknown keys are ignored."""
    known = {f.name for f in dataclasses.fields(cls)}
    given = {**ADDED_LATER, **{k: v for k, v in recorded.items() if k in known}}
    return cls(**given)

  def for_video(self) -> 'Settings':
    """These settings as a new video is read with them (predict, stream): landmark files,
    found by another tracker or drawn by the generator, have no tracker of their own, so the
    default tracker reads the video; everything else as recorded."""
    if self.landmarks in TRACKERS:
      return self
    return dataclasses.replace(self, landmarks=Settings().landmarks)

  def problems(self) -> list[tuple[str, str]]:
    """(setting, what is wrong) for every value no clip could be extracted with."""
    checks = [
      ('max_frames', self.max_frames >= 1, 'must be at least 1'),
      ('fps', math.isfinite(self.fps) and self.fps > 0, 'must be a positive number'),
      ('ema_alpha', 0 < self.ema_alpha <= 1, 'must be in (0, 1]'),
      ('min_face_fraction', 0 <= self.min_face_fraction <= 1, 'must be in [0, 1]'),
      (
        'min_frames',
        1 <= self.min_frames <= self.max_frames,
        f'must be in [1, max_frames={self.max_frames}]',
      ),
      ('min_detection_confidence', 0 <= self.min_detection_confidence <= 1, 'must be in [0, 1]'),
      ('min_tracking_confidence', 0 <= self.min_tracking_confidence <= 1, 'must be in [0, 1]'),
      ('landmarks', self.landmarks in LANDMARK_SOURCES, f'must be one of {LANDMARK_SOURCES}'),
      ('refine_landmarks', isinstance(self.refine_landmarks, bool), 'must be True or False'),
      ('mirror_average', isinstance(self.mirror_average, bool), 'must be True or False'),
    ]
    return [
      (name, f'{message}, got {getattr(self, name)!r}') for name, ok, message in checks if not ok
    ]

  def check(self) -> None:
    """Raises ValueError naming every bad setting."""
    problems = self.problems()
    if problems:
      raise ValueError('bad extraction settings: ' + '; '.join(f'{n} {p}' for n, p in problems))


@dataclasses.dataclass
class ClipArrays:
  """A clip's per-frame arrays before padding (L <= max_frames frames)."""

  landmarks: np.ndarray  # [L, 88, 3]
  au: np.ndarray  # [L, 18]
  geometry: np.ndarray  # [L, 10]
  face_mask: np.ndarray  # [L] uint8
  speech_mask: np.ndarray  # [L] uint8
  source_frames: int  # frames at the data set's fps before cutting
  cut: bool  # longer than max_frames and cut around the speech
  resampled: bool  # source fps differed from the data set's fps

  def to_example(
    self,
    label: int,
    speaker: str,
    video_id: str,
    max_frames: int,
    text: str | None = None,
    max_tokens: int = 0,
  ) -> dict:
    """Pads to a schema example (a sentence data set's, with its text as tokens, if text)."""
    return schema.pad_example(
      landmarks=self.landmarks,
      au=self.au,
      geometry=self.geometry,
      face_mask=self.face_mask,
      speech_mask=self.speech_mask,
      label=label,
      speaker=speaker,
      video_id=video_id,
      max_frames=max_frames,
      text=text,
      max_tokens=max_tokens,
    )


def cut_window(num_frames: int, intervals, fps: float, max_frames: int) -> int:
  """First frame of a max_frames window centred on the speech (clamped to the clip)."""
  if num_frames <= max_frames:
    return 0
  if intervals:
    centre = 0.5 * (min(s for s, _ in intervals) + max(e for _, e in intervals)) * fps
  else:
    centre = 0.5 * num_frames
  start = int(round(centre - 0.5 * max_frames))
  return min(max(start, 0), num_frames - max_frames)


# How far speech may run past a video's last frame: an audio track a few frames longer than
# the picture is common (lipjax.predict's tests cut 0.15 s past carphone's end); a second is not.
INTERVAL_SLACK_SECONDS = 0.25


def check_intervals(
  video_path: str, intervals, duration: float, num_frames: int, fps: float
) -> None:
  """Raises ClipError if the speech ends well after the video or holds none of its frames."""
  for start, end in intervals:
    if end > duration + INTERVAL_SLACK_SECONDS:
      raise ClipError(
        f'{video_path}: speech interval {start:g}-{end:g} s ends after the video '
        f'({duration:.2f} s long); its transcript or manifest row is for another video'
      )
  if intervals and not transcripts.speech_mask(intervals, num_frames, fps).any():
    raise ClipError(
      f'{video_path}: speech interval(s) '
      f'{", ".join(f"{s:g}-{e:g} s" for s, e in intervals)} hold no frame of the video '
      f'({duration:.2f} s long)'
    )


@dataclasses.dataclass(frozen=True)
class Speech:
  """Where one example's speech lies in its video: intervals in seconds, or a transcript.

  With neither, the example has no speech mask and its window is the video's middle.
  """

  intervals: tuple = ()
  transcript: transcripts.Transcript | None = None
  # A sentence: the whole speech must lie inside the example's window (no word cut off).
  whole: bool = False

  def place(self, num_frames: int, fps: float) -> tuple:
    """The speech intervals in seconds of a video of num_frames frames at fps."""
    if self.transcript is not None:
      return tuple(self.transcript.speech_intervals(num_frames / fps))
    return tuple(self.intervals)


@dataclasses.dataclass(frozen=True)
class Placement:
  """One example's window among its video's frames at the data set's rate, and its speech."""

  first: int
  stop: int
  intervals: tuple  # speech intervals in seconds from the video's first frame


def place_window(speech: Speech, num_frames: int, settings: Settings) -> Placement:
  """The max_frames window of a video of num_frames frames centred on an example's speech."""
  placed = speech.place(num_frames, settings.fps)
  first = cut_window(num_frames, placed, settings.fps, settings.max_frames)
  return Placement(first, min(first + settings.max_frames, num_frames), placed)


def check_window(video_path: str, speech: Speech, placement: Placement, span, settings) -> None:
  """Raises ClipError if an example's speech does not fit its video or its window is too short."""
  duration = span.source_frames / span.source_fps
  transcript = speech.transcript
  if (
    transcript is not None
    and (transcript.centred_duration or 0) > duration + INTERVAL_SLACK_SECONDS
  ):
    raise ClipError(
      f'{video_path}: its transcript says the speech lasts '
      f'{transcript.centred_duration:g} s but the video is {duration:.2f} s long'
    )
  check_intervals(video_path, placement.intervals, duration, span.num_frames, settings.fps)
  if speech.whole and placement.intervals:
    first, stop = placement.first / settings.fps, placement.stop / settings.fps
    start, end = placement.intervals[0][0], placement.intervals[-1][1]
    if start < first or end > stop + INTERVAL_SLACK_SECONDS:
      raise ClipError(
        f'{video_path}: the utterance ({start:g}-{end:g} s) does not fit in a window of '
        f'max_frames={settings.max_frames} frames ({settings.max_frames / settings.fps:g} s); '
        'raise --max_frames'
      )
  if placement.stop - placement.first < settings.min_frames:
    raise ClipError(
      f'{video_path}: {placement.stop - placement.first} frames at {settings.fps:g} fps; '
      f'need at least {settings.min_frames}'
    )


@dataclasses.dataclass
class ClipFrames:
  """The frames of a clip's window at the data set's rate, with its speech placed in it."""

  frames: np.ndarray  # [L, H, W, 3] uint8 RGB, L <= max_frames
  intervals: tuple  # speech intervals in seconds from frames[0]
  source_frames: int  # frames at the data set's fps before cutting
  resampled: bool  # source fps differed from the data set's fps
  source_index: np.ndarray  # [L] each frame's index among the video's own frames
  video_frames: int  # frames the video decodes to at its own rate


def read_clip(
  video_path: str,
  settings: Settings,
  intervals=None,
  transcript: transcripts.Transcript | None = None,
) -> ClipFrames:
  """Decodes the max_frames window of a video around its speech (memory holds that window only)."""
  speech = Speech(tuple(intervals or ()), transcript)
  placements = []

  def first_of(num_frames: int) -> int:
    placements.append(place_window(speech, num_frames, settings))
    return placements[-1].first

  try:
    window = video.read_window(video_path, settings.fps, settings.max_frames, first_of)
  except video.VideoError as error:
    raise ClipError(str(error)) from error
  placement = placements[-1]  # the one made with the true frame count
  check_window(video_path, speech, placement, window, settings)
  offset = window.first / settings.fps
  return ClipFrames(
    frames=window.frames,
    intervals=tuple((s - offset, e - offset) for s, e in placement.intervals),
    source_frames=window.num_frames,
    resampled=window.resampled,
    source_index=window.source_index,
    video_frames=window.source_frames,
  )


def face_frame(points: np.ndarray) -> np.ndarray:
  """One frame's FaceMesh landmarks [468, 3] in pixels -> face-normalised [468, 3] (no state)."""
  return normalize.face_normalize(points[None])[0]


def check_faces(where: str, detected: np.ndarray, settings: Settings) -> None:
  """Raises ClipError if FaceMesh found a face in too few of a clip's (or window's) frames."""
  if detected.mean() < settings.min_face_fraction:
    raise ClipError(
      f'{where}: face found in {int(detected.sum())} of {len(detected)} frames '
      f'(< {settings.min_face_fraction:.0%}); no usable face'
    )


def window_arrays(
  faces: np.ndarray, detected: np.ndarray, settings: Settings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Face-normalised frames of a clip or stream window -> (landmarks [L, 88, 3], au, geometry).

  Smoothing starts at the window's first frame and frames without a face are filled
  from the window's detected frames, so a stream window scored after its last frame
  has arrived becomes exactly what extraction makes of a clip of the same frames.
  """
  face = normalize.smooth_track(faces, detected, settings.ema_alpha)  # [L, 468, 3]
  au, geometry = features.compute_features(face)
  return face[:, list(roi.ROI_INDICES)], au, geometry


@dataclasses.dataclass
class VideoTrack:
  """A video's face landmarks over the span of frames its examples need, found in one pass."""

  span: video.Span
  points: np.ndarray  # [S, 468, 3] pixels, 0 where no face
  detected: np.ndarray  # [S] bool
  frames_tracked: int  # frames tracked (a second pass after a miscount too), or read from a file


def track_span(video_path: str, tracker, settings: Settings, span_of) -> VideoTrack:
  """Decodes a video once and tracks the face through the span `span_of(num_frames)` gives.

  With settings.landmarks == LANDMARK_FILE the landmarks are read from the file beside
  the video (tracker unused: None) and no frame is converted.
  """
  if settings.landmarks == LANDMARK_FILE:
    try:
      span = video.read_span(video_path, settings.fps, span_of)
      points, detected = landmark_files.read(video_path, span.source_index, span.source_frames)
    except (video.VideoError, landmark_files.LandmarkFileError) as error:
      raise ClipError(str(error)) from error
    return VideoTrack(span, points, detected, len(points))
  found = {'points': [], 'detected': [], 'tracked': 0}

  def visit(row: int, frame: np.ndarray) -> None:
    if row == 0:  # a new pass: tracking starts afresh (a second one if the container miscounted)
      tracker.reset()
      found['points'], found['detected'] = [], []
    points = tracker.track(frame)
    found['detected'].append(points is not None)
    found['points'].append(
      np.zeros((roi.NUM_FACEMESH_LANDMARKS, 3), np.float32) if points is None else points
    )
    found['tracked'] += 1

  try:
    span = video.read_span(video_path, settings.fps, span_of, visit)
  except video.VideoError as error:
    raise ClipError(str(error)) from error
  points = (
    np.stack(found['points'])
    if found['points']
    else np.zeros((0, roi.NUM_FACEMESH_LANDMARKS, 3), np.float32)
  )
  return VideoTrack(span, points, np.asarray(found['detected'], bool), found['tracked'])


def _window_example(
  video_path: str, track: VideoTrack, faces: np.ndarray, placement: Placement, settings
) -> ClipArrays:
  """Cuts one example's window out of its video's track -> its arrays."""
  rows = slice(placement.first - track.span.first, placement.stop - track.span.first)
  detected = track.detected[rows]
  check_faces(video_path, detected, settings)
  landmarks, au, geometry = window_arrays(faces[rows], detected, settings)
  offset = placement.first / settings.fps
  intervals = tuple((s - offset, e - offset) for s, e in placement.intervals)
  return ClipArrays(
    landmarks=landmarks,
    au=au,
    geometry=geometry,
    face_mask=detected.astype(np.uint8),
    speech_mask=transcripts.speech_mask(intervals, len(detected), settings.fps),
    source_frames=track.span.num_frames,
    cut=track.span.num_frames > settings.max_frames,
    resampled=track.span.resampled,
  )


def extract_windows(
  video_path: str, tracker, settings: Settings, speeches
) -> tuple[list, VideoTrack]:
  """One video, many examples: decodes and tracks it once, then cuts each example's window.

  speeches: a Speech per example. Returns (a ClipArrays or a ClipError per example, in
  order, and the track). The tracker runs once over the frames from the first window's
  first frame to the last window's last; each window is then smoothed, filled and turned
  into features on its own, as `extract_clip` does for a video of one example. A problem
  with one example's speech or face costs that example only; a video that cannot be read
  raises ClipError.
  """
  placements = []

  def span_of(num_frames: int) -> tuple[int, int]:
    placements[:] = [place_window(speech, num_frames, settings) for speech in speeches]
    return min(p.first for p in placements), max(p.stop for p in placements)

  track = track_span(video_path, tracker, settings, span_of)
  faces = np.zeros(track.points.shape, np.float32)  # [S, 468, 3]
  for t in np.flatnonzero(track.detected):
    faces[t] = face_frame(track.points[t])
  results = []
  for speech, placement in zip(speeches, placements):
    try:
      check_window(video_path, speech, placement, track.span, settings)
      results.append(_window_example(video_path, track, faces, placement, settings))
    except ClipError as error:
      results.append(error)
  return results, track


def extract_clip(
  video_path: str,
  tracker,
  settings: Settings,
  intervals=None,
  transcript: transcripts.Transcript | None = None,
) -> ClipArrays:
  """Runs FaceMesh on a video's window around its speech -> normalised landmarks, features, masks.

  Speech comes from `intervals` (seconds) or a `transcript`; with neither the
  speech mask is empty, and the model pools over all frames instead. The frames
  go through the per-frame steps the stream runs (`face_frame`, `window_arrays`).
  With settings.landmarks == LANDMARK_FILE the window's landmarks are read from the
  file beside the video instead (tracker unused: None).
  """
  (result,), _ = extract_windows(
    video_path, tracker, settings, [Speech(tuple(intervals or ()), transcript)]
  )
  if isinstance(result, ClipError):
    raise result
  return result
