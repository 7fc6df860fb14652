"""Face landmark trackers, the one wrapper: video clips -> landmarks and where a face was found.

Two trackers with one interface (`landmarks`, `track`, `reset`, `close`, a context
manager, `from_settings`) serve extraction and prediction. `FaceMeshTracker` runs
mediapipe's legacy solution (`mp.solutions.face_mesh`, whose models ship inside the
wheel; mediapipe 1.x removed it), by default its attention model (refine_landmarks: lip
and eye contours placed again by a sub-model). `FaceLandmarkerTracker` runs its maintained
replacement, the Tasks API's Face Landmarker, from a model bundle that face_model.resolve
finds. One tracker lives per worker process and is reset between clips, so tracking never
carries across clips; by default it tracks every frame and its mirror image and averages
the two, as extraction's settings say.
`FaceLandmarkerDetector` (the Face Landmarker in IMAGE mode, under every mediapipe version
and whatever extraction's settings, so generated videos depend on neither) finds the faces
the synthetic generator animates.

mediapipe is imported only where a tracker is made, so this module imports under any
mediapipe version; the legacy trackers say so when the installed one has no FaceMesh.
"""

import itertools

import numpy as np

from extraction import face_model
from extraction import roi

# A serialised NormalizedLandmark holding exactly x, y, z: tag+length, then three
# (tag, float32) pairs. Parsing that fixed layout with numpy in one call avoids
# reading 1404 protobuf attributes one by one in Python for every frame.
_RECORD = np.dtype(
  [
    ('head', 'u1', 2),
    ('xt', 'u1'),
    ('x', '<f4'),
    ('yt', 'u1'),
    ('y', '<f4'),
    ('zt', 'u1'),
    ('z', '<f4'),
  ]
)
_HEAD = (0x0A, 0x0F)
_TAGS = (0x0D, 0x15, 0x1D)
_IRIS_LANDMARKS = 10  # added after the mesh by refine_landmarks
_SIZES = tuple((roi.NUM_FACEMESH_LANDMARKS + n) * _RECORD.itemsize for n in (0, _IRIS_LANDMARKS))


def _landmark_array(landmark_list) -> np.ndarray:
  """Converts a NormalizedLandmarkList to [468, 3] float32 (normalised image units).

  The refined model's 10 iris landmarks (468-477) are dropped: the mesh is the first 468.
  """
  raw = landmark_list.SerializeToString()
  if len(raw) in _SIZES:
    records = np.frombuffer(raw, _RECORD)[: roi.NUM_FACEMESH_LANDMARKS]
    if (
      (records['head'] == _HEAD).all()
      and (records['xt'] == _TAGS[0]).all()
      and (records['yt'] == _TAGS[1]).all()
      and (records['zt'] == _TAGS[2]).all()
    ):
      return np.stack([records['x'], records['y'], records['z']], axis=-1)
  mesh = landmark_list.landmark[: roi.NUM_FACEMESH_LANDMARKS]
  return np.array([(p.x, p.y, p.z) for p in mesh], np.float32)


class LegacyFaceMeshMissing(ValueError):
  """The legacy FaceMesh was asked for, and the installed mediapipe (>= 1) has none."""


def legacy_facemesh_installed() -> bool:
  """True if the installed mediapipe has the legacy FaceMesh (mp.solutions: mediapipe < 1)."""
  import mediapipe as mp

  return hasattr(mp, 'solutions')


def _face_mesh(
  min_detection_confidence: float,
  min_tracking_confidence: float = 0.5,
  refine_landmarks: bool = False,
):
  """mediapipe's FaceMesh graph for one face, in video mode.

  refine_landmarks: the attention model, which places the lip and eye contours again
  with its own sub-model (and adds 10 iris landmarks, dropped by _landmark_array).
  """
  import mediapipe as mp

  if not legacy_facemesh_installed():
    raise LegacyFaceMeshMissing(
      f'the legacy FaceMesh needs mediapipe < 1 (mediapipe {mp.__version__} is installed, '
      'which has no mp.solutions): a data set extracted with it is read from video by '
      'installing mediapipe==0.10.21 beside it, or re-extracted with --landmarks landmarker'
    )
  return mp.solutions.face_mesh.FaceMesh(
    static_image_mode=False,
    max_num_faces=1,
    refine_landmarks=refine_landmarks,
    min_detection_confidence=min_detection_confidence,
    min_tracking_confidence=min_tracking_confidence,
  )


def _track(mesh, frame: np.ndarray) -> np.ndarray | None:
  """One video-mode graph's landmarks [468, 3] in pixels for the next frame, or None (no face)."""
  result = mesh.process(frame)
  if not result.multi_face_landmarks:
    return None
  height, width = frame.shape[:2]
  return _landmark_array(result.multi_face_landmarks[0]) * np.array(
    [width, height, width], np.float32
  )


def _clip_landmarks(track, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Runs `track` over a clip's frames: (landmarks [T, 468, 3] in pixels; detected [T] bool)."""
  num_frames = len(frames)
  points = np.zeros((num_frames, roi.NUM_FACEMESH_LANDMARKS, 3), np.float32)
  detected = np.zeros(num_frames, bool)
  for t in range(num_frames):
    found = track(frames[t])
    if found is not None:
      points[t] = found
      detected[t] = True
  return points, detected


def _mirror_mean(found, flipped, width: int, mirror_index: np.ndarray) -> np.ndarray | None:
  """A frame's landmarks from its own estimate and its mirror image's (either may be None).

  The mirror image's estimate is moved back (each landmark taken from its mirror
  landmark, x reflected) and averaged with the frame's; where only one found the face,
  that one is the estimate.
  """
  if flipped is None:
    return found
  flipped = flipped[mirror_index]
  flipped[:, 0] = width - flipped[:, 0]
  return flipped if found is None else 0.5 * (found + flipped)


class FaceMeshTracker:
  """One FaceMesh graph in video mode (one face), reused across clips.

  mirror_average: a second graph tracks the horizontally flipped frames; each landmark
  is the mean of the two estimates (the flip's mirror landmark, roi.mesh_mirror, moved
  back), which cancels the part of FaceMesh's error that is not left-right symmetric.
  Twice FaceMesh's time per frame.
  """

  def __init__(
    self,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    refine_landmarks: bool = True,
    mirror_average: bool = True,
  ):
    settings = (min_detection_confidence, min_tracking_confidence, refine_landmarks)
    self._mesh = _face_mesh(*settings)
    self._mirror = _face_mesh(*settings) if mirror_average else None
    self._mirror_index = roi.mesh_mirror()

  @classmethod
  def from_settings(cls, settings) -> 'FaceMeshTracker':
    """The tracker extraction settings (extraction.clip.Settings) describe."""
    return cls(
      settings.min_detection_confidence,
      settings.min_tracking_confidence,
      settings.refine_landmarks,
      settings.mirror_average,
    )

  def landmarks(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (landmarks [T, 468, 3] in pixels, z scaled like x; detected [T] bool).

    Tracking starts afresh: a clip's landmarks never depend on the clip before it.
    """
    self.reset()
    return _clip_landmarks(self.track, frames)

  def track(self, frame: np.ndarray) -> np.ndarray | None:
    """The next frame [H, W, 3] RGB of a video -> landmarks [468, 3] in pixels, or None (no face).

    Continues the tracking of the frames before it (`reset` starts a new video). With
    mirror_average, a frame where only one of the two graphs finds the face takes its estimate.
    """
    found = _track(self._mesh, frame)
    if self._mirror is None:
      return found
    flipped = _track(self._mirror, np.ascontiguousarray(frame[:, ::-1]))
    return _mirror_mean(found, flipped, frame.shape[1], self._mirror_index)

  def reset(self) -> None:
    """Forgets the tracked face: the next frame is searched for a face from scratch."""
    for mesh in (self._mesh, self._mirror):
      if mesh is not None:
        mesh.reset()

  def close(self) -> None:
    for mesh in (self._mesh, self._mirror):
      if mesh is not None:
        mesh.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


# Timestamps of consecutive frames in MediaPipe's VIDEO mode. That mode passes one face's
# landmarks through a one-euro filter whose smoothing follows the timestamps (a still
# landmark moves ~1% of the way to each new estimate at 30 fps). Frames stamped 10^4 s
# apart pass through it within 0.002 px of as they came, like the legacy FaceMesh's
# landmarks, which carry no filter: extraction smooths landmarks itself (ema_alpha), and a
# clip's landmarks do not depend on its frame rate. The filter takes a stamp of 0 for "no
# time yet" (and smooths the next frame at its default rate), so stamps start at one interval.
_FRAME_INTERVAL_MS = 10_000_000


def _face_landmarker(
  model_path: str, min_detection_confidence: float, min_presence: float, video: bool = True
):
  """The Tasks API's Face Landmarker for one face, from the bundle at model_path.

  video: VIDEO mode (a track across frames); else IMAGE mode (every image on its own).
  """
  from mediapipe.tasks.python import BaseOptions
  from mediapipe.tasks.python import vision

  options = vision.FaceLandmarkerOptions(
    base_options=BaseOptions(model_asset_path=model_path),
    running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
    num_faces=1,
    min_face_detection_confidence=min_detection_confidence,
    # The legacy FaceMesh's min_tracking_confidence is the landmark model's face presence
    # below which the next frame searches for the face again: here min_face_presence_confidence
    # (mediapipe 0.10's Python API drops it and applies min_face_detection_confidence there).
    # The Tasks API's own min_tracking_confidence, the overlap at which a new detection is
    # taken for a tracked face, does nothing with one face: it detects only once tracking is lost.
    min_face_presence_confidence=min_presence,
  )
  try:
    return vision.FaceLandmarker.create_from_options(options)
  except (RuntimeError, ValueError, OSError) as error:
    raise face_model.FaceModelError(
      f'{model_path}: MediaPipe cannot load it as a face landmarker bundle ({error})'
    ) from error


def _task_landmark_array(face, model_path: str) -> np.ndarray:
  """A Face Landmarker face (a list of NormalizedLandmark) -> [468, 3] float32 (normalised units).

  The 10 iris landmarks (468-477) are dropped: FaceMesh's mesh is the first 468. The Tasks
  API hands back Python objects (mediapipe 0.10 and 1.x alike); reading them in one
  np.fromiter takes ~0.07 ms a frame, under 1% of the landmarker's own time.
  """
  if len(face) < roi.NUM_FACEMESH_LANDMARKS:
    raise face_model.FaceModelError(
      f"{model_path}: its landmark model gives {len(face)} points a face, not FaceMesh's "
      f'{roi.NUM_FACEMESH_LANDMARKS}; use a face landmarker bundle such as MediaPipe publishes'
    )
  mesh = face[: roi.NUM_FACEMESH_LANDMARKS]
  coordinates = itertools.chain.from_iterable((p.x, p.y, p.z) for p in mesh)
  return np.fromiter(coordinates, np.float32, 3 * len(mesh)).reshape(-1, 3)


class FaceLandmarkerTracker:
  """The Tasks API's Face Landmarker in VIDEO mode (one face): FaceMeshTracker's interface.

  Reads a face landmarker bundle (face_model.resolve finds MediaPipe's); its landmark
  model gives FaceMesh's 468 points (and 10 iris points, dropped), so there is no
  refine_landmarks choice. mirror_average: as FaceMeshTracker's, a second landmarker
  tracks the horizontally flipped frames and the two estimates are averaged; twice
  the time per frame.
  """

  def __init__(
    self,
    model_path: str,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    mirror_average: bool = True,
  ):
    self._model_path = model_path
    self._confidences = (min_detection_confidence, min_tracking_confidence)
    self._mirror_index = roi.mesh_mirror()
    self._mirror_average = mirror_average
    self._landmarker = self._mirror = None
    self._start()

  @classmethod
  def from_settings(cls, settings, model_path: str) -> 'FaceLandmarkerTracker':
    """The tracker extraction settings (extraction.clip.Settings) describe, from this bundle."""
    return cls(
      model_path,
      settings.min_detection_confidence,
      settings.min_tracking_confidence,
      settings.mirror_average,
    )

  def landmarks(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (landmarks [T, 468, 3] in pixels, z scaled like x; detected [T] bool).

    Tracking starts afresh: a clip's landmarks never depend on the clip before it.
    """
    self.reset()
    return _clip_landmarks(self.track, frames)

  def track(self, frame: np.ndarray) -> np.ndarray | None:
    """The next frame [H, W, 3] RGB of a video -> landmarks [468, 3] in pixels, or None (no face).

    Continues the tracking of the frames before it (`reset` starts a new video). With
    mirror_average, a frame where only one of the two landmarkers finds the face takes its estimate.
    """
    self._frames += 1
    found = self._detect(self._landmarker, frame)
    if self._mirror is None:
      return found
    flipped = self._detect(self._mirror, np.ascontiguousarray(frame[:, ::-1]))
    return _mirror_mean(found, flipped, frame.shape[1], self._mirror_index)

  def reset(self) -> None:
    """Forgets the tracked face: the next frame is searched for a face from scratch.

    A landmarker keeps the tracked face and its filter across any jump in timestamps and
    has no reset of its own, so one that has seen a frame is replaced: ~15 ms each, some
    5-8% of a 29-frame clip's time.
    """
    if self._frames:
      self.close()
      self._start()

  def close(self) -> None:
    """Releases the landmarkers."""
    for landmarker in (self._landmarker, self._mirror):
      if landmarker is not None:
        landmarker.close()
    self._landmarker = self._mirror = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def _start(self) -> None:
    """Creates fresh landmarkers (two with mirror_average); the next frame is a video's first."""
    self._landmarker = _face_landmarker(self._model_path, *self._confidences)
    self._mirror = (
      _face_landmarker(self._model_path, *self._confidences) if self._mirror_average else None
    )
    self._frames = 0

  def _detect(self, landmarker, frame: np.ndarray) -> np.ndarray | None:
    """One landmarker's landmarks [468, 3] in pixels for this frame, or None (no face)."""
    import mediapipe as mp

    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
    result = landmarker.detect_for_video(image, self._frames * _FRAME_INTERVAL_MS)
    if not result.face_landmarks:
      return None
    height, width = frame.shape[:2]
    return _task_landmark_array(result.face_landmarks[0], self._model_path) * np.array(
      [width, height, width], np.float32
    )


def tracker_for(settings, face_model_path: str | None = None):
  """The tracker extraction settings (extraction.clip.Settings) describe, or None (landmark files).

  settings.landmarks 'facemesh': the legacy FaceMesh; 'landmarker': the Face Landmarker
  from the bundle at face_model_path (face_model.resolve's answer).
  """
  if settings.landmarks == 'facemesh':
    return FaceMeshTracker.from_settings(settings)
  if settings.landmarks == 'landmarker':
    if not face_model_path:
      raise ValueError('the face landmarker needs its bundle: face_model.resolve() finds it')
    return FaceLandmarkerTracker.from_settings(settings, face_model_path)
  return None


def bundle_for(settings, face_model_path: str | None = None) -> str | None:
  """The Face Landmarker bundle the settings need (face_model.resolve), or None (another source)."""
  return face_model.resolve(face_model_path) if settings.landmarks == 'landmarker' else None


def tracker_for_video(settings, face_model_path: str | None = None):
  """The tracker that reads a new video as a data set's landmarks were found (predict, stream).

  settings: the data set's recorded extraction settings as a video is read with them
  (clip.Settings.for_video). The landmarker's bundle: bundle_for(settings, face_model_path).
  """
  return tracker_for(settings, bundle_for(settings, face_model_path))


class FaceLandmarkerDetector:
  """The Face Landmarker in IMAGE mode, for photos; one instance per process (not thread safe).

  Under every mediapipe version (0.10 and 1.x run the same bundle), so the faces the
  generator animates do not depend on the installed one.
  """

  def __init__(self, model_path: str, min_detection_confidence: float = 0.5):
    self._model_path = model_path
    # No track to lose in IMAGE mode: the landmark model's face presence takes the same bar.
    self._landmarker = _face_landmarker(
      model_path, min_detection_confidence, min_detection_confidence, video=False
    )

  def landmarks(self, image_bgr: np.ndarray) -> np.ndarray | None:
    """Returns the face's 468 FaceMesh landmarks in pixels [468, 2] float64, or None (no face)."""
    import cv2
    import mediapipe as mp

    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    if not result.face_landmarks:
      return None
    height, width = image_bgr.shape[:2]
    # float32 landmarks widened before scaling: the same doubles as scaling each float.
    points = _task_landmark_array(result.face_landmarks[0], self._model_path)[:, :2]
    return points.astype(np.float64) * np.array([width, height], np.float64)

  def close(self) -> None:
    """Releases the landmarker."""
    self._landmarker.close()
