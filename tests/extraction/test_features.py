"""Action-unit and geometric features: layout, range and direction."""

import numpy as np
import pytest

from extraction import features
from extraction import normalize


@pytest.fixture(scope='module')
def carphone_face():
  from extraction_media import carphone_path

  from extraction import face_model
  from extraction import facemesh
  from extraction import video

  frames, _ = video.read_frames(carphone_path())
  with facemesh.FaceLandmarkerTracker(face_model.resolve()) as tracker:
    points, detected = tracker.landmarks(frames[::4])
  return normalize.normalize_track(points, detected, 0.7)


def test_layout_is_18_action_units_and_10_geometric_features():
  assert len(features.AU_NAMES) == 18 and len(set(features.AU_NAMES)) == 18
  assert len(features.GEOMETRY_NAMES) == 10
  assert all(lo < hi for lo, hi in {**features.AU_RANGES, **features.GEOMETRY_RANGES}.values())


def test_features_lie_in_unit_interval_and_vary_on_a_real_talker(carphone_face):
  au, geometry = features.compute_features(carphone_face)
  assert au.shape == (len(carphone_face), 18) and geometry.shape == (len(carphone_face), 10)
  both = np.concatenate([au, geometry], 1)
  assert both.min() >= 0 and both.max() <= 1 and both.dtype == np.float32
  lips_part = au[:, features.AU_NAMES.index('AU25_lips_part')]
  assert lips_part.max() - lips_part.min() > 0.3  # he talks: the mouth opens and closes


def test_opening_the_mouth_raises_lip_part_and_aspect(carphone_face):
  face = carphone_face[:1].copy()
  opened = face.copy()
  # Move the inner lower lip (14) and outer lower lip (17) down by a tenth of the face.
  opened[:, [14, 17], 1] += 0.1
  au, geometry = features.compute_features(np.concatenate([face, opened]))
  assert (
    au[1, features.AU_NAMES.index('AU25_lips_part')]
    > au[0, features.AU_NAMES.index('AU25_lips_part')]
  )
  assert (
    geometry[1, features.GEOMETRY_NAMES.index('mouth_aspect')]
    > geometry[0, features.GEOMETRY_NAMES.index('mouth_aspect')]
  )
  assert geometry[1, features.GEOMETRY_NAMES.index('mouth_width')] == pytest.approx(
    geometry[0, features.GEOMETRY_NAMES.index('mouth_width')]
  )


def test_rejects_wrong_shape():
  with pytest.raises(ValueError, match=r'\[T, 468, 3\]'):
    features.compute_features(np.zeros((2, 88, 3)))
