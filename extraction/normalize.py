"""Raw FaceMesh landmarks -> face-relative, gap-filled, smoothed coordinates in [0, 1].

Pure numpy functions; `clip.py` composes them in this order:
  1. `face_normalize` each detected frame: centre on the face's bounding box,
     rotate so the outer eye corners are level (removes head roll), divide by the
     face's larger side, shift to 0.5. The face spans [0, 1] in its larger
     dimension; z is centred on the face's mean depth and scaled the same way.
  2. `ema_smooth` over the detected frames only (alpha weights the new frame):
     s_t = alpha * x_t + (1 - alpha) * s_{t-1}, s_0 = x_0.
  3. `fill_missing`: frames where no face was found are linearly interpolated
     between the nearest detected frames (held constant before the first and
     after the last); `face_mask` records which frames were real detections.
"""

import numpy as np

from extraction import roi


def face_normalize(points: np.ndarray) -> np.ndarray:
  """Maps pixel landmarks [T, 468, 3] to face-relative coordinates in [0, 1]."""
  right_eye = points[:, roi.RIGHT_EYE_OUTER, :2]
  left_eye = points[:, roi.LEFT_EYE_OUTER, :2]
  dx, dy = (left_eye - right_eye).T
  angle = np.arctan2(dy, dx)  # head roll, [T]
  cos, sin = np.cos(-angle), np.sin(-angle)
  rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # [T, 2, 2]
  centre = points[:, :, :2].mean(axis=1, keepdims=True)
  xy = np.einsum('tij,tnj->tni', rotation, points[:, :, :2] - centre)
  low, high = xy.min(axis=1, keepdims=True), xy.max(axis=1, keepdims=True)
  size = (high - low).max(axis=-1, keepdims=True)  # [T, 1, 1]
  size = np.maximum(size, 1e-6)
  xy = (xy - 0.5 * (low + high)) / size + 0.5
  z = points[:, :, 2:] - points[:, :, 2:].mean(axis=1, keepdims=True)
  z = z / size + 0.5
  return np.clip(np.concatenate([xy, z], axis=-1), 0.0, 1.0).astype(np.float32)


def ema_smooth(x: np.ndarray, alpha: float) -> np.ndarray:
  """Exponential moving average along axis 0: s_t = alpha x_t + (1 - alpha) s_{t-1}."""
  if not 0.0 < alpha <= 1.0:
    raise ValueError(f'EMA alpha must be in (0, 1], got {alpha}')
  out = np.empty_like(x)
  if len(x):
    out[0] = x[0]
  for t in range(1, len(x)):
    out[t] = alpha * x[t] + (1.0 - alpha) * out[t - 1]
  return out


def fill_missing(x: np.ndarray, detected: np.ndarray) -> np.ndarray:
  """Linearly interpolates frames where detected is False (held at the ends).  # [T, ...]"""
  detected = np.asarray(detected, bool)
  if not detected.any():
    raise ValueError('no detected frame to fill from')
  if detected.all():
    return x.copy()
  times = np.arange(len(x))
  known = times[detected]
  flat = x.reshape(len(x), -1)
  filled = np.stack([np.interp(times, known, flat[detected, k]) for k in range(flat.shape[1])], -1)
  return filled.reshape(x.shape).astype(x.dtype)


def smooth_track(faces: np.ndarray, detected: np.ndarray, alpha: float) -> np.ndarray:
  """Smooths (detected frames only) and fills face-normalised landmarks [T, 468, 3]."""
  detected = np.asarray(detected, bool)
  out = np.zeros(faces.shape, np.float32)
  out[detected] = ema_smooth(faces[detected], alpha)
  return fill_missing(out, detected)


def normalize_track(points: np.ndarray, detected: np.ndarray, alpha: float) -> np.ndarray:
  """Normalises, smooths (detected frames only) and fills a clip's landmarks [T, 468, 3]."""
  detected = np.asarray(detected, bool)
  faces = np.zeros(points.shape, np.float32)
  faces[detected] = face_normalize(points[detected])
  return smooth_track(faces, detected, alpha)
