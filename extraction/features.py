"""Per-frame action-unit and geometric features from face-normalised landmarks.

Every feature is a ratio of landmark distances (so it does not depend on image
size), mapped linearly from a fixed range [lo, hi] onto [0, 1] and clipped:
    value = clip((raw - lo) / (hi - lo), 0, 1).
`raw` is computed on the face-normalised coordinates of all 468 FaceMesh
landmarks (see `normalize.py`), in which the face spans about 1 unit and the
eye line is horizontal. The ranges were set so that a neutral face sits inside
them and the extremes of a real talking face (carphone clip, astronaut photo)
and of the synthetic talkers do not saturate.

The tables below are the one definition of each feature: its name, what it
measures (the docstring of its raw function), and its [lo, hi] range.
Action units (AU) follow FACS numbering for the lower face; they are geometric
proxies for the muscle actions, not a trained AU detector.
"""

import numpy as np

from extraction import roi

# FaceMesh indices used below (all 468-landmark indices).
_MOUTH_RIGHT, _MOUTH_LEFT = 61, 291  # outer lip corners
_UPPER_OUTER, _LOWER_OUTER = 0, 17  # outer lip midline, top and bottom
_UPPER_INNER, _LOWER_INNER = 13, 14  # inner lip midline
_INNER_RIGHT, _INNER_LEFT = 78, 308  # inner lip corners
_CHIN = 152
_NOSE_TIP = roi.NOSE_TIP
_SUBNASALE = roi.SUBNASALE
_EYE_RIGHT, _EYE_LEFT = roi.RIGHT_EYE_OUTER, roi.LEFT_EYE_OUTER
_CHEEK_RIGHT, _CHEEK_LEFT = 50, 280  # cheek apex below the eyes
_EYE_LOWER_RIGHT, _EYE_LOWER_LEFT = 145, 374  # lower eyelids
_NOSE_WING_RIGHT, _NOSE_WING_LEFT = 129, 358  # alar base
_NASOLABIAL_RIGHT, _NASOLABIAL_LEFT = 206, 426
_UPPER_LIP_OUTER_RIGHT, _UPPER_LIP_OUTER_LEFT = 39, 269
_LOWER_LIP_OUTER_RIGHT, _LOWER_LIP_OUTER_LEFT = 181, 405
_JAW_RIGHT, _JAW_LEFT = 172, 397  # jaw angle
_OUTER_LIP_CONTOUR = (
  61,
  185,
  40,
  39,
  37,
  0,
  267,
  269,
  270,
  409,
  291,
  375,
  321,
  405,
  314,
  17,
  84,
  181,
  91,
  146,
)
_INNER_LIP_CONTOUR = (
  78,
  191,
  80,
  81,
  82,
  13,
  312,
  311,
  310,
  415,
  308,
  324,
  318,
  402,
  317,
  14,
  87,
  178,
  88,
  95,
)


def _dist(face, a, b):
  """Euclidean distance in the image plane between landmarks a and b.  # [T]"""
  return np.linalg.norm(face[:, a, :2] - face[:, b, :2], axis=-1)


def _polygon_area(face, contour):
  """Shoelace area of a closed landmark contour in the image plane.  # [T]"""
  xy = face[:, list(contour), :2]
  x, y = xy[..., 0], xy[..., 1]
  return 0.5 * np.abs(np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1))


def _interocular(face):
  """Outer eye-corner distance: the face's scale unit."""
  return _dist(face, _EYE_RIGHT, _EYE_LEFT)


def _mouth_width(face):
  """Outer lip-corner distance over interocular distance."""
  return _dist(face, _MOUTH_RIGHT, _MOUTH_LEFT) / _interocular(face)


def _lip_gap(face):
  """Inner lip midline gap over interocular distance."""
  return _dist(face, _UPPER_INNER, _LOWER_INNER) / _interocular(face)


def _outer_height(face):
  """Outer lip midline height over interocular distance."""
  return _dist(face, _UPPER_OUTER, _LOWER_OUTER) / _interocular(face)


def _jaw_opening(face):
  """Subnasale-to-chin distance over interocular distance."""
  return _dist(face, _SUBNASALE, _CHIN) / _interocular(face)


def _protrusion(face):
  """Lip midline depth in front of the mouth corners (z toward camera), over interocular."""
  lips_z = 0.5 * (face[:, _UPPER_OUTER, 2] + face[:, _LOWER_OUTER, 2])
  corners_z = 0.5 * (face[:, _MOUTH_RIGHT, 2] + face[:, _MOUTH_LEFT, 2])
  return (corners_z - lips_z) / _interocular(face)


def _corner_height(face):
  """Mouth-corner height above the inner lip midline, over interocular (up is positive)."""
  corners_y = 0.5 * (face[:, _MOUTH_RIGHT, 1] + face[:, _MOUTH_LEFT, 1])
  mid_y = 0.5 * (face[:, _UPPER_INNER, 1] + face[:, _LOWER_INNER, 1])
  return (mid_y - corners_y) / _interocular(face)


def _upper_lip_thickness(face):
  """Upper lip vermilion height at the midline (outer to inner), over interocular."""
  return _dist(face, _UPPER_OUTER, _UPPER_INNER) / _interocular(face)


def _lower_lip_thickness(face):
  """Lower lip vermilion height at the midline (inner to outer), over interocular."""
  return _dist(face, _LOWER_INNER, _LOWER_OUTER) / _interocular(face)


def _raw_features(face):
  """All raw (unscaled) features by name for face-normalised landmarks [T, 468, 3]."""
  io = _interocular(face)
  width = _mouth_width(face)
  gap = _lip_gap(face)
  outer = _outer_height(face)
  jaw = _jaw_opening(face)
  upper_thick = _upper_lip_thickness(face)
  lower_thick = _lower_lip_thickness(face)
  inner_area = _polygon_area(face, _INNER_LIP_CONTOUR) / io**2
  outer_area = _polygon_area(face, _OUTER_LIP_CONTOUR) / io**2
  corner_up = _corner_height(face)
  cheek_to_eye = (
    0.5
    * (_dist(face, _CHEEK_RIGHT, _EYE_LOWER_RIGHT) + _dist(face, _CHEEK_LEFT, _EYE_LOWER_LEFT))
    / io
  )
  nose_to_lip = _dist(face, _SUBNASALE, _UPPER_OUTER) / io
  wing_to_eye = (
    0.5
    * (
      _dist(face, _NOSE_WING_RIGHT, _EYE_LOWER_RIGHT)
      + _dist(face, _NOSE_WING_LEFT, _EYE_LOWER_LEFT)
    )
    / io
  )
  nasolabial = (
    0.5
    * (_dist(face, _NASOLABIAL_RIGHT, _MOUTH_RIGHT) + _dist(face, _NASOLABIAL_LEFT, _MOUTH_LEFT))
    / io
  )
  chin_to_lip = _dist(face, _LOWER_OUTER, _CHIN) / io
  protrusion = _protrusion(face)
  roundness = gap / np.maximum(_dist(face, _INNER_RIGHT, _INNER_LEFT) / io, 1e-6)
  upper_outer_w = _dist(face, _UPPER_LIP_OUTER_RIGHT, _UPPER_LIP_OUTER_LEFT) / io
  lower_outer_w = _dist(face, _LOWER_LIP_OUTER_RIGHT, _LOWER_LIP_OUTER_LEFT) / io
  jaw_width = _dist(face, _JAW_RIGHT, _JAW_LEFT) / io
  right_half = _dist(face, _MOUTH_RIGHT, _UPPER_INNER)
  left_half = _dist(face, _MOUTH_LEFT, _UPPER_INNER)
  symmetry = np.minimum(right_half, left_half) / np.maximum(np.maximum(right_half, left_half), 1e-6)
  corner_angle = np.arctan2(corner_up, 0.5 * width)
  return {
    # Action units (FACS lower face).
    'AU06_cheek_raiser': -cheek_to_eye,
    'AU09_nose_wrinkler': -wing_to_eye,
    'AU10_upper_lip_raiser': -nose_to_lip,
    'AU11_nasolabial_deepener': -nasolabial,
    'AU12_lip_corner_puller': corner_up + width,
    'AU13_sharp_lip_puller': corner_up,
    'AU14_dimpler': width - upper_outer_w,
    'AU15_lip_corner_depressor': -corner_up,
    'AU16_lower_lip_depressor': lower_outer_w * gap,
    'AU17_chin_raiser': -chin_to_lip,
    'AU18_lip_pucker': -width,
    'AU20_lip_stretcher': width - 0.5 * jaw_width,
    'AU22_lip_funneler': protrusion + roundness,
    'AU23_lip_tightener': -(upper_thick + lower_thick),
    'AU24_lip_pressor': -(upper_thick + lower_thick) - gap,
    'AU25_lips_part': gap,
    'AU26_jaw_drop': _dist(face, _UPPER_INNER, _CHIN) / io,
    'AU27_mouth_stretch': inner_area,
    # Geometry.
    'mouth_width': width,
    'mouth_height': outer,
    'mouth_aspect': gap / np.maximum(width, 1e-6),
    'jaw_opening': jaw,
    'lip_protrusion': protrusion,
    'mouth_area': outer_area,
    'symmetry': symmetry,
    'upper_lip_thickness': upper_thick,
    'lower_lip_thickness': lower_thick,
    'corner_angle': corner_angle,
  }


# name -> (lo, hi): raw range mapped onto [0, 1].
AU_RANGES = {
  'AU06_cheek_raiser': (-0.45, -0.15),
  'AU09_nose_wrinkler': (-0.55, -0.25),
  'AU10_upper_lip_raiser': (-0.35, -0.10),
  'AU11_nasolabial_deepener': (-0.45, -0.10),
  'AU12_lip_corner_puller': (0.45, 1.05),
  'AU13_sharp_lip_puller': (-0.08, 0.10),
  'AU14_dimpler': (0.10, 0.65),
  'AU15_lip_corner_depressor': (-0.10, 0.08),
  'AU16_lower_lip_depressor': (0.0, 0.30),
  'AU17_chin_raiser': (-0.65, -0.20),
  'AU18_lip_pucker': (-0.95, -0.45),
  'AU20_lip_stretcher': (-0.20, 0.35),
  'AU22_lip_funneler': (0.0, 1.4),
  'AU23_lip_tightener': (-0.35, -0.05),
  'AU24_lip_pressor': (-0.90, -0.05),
  'AU25_lips_part': (0.0, 0.60),
  'AU26_jaw_drop': (0.35, 1.00),
  'AU27_mouth_stretch': (0.0, 0.25),
}
GEOMETRY_RANGES = {
  'mouth_width': (0.45, 0.95),
  'mouth_height': (0.10, 0.90),
  'mouth_aspect': (0.0, 1.0),
  'jaw_opening': (0.50, 1.30),
  'lip_protrusion': (-0.10, 0.25),
  'mouth_area': (0.0, 0.45),
  'symmetry': (0.5, 1.0),
  'upper_lip_thickness': (0.0, 0.20),
  'lower_lip_thickness': (0.0, 0.25),
  'corner_angle': (-0.6, 0.6),
}
AU_NAMES = tuple(AU_RANGES)  # 18
GEOMETRY_NAMES = tuple(GEOMETRY_RANGES)  # 10


def _scale(raw, names, ranges):
  """Stacks the named raw features and maps each from its range onto [0, 1]."""
  lo = np.array([ranges[n][0] for n in names], np.float32)
  hi = np.array([ranges[n][1] for n in names], np.float32)
  stacked = np.stack([raw[n] for n in names], axis=-1).astype(np.float32)
  return np.clip((stacked - lo) / (hi - lo), 0.0, 1.0)


def compute_features(face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Returns (au [T, 18], geometry [T, 10]) in [0, 1] from normalised landmarks [T, 468, 3]."""
  if face.ndim != 3 or face.shape[1:] != (roi.NUM_FACEMESH_LANDMARKS, 3):
    raise ValueError(f'expected face landmarks [T, 468, 3], got {face.shape}')
  raw = _raw_features(face.astype(np.float64))
  return _scale(raw, AU_NAMES, AU_RANGES), _scale(raw, GEOMETRY_NAMES, GEOMETRY_RANGES)
