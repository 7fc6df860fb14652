"""FaceMesh on a clip's frames -> raw landmarks in pixel units, and where a face was found.

Uses mediapipe's bundled legacy solution (`mp.solutions.face_mesh`), whose model
ships inside the wheel, so nothing is downloaded. One tracker lives per worker
process and is reset between clips, so tracking never carries across clips.
"""

import numpy as np

from extraction import roi


# A serialised NormalizedLandmark holding exactly x, y, z: tag+length, then three
# (tag, float32) pairs. Parsing that fixed layout with numpy in one call avoids
# reading 1404 protobuf attributes one by one in Python for every frame.
_RECORD = np.dtype([('head', 'u1', 2), ('xt', 'u1'), ('x', '<f4'), ('yt', 'u1'), ('y', '<f4'),
                    ('zt', 'u1'), ('z', '<f4')])
_HEAD = (0x0A, 0x0F)
_TAGS = (0x0D, 0x15, 0x1D)


def _landmark_array(landmark_list) -> np.ndarray:
  """Converts a NormalizedLandmarkList to [468, 3] float32 (normalised image units)."""
  raw = landmark_list.SerializeToString()
  if len(raw) == roi.NUM_FACEMESH_LANDMARKS * _RECORD.itemsize:
    records = np.frombuffer(raw, _RECORD)
    if ((records['head'] == _HEAD).all() and (records['xt'] == _TAGS[0]).all()
        and (records['yt'] == _TAGS[1]).all() and (records['zt'] == _TAGS[2]).all()):
      return np.stack([records['x'], records['y'], records['z']], axis=-1)
  return np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], np.float32)


class FaceMeshTracker:
  """One FaceMesh graph in video mode (one face), reused across clips."""

  def __init__(self, min_detection_confidence: float = 0.5,
               min_tracking_confidence: float = 0.5):
    import mediapipe as mp  # pylint: disable=g-import-not-at-top
    self._mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False, max_num_faces=1, refine_landmarks=False,
        min_detection_confidence=min_detection_confidence,
        min_tracking_confidence=min_tracking_confidence)

  def landmarks(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (landmarks [T, 468, 3] in pixels, z scaled like x; detected [T] bool)."""
    self._mesh.reset()
    num_frames, height, width = frames.shape[:3]
    points = np.zeros((num_frames, roi.NUM_FACEMESH_LANDMARKS, 3), np.float32)
    detected = np.zeros(num_frames, bool)
    scale = np.array([width, height, width], np.float32)
    for t in range(num_frames):
      result = self._mesh.process(frames[t])
      if result.multi_face_landmarks:
        points[t] = _landmark_array(result.multi_face_landmarks[0]) * scale
        detected[t] = True
    return points, detected

  def close(self) -> None:
    self._mesh.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
