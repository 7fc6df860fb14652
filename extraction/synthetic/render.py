"""Articulation track + identity -> video frames: mouth/jaw warp, mouth cavity, head motion, camera.

The mouth rig places every FaceMesh landmark in face coordinates (origin between
the inner lip midpoints 13/14, u along the eye line, v toward the chin, unit =
outer eye-corner distance) and moves it by a displacement that is a pure
function of the five articulation channels (see `phonetics.CHANNELS`). The image
follows the landmarks by a piecewise-affine backward warp over the Delaunay
triangulation of the moved landmarks plus fixed anchors, composed with the
head's similarity motion into one `cv2.remap`. The inner-lip polygon is then
painted as a mouth cavity (dark throat, upper and lower teeth), because a warp
alone would stretch the closed-lip seam into a smear.
"""

import dataclasses

import cv2
import numpy as np
from scipy import interpolate, spatial

# FaceMesh contours (468-landmark indices), corner to corner.
UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
_CORNERS = (61, 291, 78, 308)
_EYE_RIGHT, _EYE_LEFT, _CHIN = 33, 263, 152
_CHEEK_RIGHT, _CHEEK_LEFT = 234, 454
_INNER_TOP, _INNER_BOTTOM = 13, 14

# Displacement gains at channel value 1, in interocular units.
JAW_DROP = 0.20        # chin/lower lip travel of a wide-open jaw
LOWER_LIP_OPEN = 0.07  # lower lip travel beyond the jaw
UPPER_LIP_OPEN = 0.05  # upper lip raise
SPREAD_WIDTH = 0.14    # relative mouth-width change at spread +-1
ROUND_WIDTH = 0.12     # relative mouth-width loss at protrusion 1
PROTRUDE_THICK = 0.35  # relative lip-thickness gain at protrusion 1
PRESS_THIN = 0.30      # relative lip-thickness loss at closure 1
CORNER_LIFT = 0.04     # corner raise of a full spread (a slight smile)
CLOSURE_GAIN = 1.5     # smoothed closure >= 1/1.5 closes the lips completely


@dataclasses.dataclass(frozen=True)
class MouthRig:
  """Per-identity constants of the mouth warp (all per-landmark arrays are [468])."""
  origin: np.ndarray  # [2] pixels
  axes: np.ndarray    # [2, 2] rows: u (eye line), v (toward the chin), unit vectors
  scale: float        # pixels per interocular unit
  u: np.ndarray
  v: np.ndarray
  lower: np.ndarray     # 1 moves with the lower lip/jaw, 0 with the upper lip
  lipness: np.ndarray   # 1 on the lips, decaying over the skin around them
  dragness: np.ndarray  # like lipness with a wider reach: skin dragged sideways
  profile: np.ndarray   # opening profile across the mouth: 1 mid, 0 at corners
  jaw_weight: np.ndarray
  line: np.ndarray      # v of the lip meeting line at each landmark's u
  base_gap: np.ndarray  # inner-lip gap of the photo at each landmark's u
  half_width: float     # mouth corner to midline, interocular units


def _inner_lines(u, v):
  """Returns (upper(u'), lower(u')) inner-lip v as functions of u' (linear, clamped)."""
  def along(contour):
    order = np.argsort(u[list(contour)])
    us, vs = u[list(contour)][order], v[list(contour)][order]
    return lambda q: np.interp(q, us, vs)
  return along(UPPER_INNER), along(LOWER_INNER)


def make_rig(landmarks: np.ndarray) -> MouthRig:
  """Builds the mouth rig of one face from its FaceMesh landmarks [468, 2] (pixels)."""
  eye_line = landmarks[_EYE_LEFT] - landmarks[_EYE_RIGHT]
  scale = float(np.linalg.norm(eye_line))
  u_axis = eye_line / scale
  v_axis = np.array([-u_axis[1], u_axis[0]])
  origin = 0.5 * (landmarks[_INNER_TOP] + landmarks[_INNER_BOTTOM])
  if np.dot(landmarks[_CHIN] - origin, v_axis) < 0:
    v_axis = -v_axis
  rel = (landmarks - origin) / scale
  u, v = rel @ u_axis, rel @ v_axis
  upper_of, lower_of = _inner_lines(u, v)
  line = 0.5 * (upper_of(u) + lower_of(u))
  base_gap = np.maximum(lower_of(u) - upper_of(u), 0.0)
  half_width = 0.5 * (abs(u[61]) + abs(u[291]))

  outer = np.array([(u[i], v[i]) for i in UPPER_OUTER + LOWER_OUTER[-2:0:-1]], np.float32)
  outside = np.array([-cv2.pointPolygonTest(outer, (float(a), float(b)), True)
                      for a, b in zip(u, v)])  # >0 outside the lips, interocular units
  outside = np.maximum(outside, 0.0)
  lipness = np.exp(-(outside / 0.10) ** 2)
  dragness = np.exp(-(outside / 0.16) ** 2)

  width = 0.025 + 0.25 * np.maximum(np.abs(u) - half_width, 0.0)
  lower = 1.0 / (1.0 + np.exp(-np.clip((v - line) / width, -50, 50)))
  inside = outside == 0
  lower[inside] = (v[inside] > line[inside]).astype(np.float64)
  lower[list(UPPER_OUTER + UPPER_INNER)] = 0.0
  lower[list(LOWER_OUTER + LOWER_INNER)] = 1.0
  lower[list(_CORNERS)] = 0.5

  face_half_width = 0.5 * (abs(u[_CHEEK_RIGHT]) + abs(u[_CHEEK_LEFT]))
  chin_v = max(v[_CHIN], 1e-3)
  jaw_weight = (np.clip(1.0 - (u / face_half_width) ** 2, 0.0, 1.0)
                * (0.8 + 0.4 * np.clip(v / chin_v, 0.0, 1.0)))
  profile = np.sqrt(np.clip(1.0 - (u / half_width) ** 2, 0.0, 1.0))
  return MouthRig(origin, np.stack([u_axis, v_axis]), scale, u, v, lower, lipness,
                  dragness, profile, jaw_weight, line, base_gap, float(half_width))


def displacement(rig: MouthRig, articulation: np.ndarray) -> np.ndarray:
  """Returns each landmark's image displacement in pixels for one frame's channels.  # [468, 2]"""
  jaw, lip_open, spread, protrusion, closure = (float(a) for a in articulation)
  close = min(1.0, CLOSURE_GAIN * max(closure, 0.0))
  lower, upper, lip = rig.lower, 1.0 - rig.lower, rig.lipness
  jaw_drop = JAW_DROP * jaw * rig.jaw_weight
  dv = (lower * (jaw_drop * (1.0 - close * lip)
                 + lip * ((1.0 - close) * LOWER_LIP_OPEN * lip_open * rig.profile
                          - close * 0.5 * rig.base_gap))
        + upper * lip * (-(1.0 - close) * UPPER_LIP_OPEN * lip_open * rig.profile
                         + close * 0.5 * rig.base_gap))
  thickness = PROTRUDE_THICK * protrusion - PRESS_THIN * close
  dv += lip * thickness * (rig.v - rig.line)
  corner = np.clip(np.abs(rig.u) / rig.half_width, 0.0, 1.0) ** 2
  dv -= lip * CORNER_LIFT * max(spread, 0.0) * corner
  width = SPREAD_WIDTH * spread - ROUND_WIDTH * protrusion
  du = rig.dragness * width * rig.u
  return rig.scale * (du[:, None] * rig.axes[0] + dv[:, None] * rig.axes[1])


def lip_gap(landmarks: np.ndarray) -> np.ndarray:
  """Inner-lip midline gap (13-14) over outer eye-corner distance (33-263).  # [...]"""
  gap = np.linalg.norm(landmarks[..., _INNER_TOP, :2] - landmarks[..., _INNER_BOTTOM, :2], axis=-1)
  eyes = np.linalg.norm(landmarks[..., _EYE_RIGHT, :2] - landmarks[..., _EYE_LEFT, :2], axis=-1)
  return gap / eyes


def sample_head_motion(rng: np.random.Generator, num_frames: int, fps: float,
                       max_degrees: float, max_scale: float, max_shift: float) -> np.ndarray:
  """Smooth small head motion per frame: (degrees, scale, dx, dy) as sums of slow sines.  # [T, 4]"""
  times = np.arange(num_frames) / fps
  amplitude = rng.uniform(0, 1, size=4) * np.array([max_degrees, max_scale, max_shift, max_shift])
  frequency = rng.uniform(0.2, 0.9, size=4)  # Hz: head sway, not tremor
  phase = rng.uniform(0, 2 * np.pi, size=4)
  motion = amplitude * np.sin(2 * np.pi * frequency * times[:, None] + phase)
  motion[:, 1] += 1.0
  return motion


def head_affine(center: np.ndarray, motion: np.ndarray) -> np.ndarray:
  """Returns the 2x3 similarity (identity image -> frame) of one (degrees, scale, dx, dy)."""
  affine = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(motion[0]),
                                   float(motion[1]))
  affine[:, 2] += motion[2:4]
  return affine


class FrameRenderer:
  """Renders one identity's frames; holds its rig, anchors and sampling grid."""

  def __init__(self, image: np.ndarray, landmarks: np.ndarray):
    self.image = image
    self.landmarks = landmarks
    self.rig = make_rig(landmarks)
    size = image.shape[0]
    center = landmarks.mean(axis=0)
    extent = np.max(np.abs(landmarks - center))
    angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    ring = center + 1.35 * extent * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    border = np.array([(x, y) for x in (-size, 0, size / 2, size, 2 * size)
                       for y in (-size, 0, size / 2, size, 2 * size)], np.float64)
    self.anchors = np.concatenate([ring, border])  # zero displacement
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    self.grid = np.stack([xs, ys, np.ones_like(xs)], axis=-1)  # [S, S, 3] homogeneous
    skin = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[
        tuple(np.clip(landmarks[[50, 280, 205, 425]].astype(int)[:, ::-1].T, 0, size - 1))]
    self.brightness = float(np.clip(np.mean(skin) / 170.0, 0.35, 1.3))

  def render(self, articulation: np.ndarray, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (frame BGR uint8 [S, S, 3], moved landmarks in frame pixels [468, 2])."""
    shift = displacement(self.rig, articulation)  # [468, 2]
    moved = self.landmarks + shift
    affine = head_affine(self.landmarks.mean(axis=0), motion)
    inverse = cv2.invertAffineTransform(affine)
    points = self.grid @ inverse.T  # [S, S, 2]: identity-image point under each frame pixel
    source = points.copy()
    active = np.linalg.norm(shift, axis=1) > 0.02
    if active.any():
      reach = 0.45 * self.rig.scale
      lo = np.minimum(moved[active].min(0), self.landmarks[active].min(0)) - reach
      hi = np.maximum(moved[active].max(0), self.landmarks[active].max(0)) + reach
      box = np.all((points >= lo) & (points <= hi), axis=-1)
      nodes = np.concatenate([moved, self.anchors])
      values = np.concatenate([shift, np.zeros_like(self.anchors)])
      field = interpolate.LinearNDInterpolator(spatial.Delaunay(nodes), values, fill_value=0.0)
      source[box] -= field(points[box])
    frame = cv2.remap(self.image, source[..., 0].astype(np.float32),
                      source[..., 1].astype(np.float32), cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    frame_landmarks = moved @ affine[:, :2].T + affine[:, 2]
    paint_mouth(frame, frame_landmarks, self.brightness)
    return frame, frame_landmarks


def _polygon_alpha(shape, polygon: np.ndarray, soften: float) -> np.ndarray:
  """Anti-aliased coverage in [0, 1] of a polygon (float pixels).  # [H, W]"""
  mask = np.zeros(shape, np.uint8)
  cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
  alpha = mask.astype(np.float32) / 255.0
  return cv2.GaussianBlur(alpha, (0, 0), soften) if soften > 0 else alpha


def paint_mouth(frame: np.ndarray, landmarks: np.ndarray, brightness: float) -> None:
  """Paints the mouth cavity inside the inner lips, in place: throat, upper and lower teeth."""
  upper = landmarks[list(UPPER_INNER)]
  lower = landmarks[list(LOWER_INNER)]
  gap = float(np.linalg.norm(landmarks[_INNER_TOP] - landmarks[_INNER_BOTTOM]))
  if gap < 0.5:
    return
  cavity = _polygon_alpha(frame.shape[:2], np.concatenate([upper, lower[::-1]]), 0.6)
  down = landmarks[_INNER_BOTTOM] - landmarks[_INNER_TOP]
  down /= max(np.linalg.norm(down), 1e-6)
  eyes = float(np.linalg.norm(landmarks[_EYE_LEFT] - landmarks[_EYE_RIGHT]))
  across = np.linspace(-1, 1, len(UPPER_INNER))
  bulge = np.sqrt(np.clip(1 - across ** 2, 0, 1))[:, None]
  upper_teeth_depth = min(0.055 * eyes, 0.45 * gap)
  lower_teeth_depth = min(0.035 * eyes, 0.25 * gap)
  upper_teeth = _polygon_alpha(
      frame.shape[:2], np.concatenate([upper, (upper + upper_teeth_depth * bulge * down)[::-1]]), 0.8)
  lower_teeth = _polygon_alpha(
      frame.shape[:2], np.concatenate([lower, (lower - lower_teeth_depth * bulge * down)[::-1]]), 0.8)
  throat = np.array([40, 35, 85], np.float32) * brightness  # BGR: dark red-brown
  teeth = np.array([200, 215, 228], np.float32) * brightness
  out = frame.astype(np.float32)
  out = out * (1 - cavity[..., None]) + throat * cavity[..., None]
  out = out * (1 - (cavity * upper_teeth)[..., None]) + teeth * (cavity * upper_teeth)[..., None]
  lower_alpha = (cavity * lower_teeth * 0.7)[..., None]
  out = out * (1 - lower_alpha) + 0.8 * teeth * lower_alpha
  frame[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def camera(frame: np.ndarray, blur_sigma: float, noise_sigma: float, jpeg_quality: int,
           rng: np.random.Generator) -> np.ndarray:
  """Passes a frame through the speaker's camera: blur, sensor noise, JPEG compression."""
  if blur_sigma > 0.05:
    frame = cv2.GaussianBlur(frame, (0, 0), blur_sigma)
  if noise_sigma > 0:
    noisy = frame.astype(np.float32) + rng.normal(0.0, noise_sigma, frame.shape).astype(np.float32)
    frame = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
  if jpeg_quality < 100:
    ok, encoded = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
      raise RuntimeError('OpenCV failed to JPEG-encode a frame')
    frame = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
  return frame
