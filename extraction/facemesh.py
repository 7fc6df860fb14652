"""FaceMesh, the one wrapper: video clips -> landmarks and where a face was found; photos -> landmarks.

Uses mediapipe's bundled legacy solution (`mp.solutions.face_mesh`), whose model
ships inside the wheel, so nothing is downloaded. `FaceMeshTracker` (video mode)
serves extraction and prediction: one lives per worker process and is reset
between clips, so tracking never carries across clips; by default it runs the attention
model (mediapipe's refine_landmarks: lip and eye contours placed again by a sub-model) on
every frame and on its mirror image and averages the two, as extraction's settings say.
`FaceMeshDetector` (still-image mode, the plain model, so generated videos do not change
with extraction's settings) finds the faces the synthetic generator animates.
"""

import numpy as np

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


def _face_mesh(
  static_image_mode: bool,
  min_detection_confidence: float,
  min_tracking_confidence: float = 0.5,
  refine_landmarks: bool = False,
):
  """mediapipe's FaceMesh graph for one face.

  refine_landmarks: the attention model, which places the lip and eye contours again
  with its own sub-model (and adds 10 iris landmarks, dropped by _landmark_array).
  """
  import mediapipe as mp

  return mp.solutions.face_mesh.FaceMesh(
    static_image_mode=static_image_mode,
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
    settings = (False, min_detection_confidence, min_tracking_confidence, refine_landmarks)
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
    num_frames = len(frames)
    points = np.zeros((num_frames, roi.NUM_FACEMESH_LANDMARKS, 3), np.float32)
    detected = np.zeros(num_frames, bool)
    for t in range(num_frames):
      found = self.track(frames[t])
      if found is not None:
        points[t] = found
        detected[t] = True
    return points, detected

  def track(self, frame: np.ndarray) -> np.ndarray | None:
    """The next frame [H, W, 3] RGB of a video -> landmarks [468, 3] in pixels, or None (no face).

    Continues the tracking of the frames before it (`reset` starts a new video). With
    mirror_average, a frame where only one of the two graphs finds the face takes its estimate.
    """
    found = _track(self._mesh, frame)
    if self._mirror is None:
      return found
    flipped = _track(self._mirror, np.ascontiguousarray(frame[:, ::-1]))
    if flipped is None:
      return found
    flipped = flipped[self._mirror_index]
    flipped[:, 0] = frame.shape[1] - flipped[:, 0]
    return flipped if found is None else 0.5 * (found + flipped)

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


class FaceMeshDetector:
  """FaceMesh in still-image mode, for photos; one instance per process (it is not thread safe)."""

  def __init__(self, min_detection_confidence: float = 0.5):
    self._mesh = _face_mesh(True, min_detection_confidence)

  def landmarks(self, image_bgr: np.ndarray) -> np.ndarray | None:
    """Returns FaceMesh landmarks in pixels [468, 2] float64, or None where no face is found."""
    import cv2

    result = self._mesh.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    if not result.multi_face_landmarks:
      return None
    height, width = image_bgr.shape[:2]
    # float32 landmarks widened before scaling: the same doubles as scaling each proto float.
    points = _landmark_array(result.multi_face_landmarks[0])[:, :2].astype(np.float64)
    return points * np.array([width, height], np.float64)

  def close(self) -> None:
    """Releases the graph."""
    self._mesh.close()
