"""Face normalisation, smoothing and gap filling on small hand-checked arrays."""

import numpy as np
import pytest

from extraction import normalize
from extraction import roi


def _face(angle=0.0, scale=100.0, shift=(300.0, 200.0)):
  """A 468-point 'face': a grid of points with the eye corners on a horizontal line."""
  rng = np.random.default_rng(0)
  points = rng.uniform(-0.5, 0.5, (468, 3))
  points[roi.RIGHT_EYE_OUTER] = (-0.3, -0.2, 0.0)
  points[roi.LEFT_EYE_OUTER] = (0.3, -0.2, 0.0)
  points[0] = (-0.5, -0.5, 0)
  points[1] = (0.5, 0.5, 0)
  c, s = np.cos(angle), np.sin(angle)
  xy = points[:, :2] @ np.array([[c, s], [-s, c]]) * scale + shift
  return np.concatenate([xy, points[:, 2:] * scale], -1)[None].astype(np.float32)


def test_face_normalize_is_invariant_to_roll_scale_and_position():
  base = normalize.face_normalize(_face())
  moved = normalize.face_normalize(_face(angle=0.3, scale=37.0, shift=(50.0, 90.0)))
  np.testing.assert_allclose(base, moved, atol=1e-5)


def test_face_normalize_maps_face_onto_unit_box_with_level_eyes():
  out = normalize.face_normalize(_face(angle=-0.4))[0]
  assert out.min() >= 0 and out.max() <= 1
  assert np.isclose(out[:, :2].max() - out[:, :2].min(), 1.0, atol=1e-6)
  assert np.isclose(out[roi.RIGHT_EYE_OUTER, 1], out[roi.LEFT_EYE_OUTER, 1], atol=1e-6)
  assert out[roi.RIGHT_EYE_OUTER, 0] < out[roi.LEFT_EYE_OUTER, 0]


def test_ema_smooth_hand_computed():
  x = np.array([0.0, 1.0, 1.0, 0.0])
  # s0 = 0; s1 = .7; s2 = .7 + .3 * .7 = .91; s3 = .3 * .91 = .273
  np.testing.assert_allclose(normalize.ema_smooth(x, 0.7), [0.0, 0.7, 0.91, 0.273])
  np.testing.assert_array_equal(normalize.ema_smooth(x, 1.0), x)
  with pytest.raises(ValueError):
    normalize.ema_smooth(x, 0.0)


def test_fill_missing_interpolates_inside_and_holds_at_ends():
  x = np.array([[0.0], [9.0], [2.0], [9.0], [4.0], [9.0]])
  detected = np.array([False, True, True, False, True, False])
  x[1, 0] = 1.0
  out = normalize.fill_missing(x, detected)
  np.testing.assert_allclose(out[:, 0], [1.0, 1.0, 2.0, 3.0, 4.0, 4.0])
  with pytest.raises(ValueError):
    normalize.fill_missing(x, np.zeros(6, bool))


def test_normalize_track_smooths_only_detected_frames():
  faces = np.concatenate([_face(), _face(), _face(scale=50.0)], 0)
  faces[1] = 0.0  # garbage where no face was found
  out = normalize.normalize_track(faces, np.array([True, False, True]), alpha=0.7)
  reference = normalize.face_normalize(_face())[0]
  np.testing.assert_allclose(out[0], reference, atol=1e-6)
  np.testing.assert_allclose(out[1], reference, atol=1e-6)  # filled between equal neighbours
