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
from scipy import spatial

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
JAW_DROP = 0.20  # chin/lower lip travel of a wide-open jaw
LOWER_LIP_OPEN = 0.07  # lower lip travel beyond the jaw
UPPER_LIP_OPEN = 0.05  # upper lip raise
SPREAD_WIDTH = 0.14  # relative mouth-width change at spread +-1
ROUND_WIDTH = 0.12  # relative mouth-width loss at protrusion 1
PROTRUDE_THICK = 0.35  # relative lip-thickness gain at protrusion 1
PRESS_THIN = 0.30  # relative lip-thickness loss at closure 1
CORNER_LIFT = 0.04  # corner raise of a full spread (a slight smile)
CLOSURE_GAIN = 1.5  # smoothed closure >= 1/1.5 closes the lips completely


@dataclasses.dataclass(frozen=True)
class MouthRig:
  """Per-identity constants of the mouth warp (all per-landmark arrays are [468])."""

  origin: np.ndarray  # [2] pixels
  axes: np.ndarray  # [2, 2] rows: u (eye line), v (toward the chin), unit vectors
  scale: float  # pixels per interocular unit
  u: np.ndarray
  v: np.ndarray
  lower: np.ndarray  # 1 moves with the lower lip/jaw, 0 with the upper lip
  lipness: np.ndarray  # 1 on the lips, decaying over the skin around them
  dragness: np.ndarray  # like lipness with a wider reach: skin dragged sideways
  profile: np.ndarray  # opening profile across the mouth: 1 mid, 0 at corners
  jaw_weight: np.ndarray
  line: np.ndarray  # v of the lip meeting line at each landmark's u
  base_gap: np.ndarray  # inner-lip gap of the photo at each landmark's u
  half_width: float  # mouth corner to midline, interocular units
  landmarks: np.ndarray  # [468, 2] pixels


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
  outside = np.array(
    [-cv2.pointPolygonTest(outer, (float(a), float(b)), True) for a, b in zip(u, v)]
  )  # >0 outside the lips, interocular units
  outside = np.maximum(outside, 0.0)
  lipness = np.exp(-((outside / 0.10) ** 2))
  dragness = np.exp(-((outside / 0.16) ** 2))

  width = 0.025 + 0.25 * np.maximum(np.abs(u) - half_width, 0.0)
  lower = 1.0 / (1.0 + np.exp(-np.clip((v - line) / width, -50, 50)))
  inside = outside == 0
  lower[inside] = (v[inside] > line[inside]).astype(np.float64)
  lower[list(UPPER_OUTER + UPPER_INNER)] = 0.0
  lower[list(LOWER_OUTER + LOWER_INNER)] = 1.0
  lower[list(_CORNERS)] = 0.5

  face_half_width = 0.5 * (abs(u[_CHEEK_RIGHT]) + abs(u[_CHEEK_LEFT]))
  chin_v = max(v[_CHIN], 1e-3)
  jaw_weight = np.clip(1.0 - (u / face_half_width) ** 2, 0.0, 1.0) * (
    0.8 + 0.4 * np.clip(v / chin_v, 0.0, 1.0)
  )
  profile = np.sqrt(np.clip(1.0 - (u / half_width) ** 2, 0.0, 1.0))
  return MouthRig(
    origin,
    np.stack([u_axis, v_axis]),
    scale,
    u,
    v,
    lower,
    lipness,
    dragness,
    profile,
    jaw_weight,
    line,
    base_gap,
    float(half_width),
    landmarks,
  )


def displacement(rig: MouthRig, articulation: np.ndarray) -> np.ndarray:
  """Returns each landmark's image displacement in pixels for one frame's channels.  # [468, 2]"""
  jaw, lip_open, spread, protrusion, closure = (float(a) for a in articulation)
  close = min(1.0, CLOSURE_GAIN * max(closure, 0.0))
  lower, upper, lip = rig.lower, 1.0 - rig.lower, rig.lipness
  jaw_drop = JAW_DROP * jaw * rig.jaw_weight
  dv = lower * (
    jaw_drop * (1.0 - close * lip)
    + lip * ((1.0 - close) * LOWER_LIP_OPEN * lip_open * rig.profile - close * 0.5 * rig.base_gap)
  ) + upper * lip * (
    -(1.0 - close) * UPPER_LIP_OPEN * lip_open * rig.profile + close * 0.5 * rig.base_gap
  )
  thickness = PROTRUDE_THICK * protrusion - PRESS_THIN * close
  dv += lip * thickness * (rig.v - rig.line)
  corner = np.clip(np.abs(rig.u) / rig.half_width, 0.0, 1.0) ** 2
  dv -= lip * CORNER_LIFT * max(spread, 0.0) * corner
  width = SPREAD_WIDTH * spread - ROUND_WIDTH * protrusion
  du = rig.dragness * width * rig.u
  shift = rig.scale * (du[:, None] * rig.axes[0] + dv[:, None] * rig.axes[1])
  if close > 0:
    # Closed lips meet exactly: each inner upper point and the lower point facing it
    # go to their midpoint, so the photo's own mouth interior gets no pixels.
    upper_i, lower_i = list(UPPER_INNER[1:-1]), list(LOWER_INNER[1:-1])
    moved = rig.landmarks + shift
    # A hair of separation keeps the two lips distinct vertices of the triangulation.
    hair = 0.3 * rig.axes[1]
    meet = 0.5 * (moved[upper_i] + moved[lower_i])
    shift[upper_i] += close * (meet - hair - moved[upper_i])
    shift[lower_i] += close * (meet + hair - moved[lower_i])
  return shift


def lip_gap(landmarks: np.ndarray) -> np.ndarray:
  """Inner-lip midline gap (13-14) over outer eye-corner distance (33-263).  # [...]"""
  gap = np.linalg.norm(landmarks[..., _INNER_TOP, :2] - landmarks[..., _INNER_BOTTOM, :2], axis=-1)
  eyes = np.linalg.norm(landmarks[..., _EYE_RIGHT, :2] - landmarks[..., _EYE_LEFT, :2], axis=-1)
  return gap / eyes


def sample_head_motion(
  rng: np.random.Generator,
  num_frames: int,
  fps: float,
  max_degrees: float,
  max_scale: float,
  max_shift: float,
) -> np.ndarray:
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
  affine = cv2.getRotationMatrix2D(
    (float(center[0]), float(center[1])), float(motion[0]), float(motion[1])
  )
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
    border = np.array(
      [
        (x, y)
        for x in (-size, 0, size / 2, size, 2 * size)
        for y in (-size, 0, size / 2, size, 2 * size)
      ],
      np.float64,
    )
    self.anchors = np.concatenate([ring, border])  # zero displacement
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    self.grid = np.stack([xs, ys, np.ones_like(xs)], axis=-1)  # [S, S, 3] homogeneous
    # Painted teeth and throat take the face's light and colour cast (per BGR channel).
    cheeks = np.round(landmarks[[50, 280, 205, 425]]).astype(int).clip(0, size - 1)
    skin = image[cheeks[:, 1], cheeks[:, 0]].astype(np.float32).mean(axis=0)
    self.throat, self.teeth = mouth_colours(skin)
    lips = np.round(landmarks[[37, 267, 84, 314, 0, 17]]).astype(int).clip(0, size - 1)
    self.lip_shadow = 0.5 * image[lips[:, 1], lips[:, 0]].astype(np.float32).mean(axis=0)

  def render(self, articulation: np.ndarray, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (frame BGR uint8 [S, S, 3], moved landmarks in frame pixels [468, 2])."""
    shift = displacement(self.rig, articulation)  # [468, 2]
    moved = self.landmarks + shift
    field = displacement_field(moved, shift, self.anchors, self.image.shape[:2])
    affine = head_affine(self.landmarks.mean(axis=0), motion)
    points = (self.grid @ cv2.invertAffineTransform(affine).T).astype(np.float32)  # [S, S, 2]
    # Backward map: frame pixel -> unmoved head (inverse motion) -> photo (minus the warp).
    field_at = cv2.remap(
      field,
      points[..., 0],
      points[..., 1],
      cv2.INTER_LINEAR,
      borderMode=cv2.BORDER_CONSTANT,
      borderValue=0,
    )
    source = points - field_at
    frame = cv2.remap(
      self.image, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    frame_landmarks = moved @ affine[:, :2].T + affine[:, 2]
    paint_mouth(frame, frame_landmarks, self.throat, self.teeth, self.lip_shadow)
    return frame, frame_landmarks


def displacement_field(
  moved: np.ndarray, shift: np.ndarray, anchors: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
  """Piecewise-affine displacement at every pixel of the moved face.  # [H, W, 2] float32

  Linear inside each triangle of the Delaunay triangulation of the moved
  landmarks plus fixed anchors; only triangles with a moving corner are drawn
  (the others are zero). Pixel p of the frame shows photo pixel p - field[p].
  """
  field = np.zeros(shape + (2,), np.float32)
  nodes = np.concatenate([moved, anchors])
  values = np.concatenate([shift, np.zeros_like(anchors)])
  moving = np.linalg.norm(values, axis=1) > 0.02
  if not moving.any():
    return field
  simplices = spatial.Delaunay(nodes).simplices
  simplices = simplices[moving[simplices].any(axis=1)]  # [F, 3]
  corners = np.concatenate([nodes[simplices], np.ones(simplices.shape + (1,))], axis=-1)
  keep = np.abs(np.linalg.det(corners)) > 1e-6
  simplices, corners = simplices[keep], corners[keep]
  coefficients = np.linalg.solve(corners, values[simplices])  # [F, 3, 2]: [x y 1] @ c
  face_id = np.full(shape, -1, np.int32)
  for index, triangle in enumerate(np.round(nodes[simplices] * 16).astype(np.int32)):
    cv2.fillConvexPoly(face_id, triangle, index, cv2.LINE_8, shift=4)
  ys, xs = np.nonzero(face_id >= 0)
  c = coefficients[face_id[ys, xs]]  # [P, 3, 2]
  field[ys, xs] = xs[:, None] * c[:, 0] + ys[:, None] * c[:, 1] + c[:, 2]
  return field


def _polygon_alpha(shape, polygon: np.ndarray, soften: float) -> np.ndarray:
  """Anti-aliased coverage in [0, 1] of a polygon (float pixels).  # [H, W]"""
  mask = np.zeros(shape, np.uint8)
  cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
  alpha = mask.astype(np.float32) / 255.0
  return cv2.GaussianBlur(alpha, (0, 0), soften) if soften > 0 else alpha


# BGR colours of the painted mouth on a face whose cheeks have REFERENCE_SKIN's colour.
REFERENCE_SKIN = np.array([120.0, 150.0, 195.0], np.float32)
THROAT = np.array([48.0, 42.0, 105.0], np.float32)
TEETH = np.array([200.0, 215.0, 230.0], np.float32)


def mouth_colours(skin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(throat, teeth) BGR colours for a face whose cheeks show the BGR colour `skin`.

  The paint takes the face's light and colour cast, channel by channel, and only
  as much colour as the skin has: a grey photo gets a grey mouth, not a purple one.
  """
  tint = np.clip(skin / REFERENCE_SKIN, 0.3, 1.4)
  saturation = lambda bgr: np.ptp(bgr) / max(float(np.max(bgr)), 1.0)
  colourfulness = min(saturation(skin) / saturation(REFERENCE_SKIN), 1.0)

  def paint(colour):
    tinted = colour * tint
    return (tinted.mean() + colourfulness * (tinted - tinted.mean())).astype(np.float32)

  return paint(THROAT), paint(TEETH)


def paint_mouth(
  frame: np.ndarray,
  landmarks: np.ndarray,
  throat: np.ndarray,
  teeth: np.ndarray,
  lip_shadow: np.ndarray,
) -> None:
  """Paints the mouth in place: the lips' meeting line, and inside them throat and teeth.

  Only a window around the inner lips is touched (the paint plus the reach of its
  blurs), which is a small part of the frame and of the time a frame takes.
  """
  lips = landmarks[list(UPPER_INNER + LOWER_INNER)]
  gap = float(np.linalg.norm(landmarks[_INNER_TOP] - landmarks[_INNER_BOTTOM]))
  eyes = float(np.linalg.norm(landmarks[_EYE_LEFT] - landmarks[_EYE_RIGHT]))
  # The widest blur (the throat's depth, 4 sigma) and the seam's width.
  margin = int(np.ceil(4 * _throat_sigma(gap) + _seam_width(eyes))) + 4
  height, width = frame.shape[:2]
  x0, y0 = np.maximum(np.floor(lips.min(axis=0)).astype(int) - margin, 0)
  x1, y1 = np.ceil(lips.max(axis=0)).astype(int) + margin + 1
  if x0 >= min(x1, width) or y0 >= min(y1, height):
    return  # the mouth is outside the frame
  _paint_mouth_window(
    frame[y0:y1, x0:x1], landmarks - np.array([x0, y0]), gap, eyes, throat, teeth, lip_shadow
  )


def _throat_sigma(gap: float) -> float:
  """Std (pixels) of the blur that darkens the throat away from lips `gap` pixels apart."""
  return max(0.25 * gap, 0.8)


def _seam_width(eyes: float) -> int:
  """Width (pixels) of the line where closed lips meet, on a face `eyes` pixels between eye corners."""
  return max(1, int(round(0.015 * eyes)))


def _paint_mouth_window(
  frame: np.ndarray,
  landmarks: np.ndarray,
  gap: float,
  eyes: float,
  throat_colour: np.ndarray,
  teeth: np.ndarray,
  lip_shadow: np.ndarray,
) -> None:
  """paint_mouth on a window of the frame (a view; landmarks in the window's pixels)."""
  upper = landmarks[list(UPPER_INNER)]
  lower = landmarks[list(LOWER_INNER)]
  seam_alpha = float(np.clip(1.0 - gap / (0.04 * eyes), 0.0, 1.0))
  if seam_alpha > 0:
    # Closed lips show a shadowed line where they meet, not the squeezed photo interior.
    seam = np.zeros(frame.shape[:2], np.uint8)
    midline = np.round(8 * 0.5 * (upper + lower)).astype(np.int32)
    cv2.polylines(seam, [midline], False, 255, _seam_width(eyes), cv2.LINE_AA, shift=3)
    alpha = (cv2.GaussianBlur(seam, (0, 0), 0.5).astype(np.float32) / 255.0 * seam_alpha)[..., None]
    frame[:] = np.clip(frame * (1 - alpha) + lip_shadow * alpha + 0.5, 0, 255).astype(np.uint8)
  if gap < 0.5:
    return
  cavity = _polygon_alpha(frame.shape[:2], np.concatenate([upper, lower[::-1]]), 0.6)
  down = landmarks[_INNER_BOTTOM] - landmarks[_INNER_TOP]
  down /= max(np.linalg.norm(down), 1e-6)
  across = np.linspace(-1, 1, len(UPPER_INNER))
  bulge = np.sqrt(np.clip(1 - across**2, 0, 1))[:, None]
  upper_teeth_depth = min(0.055 * eyes, 0.45 * gap)
  lower_teeth_depth = min(0.035 * eyes, 0.25 * gap)
  upper_teeth = _polygon_alpha(
    frame.shape[:2], np.concatenate([upper, (upper + upper_teeth_depth * bulge * down)[::-1]]), 0.8
  )
  lower_teeth = _polygon_alpha(
    frame.shape[:2], np.concatenate([lower, (lower - lower_teeth_depth * bulge * down)[::-1]]), 0.8
  )
  # The throat darkens away from the lips: a blurred copy of the cavity is ~1 deep inside.
  depth = cv2.GaussianBlur(cavity, (0, 0), _throat_sigma(gap))[..., None]
  throat = throat_colour * (1.0 - 0.6 * depth)  # [H, W, 3] BGR
  teeth_shade = 1.0 - 0.2 * depth  # teeth recede into the mouth's shadow
  out = frame.astype(np.float32)
  out = out * (1 - cavity[..., None]) + throat * cavity[..., None]
  upper_alpha = (cavity * upper_teeth * 0.9)[..., None]
  out = out * (1 - upper_alpha) + teeth * teeth_shade * upper_alpha
  lower_alpha = (cavity * lower_teeth * 0.6)[..., None]
  out = out * (1 - lower_alpha) + 0.75 * teeth * teeth_shade * lower_alpha
  frame[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def camera(
  frame: np.ndarray,
  blur_sigma: float,
  noise_sigma: float,
  jpeg_quality: int,
  rng: np.random.Generator,
) -> np.ndarray:
  """Passes a frame through the speaker's camera: blur, sensor noise, JPEG compression."""
  if blur_sigma > 0.05:
    frame = cv2.GaussianBlur(frame, (0, 0), blur_sigma)
  if noise_sigma > 0:
    # OpenCV draws normal noise faster than numpy (a draw per pixel of every frame); seeded
    # from the clip's rng, it is as reproducible (for one OpenCV version: constraints.txt pins it).
    noise = np.empty(frame.shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(2**31)))
    cv2.randn(noise, (0.0,) * frame.shape[2], (noise_sigma,) * frame.shape[2])
    noisy = frame.astype(np.float32) + noise
    frame = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
  if jpeg_quality < 100:
    ok, encoded = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
      raise RuntimeError('OpenCV failed to JPEG-encode a frame')
    frame = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
  return frame
