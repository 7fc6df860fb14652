"""Articulation track + identity -> video frames: mouth/jaw warp, mouth cavity, head motion, camera.

The mouth rig places every FaceMesh landmark in face coordinates (origin between
the inner lip midpoints 13/14, u along the eye line, v toward the chin, unit =
outer eye-corner distance) and moves it by a displacement that is a pure
function of the five articulation channels (see `phonetics.CHANNELS`). The image
follows the landmarks by a piecewise-affine backward warp over one fixed
triangulation of the landmarks plus still anchors (Delaunay of the rest pose,
made once per speaker), composed with the head's affine motion: the whole frame
is one `cv2.warpAffine`, and only the box around the triangles that move is
resampled through the mesh (its map computed every `step` pixels and
interpolated: the map is continuous, so that costs a fraction of a pixel at
triangle edges). The inner-lip polygon is then painted as a mouth cavity (dark
throat, upper and lower teeth), because a warp alone would stretch the
closed-lip seam into a smear; with `lip_paint` the outer-lip polygon is first
filled with a lip colour (an edge between lips and skin). `Camera` then passes
each frame through the speaker's optics and sensor: blur, resolution, noise, JPEG.
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
_EYE_RIGHT, _EYE_LEFT = 33, 263
CHIN = 152
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
  if np.dot(landmarks[CHIN] - origin, v_axis) < 0:
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
  chin_v = max(v[CHIN], 1e-3)
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


def displacement(rig: MouthRig, articulation: np.ndarray, asymmetry: float = 0.0) -> np.ndarray:
  """Returns each landmark's image displacement in pixels for one frame's channels.  # [468, 2]

  asymmetry a: the mouth's image-right side (u > 0) moves (1 + a) times, the left (1 - a).
  """
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
  if asymmetry:
    side = 1.0 + asymmetry * np.clip(rig.u / rig.half_width, -1.0, 1.0)
    du, dv = du * side, dv * side
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


# Per-frame head motion (sums of slow sines): in-plane roll (degrees), scale, shift
# x/y (pixels), and the foreshortening of small yaw and pitch turns (relative width
# and height, <= 0), which extraction's roll and scale normalisation keeps.
MOTION_CHANNELS = ('degrees', 'scale', 'dx', 'dy', 'yaw', 'pitch')


def sample_head_motion(
  rng: np.random.Generator,
  num_frames: int,
  fps: float,
  max_degrees: float,
  max_scale: float,
  max_shift: float,
  max_turn: float = 0.0,
) -> np.ndarray:
  """Smooth small head motion per frame (MOTION_CHANNELS) as sums of slow sines.  # [T, 6]"""
  times = np.arange(num_frames) / fps
  amplitude = rng.uniform(0, 1, size=4) * np.array([max_degrees, max_scale, max_shift, max_shift])
  frequency = rng.uniform(0.2, 0.9, size=4)  # Hz: head sway, not tremor
  phase = rng.uniform(0, 2 * np.pi, size=4)
  motion = np.zeros((num_frames, len(MOTION_CHANNELS)))
  motion[:, :4] = amplitude * np.sin(2 * np.pi * frequency * times[:, None] + phase)
  motion[:, 1] += 1.0
  if max_turn > 0:
    turn = rng.uniform(0, 1, size=2) * max_turn
    turn_frequency = rng.uniform(0.2, 0.9, size=2)
    turn_phase = rng.uniform(0, 2 * np.pi, size=2)
    # A turn away from the camera only ever narrows the face: 1 - cos, not a sine.
    swing = 0.5 + 0.5 * np.sin(2 * np.pi * turn_frequency * times[:, None] + turn_phase)
    motion[:, 4:] = -turn * swing
  return motion


def head_affine(center: np.ndarray, motion: np.ndarray) -> np.ndarray:
  """Returns the 2x3 affine (identity image -> frame) of one frame's head motion (MOTION_CHANNELS)."""
  affine = cv2.getRotationMatrix2D(
    (float(center[0]), float(center[1])), float(motion[0]), float(motion[1])
  )
  if len(motion) > 4:
    # Foreshortening along the face's own axes, before the roll: about the same centre.
    affine[:, :2] = affine[:, :2] @ np.diag([1.0 + motion[4], 1.0 + motion[5]])
    affine[:, 2] = center - affine[:, :2] @ center
  affine[:, 2] += motion[2:4]
  return affine


def mesh_anchors(landmarks: np.ndarray, size: int) -> np.ndarray:
  """Still points around a face that pin the warp: a ring outside it and the frame's border.  # [K, 2]"""
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
  return np.concatenate([ring, border])


def triangulate(nodes: np.ndarray) -> np.ndarray:
  """The Delaunay triangles of points [N, 2], as node indices.  # [F, 3]"""
  return spatial.Delaunay(nodes).simplices


def warp_mesh(
  image: np.ndarray,
  source_nodes: np.ndarray,
  target_nodes: np.ndarray,
  simplices: np.ndarray,
  moving: np.ndarray,
  base: np.ndarray,
  step: int = 1,
) -> np.ndarray:
  """Piecewise-affine backward warp: each triangle at target_nodes shows the photo at source_nodes.

  Outside the triangles that have a moving corner (`moving` [N] bool) the map is the
  affine `base` (2x3, output pixel -> photo point), as it is inside the others when
  target_nodes are base's preimages of source_nodes. Only the box around the moving
  triangles is resampled through the mesh, its map computed every `step` pixels.
  Returns the warped image (same shape as `image`).
  """
  height, width = image.shape[:2]
  out = cv2.warpAffine(
    image,
    base,
    (width, height),
    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
    borderMode=cv2.BORDER_REPLICATE,
  )
  triangles = simplices[moving[simplices].any(axis=1)]  # [F, 3]
  if not len(triangles):
    return out
  corners = target_nodes[triangles]  # [F, 3, 2]
  homogeneous = np.concatenate([corners, np.ones(corners.shape[:2] + (1,))], axis=-1)  # [F, 3, 3]
  keep = np.abs(np.linalg.det(homogeneous)) > 1e-6
  triangles, corners, homogeneous = triangles[keep], corners[keep], homogeneous[keep]
  if not len(triangles):
    return out
  # [x y 1] @ coefficients[f] = the photo point shown at output pixel (x, y) of triangle f.
  coefficients = np.linalg.solve(homogeneous, source_nodes[triangles])  # [F, 3, 2]
  table = np.concatenate([coefficients, base.T[None]]).astype(
    np.float32
  )  # [F + 1, 3, 2]: last = outside
  x0, y0 = np.maximum(np.floor(corners.min(axis=(0, 1))).astype(int) - step, 0)
  x1 = min(int(np.ceil(corners[..., 0].max())) + step, width - 1)
  y1 = min(int(np.ceil(corners[..., 1].max())) + step, height - 1)
  if x0 > x1 or y0 > y1:
    return out
  # Coarse samples every `step` pixels from one cell before the box to one after it, so
  # that the box itself lies where _upsample interpolates (not where it extrapolates).
  half = (step - 1) / 2
  nx, ny = -(-(x1 - x0 + 1) // step) + 2, -(-(y1 - y0 + 1) // step) + 2  # samples across
  left, top = x0 - step + half, y0 - step + half  # pixel position of sample (0, 0)
  ids = np.full((ny, nx), len(triangles), np.int32)  # [ny, nx]
  scaled = np.round((corners - (left, top)) * (16.0 / step)).astype(np.int32)
  for index, triangle in enumerate(scaled):
    cv2.fillConvexPoly(ids, triangle, index, cv2.LINE_8, shift=4)
  chosen = table[ids]  # [ny, nx, 3, 2]
  # float32 throughout, as cv2.remap needs (numpy 2 would widen to left's float64).
  xs = (np.float32(left) + step * np.arange(nx, dtype=np.float32))[None, :, None]
  ys = (np.float32(top) + step * np.arange(ny, dtype=np.float32))[:, None, None]
  coarse = xs * chosen[..., 0, :] + ys * chosen[..., 1, :] + chosen[..., 2, :]  # [ny, nx, 2]
  fine = _upsample(coarse, step)[step : step + y1 - y0 + 1, step : step + x1 - x0 + 1]
  out[y0 : y1 + 1, x0 : x1 + 1] = cv2.remap(
    image, fine[..., 0], fine[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
  )
  return out


def _upsample(samples: np.ndarray, step: int) -> np.ndarray:
  """Bilinear interpolation of samples taken `step` pixels apart, at every pixel between them.

  samples [h, w, C] lie at pixel offsets step * i + (step - 1) / 2 from the first
  pixel of the output [step * h, step * w, C] (cv2.resize's pixel-centre convention),
  so the output's outer half-cell is extrapolated flat: callers cut it off.
  """
  if step == 1:
    return samples
  height, width = samples.shape[:2]
  return cv2.resize(samples, (step * width, step * height), interpolation=cv2.INTER_LINEAR)


# Pixels between the mesh map's samples in the frames of a clip (see warp_mesh).
FRAME_MAP_STEP = 2
# Spacing of the warp mesh's nodes off the lips (interocular units): the displacement
# there is smooth, so a sparser mesh draws the same image with a third of the triangles.
_MESH_SPACING = 0.11
_LIP_CONTOURS = UPPER_INNER + LOWER_INNER + UPPER_OUTER + LOWER_OUTER


def mesh_landmarks(rig: MouthRig) -> np.ndarray:
  """The landmarks that carry the warp: every lip landmark, others at least _MESH_SPACING apart.  # [M]"""
  points = np.stack([rig.u, rig.v], axis=1)  # [468, 2] interocular units
  lips = set(_LIP_CONTOURS) | set(np.flatnonzero(rig.lipness > 0.99).tolist())
  kept = sorted(lips)
  for index in np.argsort(-rig.lipness, kind='stable'):
    if index in lips:
      continue
    if np.min(np.linalg.norm(points[kept] - points[index], axis=1)) >= _MESH_SPACING:
      kept.append(int(index))
  return np.array(sorted(kept))


class FrameRenderer:
  """Renders one identity's frames; holds its rig, mesh and mouth colours."""

  def __init__(
    self,
    image: np.ndarray,
    landmarks: np.ndarray,
    asymmetry: float = 0.0,
    lip_paint: float = 0.0,
  ):
    """lip_paint: opacity of the lips' paint over the photo's own lips (0: none)."""
    self.image = image
    self.landmarks = landmarks
    self.asymmetry = asymmetry
    self.lip_paint = lip_paint
    self.rig = make_rig(landmarks)
    size = image.shape[0]
    self.anchors = mesh_anchors(landmarks, size)  # zero displacement
    self.mesh = mesh_landmarks(self.rig)  # [M]
    self.nodes = np.concatenate([landmarks[self.mesh], self.anchors])  # [N, 2] the rest pose
    # One triangulation for every frame: the rest pose's (the mouth moves, the mesh keeps its topology).
    self.simplices = triangulate(self.nodes)
    self.center = landmarks.mean(axis=0)
    # Painted teeth and throat take the face's light and colour cast (per BGR channel).
    cheeks = np.round(landmarks[[50, 280, 205, 425]]).astype(int).clip(0, size - 1)
    skin = image[cheeks[:, 1], cheeks[:, 0]].astype(np.float32).mean(axis=0)
    self.throat, self.teeth, self.lips = mouth_colours(skin)
    lips = np.round(landmarks[[37, 267, 84, 314, 0, 17]]).astype(int).clip(0, size - 1)
    self.lip_shadow = 0.5 * image[lips[:, 1], lips[:, 0]].astype(np.float32).mean(axis=0)
    self._exposure, self._exposed = 1.0, image

  def exposed(self, exposure: float) -> np.ndarray:
    """The photo at a clip's exposure (kept for the clip's frames)."""
    if exposure != self._exposure:
      self._exposure = exposure
      self._exposed = cv2.convertScaleAbs(self.image, alpha=exposure)
    return self._exposed

  def render(
    self, articulation: np.ndarray, motion: np.ndarray, exposure: float = 1.0
  ) -> tuple[np.ndarray, np.ndarray]:
    """Returns (frame BGR uint8 [S, S, 3], moved landmarks in frame pixels [468, 2])."""
    shift = displacement(self.rig, articulation, self.asymmetry)  # [468, 2]
    moved = self.landmarks + shift
    affine = head_affine(self.center, motion)
    frame_landmarks = moved @ affine[:, :2].T + affine[:, 2]  # [468, 2]
    nodes = np.concatenate(
      [frame_landmarks[self.mesh], self.anchors @ affine[:, :2].T + affine[:, 2]]
    )
    moving = np.zeros(len(nodes), bool)
    moving[: len(self.mesh)] = np.abs(shift[self.mesh]).max(axis=1) > 0.05
    frame = warp_mesh(
      self.exposed(exposure),
      self.nodes,
      nodes,
      self.simplices,
      moving,
      cv2.invertAffineTransform(affine),
      FRAME_MAP_STEP,
    )
    paint_mouth(
      frame,
      frame_landmarks,
      self.throat * exposure,
      self.teeth * exposure,
      self.lip_shadow * exposure,
      self.lips * exposure,
      self.lip_paint,
    )
    return frame, frame_landmarks


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
LIPS = np.array([100.0, 105.0, 170.0], np.float32)


def mouth_colours(skin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(throat, teeth, lips) BGR colours for a face whose cheeks show the BGR colour `skin`.

  The paint takes the face's light and colour cast, channel by channel, and only
  as much colour as the skin has: a grey photo gets a grey mouth, not a purple one.
  """
  tint = np.clip(skin / REFERENCE_SKIN, 0.3, 1.4)
  saturation = lambda bgr: np.ptp(bgr) / max(float(np.max(bgr)), 1.0)
  colourfulness = min(saturation(skin) / saturation(REFERENCE_SKIN), 1.0)

  def paint(colour):
    tinted = colour * tint
    return (tinted.mean() + colourfulness * (tinted - tinted.mean())).astype(np.float32)

  return paint(THROAT), paint(TEETH), paint(LIPS)


def paint_mouth(
  frame: np.ndarray,
  landmarks: np.ndarray,
  throat: np.ndarray,
  teeth: np.ndarray,
  lip_shadow: np.ndarray,
  lip_colour: np.ndarray | None = None,
  lip_paint: float = 0.0,
) -> None:
  """Paints the mouth in place: the lips, their meeting line, and inside them throat and teeth.

  lip_paint > 0: the outer lip contour is filled with lip_colour at that opacity, a
  sharp edge where lips meet skin (the contour a camera shows of real lips; an
  enlarged 25-pixel LFW crop has none for FaceMesh to follow). Only a window around
  the lips is touched (the paint plus the reach of its blurs), which is a small part
  of the frame and of the time a frame takes.
  """
  contours = UPPER_INNER + LOWER_INNER + (UPPER_OUTER + LOWER_OUTER if lip_paint > 0 else ())
  lips = landmarks[list(contours)]
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
    frame[y0:y1, x0:x1],
    landmarks - np.array([x0, y0]),
    gap,
    eyes,
    throat,
    teeth,
    lip_shadow,
    lip_colour,
    lip_paint,
  )


def _blend(frame: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
  """Paints colour [3] over frame [H, W, 3] uint8 in place at coverage alpha [H, W]."""
  alpha = alpha[..., None]
  frame[:] = np.clip(frame * (1 - alpha) + colour * alpha + 0.5, 0, 255).astype(np.uint8)


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
  lip_colour: np.ndarray | None,
  lip_paint: float,
) -> None:
  """paint_mouth on a window of the frame (a view; landmarks in the window's pixels)."""
  upper = landmarks[list(UPPER_INNER)]
  lower = landmarks[list(LOWER_INNER)]
  if lip_paint > 0:
    outer = landmarks[list(UPPER_OUTER + LOWER_OUTER[-2:0:-1])]
    _blend(frame, lip_colour, _polygon_alpha(frame.shape[:2], outer, 0.5) * lip_paint)
  seam_alpha = float(np.clip(1.0 - gap / (0.04 * eyes), 0.0, 1.0))
  if seam_alpha > 0:
    # Closed lips show a shadowed line where they meet, not the squeezed photo interior.
    seam = np.zeros(frame.shape[:2], np.uint8)
    midline = np.round(8 * 0.5 * (upper + lower)).astype(np.int32)
    cv2.polylines(seam, [midline], False, 255, _seam_width(eyes), cv2.LINE_AA, shift=3)
    _blend(
      frame, lip_shadow, cv2.GaussianBlur(seam, (0, 0), 0.5).astype(np.float32) / 255.0 * seam_alpha
    )
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


_NOISE_MARGIN = 24  # pixels: how far a clip's noise pattern shifts between frames


class Camera:
  """One clip's camera: blur, resolution loss, sensor noise, JPEG compression, in that order.

  The noise of a clip is one Gaussian pattern drawn at the clip's start, shifted by a
  random offset every frame: as independent frame to frame as fresh draws at the
  scale FaceMesh sees, for one draw a clip instead of one a frame.
  """

  def __init__(
    self,
    shape: tuple[int, int, int],
    blur_sigma: float,
    noise_sigma: float,
    jpeg_quality: int,
    resolution: float,
    rng: np.random.Generator,
  ):
    self.shape = shape
    self.blur_sigma = blur_sigma
    self.jpeg_quality = int(jpeg_quality)
    self.rng = rng
    height, width, channels = shape
    self.sensor = (max(8, round(width * resolution)), max(8, round(height * resolution)))
    self.noise = None
    if noise_sigma > 0:
      # OpenCV draws normal noise faster than numpy; seeded from the clip's rng, it is as
      # reproducible (for one OpenCV version: constraints.txt pins it).
      sensor_w, sensor_h = self.sensor
      self.noise = np.empty(
        (sensor_h + _NOISE_MARGIN, sensor_w + _NOISE_MARGIN, channels), np.int16
      )  # [H + M, W + M, C]
      cv2.setRNGSeed(int(rng.integers(2**31)))
      cv2.randn(self.noise, (0.0,) * channels, (noise_sigma,) * channels)

  def shoot(self, frame: np.ndarray) -> np.ndarray:
    """Passes one frame [H, W, 3] uint8 through the camera."""
    if self.blur_sigma > 0.05:
      frame = cv2.GaussianBlur(frame, (0, 0), self.blur_sigma)
    full = frame.shape[1], frame.shape[0]
    if self.sensor != full:
      frame = cv2.resize(frame, self.sensor, interpolation=cv2.INTER_AREA)
    if self.noise is not None:
      dx, dy = self.rng.integers(0, _NOISE_MARGIN + 1, size=2)
      height, width = frame.shape[:2]
      frame = cv2.add(frame, self.noise[dy : dy + height, dx : dx + width], dtype=cv2.CV_8U)
    if self.jpeg_quality < 100:
      ok, encoded = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
      if not ok:
        raise RuntimeError('OpenCV failed to JPEG-encode a frame')
      frame = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if self.sensor != full:
      frame = cv2.resize(frame, full, interpolation=cv2.INTER_LINEAR)
    return frame
