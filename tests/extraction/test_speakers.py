"""Speakers drawn per speaker, LFW faces, the camera and the fast mesh warp (extraction/synthetic)."""

import dataclasses

from commands import run_module
import cv2
import numpy as np
import pytest

from extraction import face_model
from extraction import facemesh
from extraction.synthetic import dataset
from extraction.synthetic import faces
from extraction.synthetic import render


@pytest.fixture(scope='module')
def hopper():
  """Grace Hopper's face crop."""
  detector = facemesh.FaceLandmarkerDetector(face_model.resolve())
  try:
    return faces.crop_face('hopper', dict(faces.builtin_photos())['hopper'], detector)
  finally:
    detector.close()


def test_variants_are_drawn_per_speaker_in_geometry_camera_and_style(hopper):
  settings = dataset.Settings(words=('BAT',), variants_per_face=3, lfw_faces=0)
  identities, _, variations = dataset.build_identities(settings, None)
  mine = [i for i in identities if i.source == 'hopper']
  assert [i.speaker for i in mine] == ['hopper-0', 'hopper-1', 'hopper-2']
  assert all(i.person == 'hopper' and i.kind == faces.KIND_PHOTO for i in mine)
  # Variant 0 is the photo as taken, with a speaking style of its own.
  np.testing.assert_array_equal(mine[0].image, hopper.image)
  assert mine[0].style != faces.NEUTRAL_STYLE
  styles = {i.style for i in mine}
  assert len(styles) == 3
  for identity in mine[1:]:
    v = variations[identity.speaker]
    assert v['mouth_width'] != 1.0 and v['yaw'] != 0.0 and identity.zoom == v['zoom']
    assert not np.array_equal(identity.image, hopper.image)
    # FaceMesh sees the new geometry: the mouth's width against the eyes moved.
    ratio = lambda lm: np.linalg.norm(lm[61] - lm[291]) / np.linalg.norm(lm[33] - lm[263])
    assert abs(ratio(identity.landmarks) - ratio(hopper.landmarks)) > 0.005


def test_speaking_style_shapes_the_track_and_the_timing(hopper):
  settings = dataset.Settings()
  detector = facemesh.FaceLandmarkerDetector(face_model.resolve())
  try:
    neutral = faces.make_identity(hopper, 'h-0', faces.NO_VARIATION, detector)
  finally:
    detector.close()
  slow_and_small = dataclasses.replace(
    neutral, style=faces.Style(gains=(0.5, 0.5, 1.0, 1.0, 1.0), rate=0.8)
  )
  clips = {}
  for name, identity in (('neutral', neutral), ('styled', slow_and_small)):
    rng = np.random.default_rng(1)
    clips[name] = dataset.render_clip(
      dataset.make_renderer(identity), identity, 'WATCH', settings, rng
    )
  jaw = lambda clip: clip.articulation[:, 0].max()
  assert jaw(clips['styled']) == pytest.approx(0.5 * jaw(clips['neutral']), rel=0.1)
  duration = lambda clip: clip.end - clip.start
  assert duration(clips['styled']) == pytest.approx(duration(clips['neutral']) / 0.8, rel=1e-6)


def test_asymmetry_moves_one_side_of_the_mouth_more(hopper):
  rig = render.make_rig(hopper.landmarks)
  shift = render.displacement(rig, [1.0, 0.9, 0.0, 0.0, 0.0], asymmetry=0.3)  # [468, 2]
  right, left = np.linalg.norm(shift[291]), np.linalg.norm(shift[61])
  if rig.u[291] < 0:
    right, left = left, right
  assert right > 1.3 * left


def test_lfw_faces_are_people_of_their_own_kind():
  photos = faces.lfw_photos(3)
  assert [n for n, _ in photos] == ['lfw-00', 'lfw-01', 'lfw-02']
  assert photos[0][1].shape == (400, 400, 3) and photos[0][1].dtype == np.uint8
  assert faces.photo_kind('lfw-01') == faces.KIND_LFW and faces.builtin_person('lfw-01') == 'lfw-01'
  assert faces.photo_kind('carphone75') == faces.KIND_VIDEO
  assert faces.photo_kind('hopper') == faces.KIND_PHOTO
  settings = dataset.Settings(words=('BAT',), lfw_faces=2)
  identities, _, _ = dataset.build_identities(settings, None)
  lfw = [i.speaker for i in identities if i.kind == faces.KIND_LFW]
  assert len(lfw) == 2 and len(identities) == 7 + 2
  with pytest.raises(ValueError, match='--lfw_faces'):
    faces.lfw_photos(101)


def test_camera_resolution_loses_detail_and_noise_is_seeded():
  frame = np.zeros((64, 64, 3), np.uint8)
  frame[::2] = 255  # one-pixel stripes: gone at half the resolution
  sharp = render.Camera(frame.shape, 0.0, 0.0, 100, 1.0, np.random.default_rng(0)).shoot(frame)
  soft = render.Camera(frame.shape, 0.0, 0.0, 100, 0.5, np.random.default_rng(0)).shoot(frame)
  np.testing.assert_array_equal(sharp, frame)
  assert soft.shape == frame.shape and np.ptp(soft[8:56, 8:56].astype(int)) < 40
  noisy = [
    render.Camera(frame.shape, 0.0, 4.0, 100, 1.0, np.random.default_rng(3)) for _ in range(2)
  ]
  shots = [[camera.shoot(frame) for _ in range(3)] for camera in noisy]
  np.testing.assert_array_equal(shots[0], shots[1])  # same seed, same frames
  assert not np.array_equal(shots[0][0], shots[0][1])  # and new noise every frame


def test_warp_map_every_second_pixel_matches_every_pixel(hopper):
  renderer = render.FrameRenderer(hopper.image, hopper.landmarks)
  articulation = np.array([1.0, 0.9, 0.1, 0.0, 0.0])
  motion = np.array([2.0, 1.02, 3.0, -2.0, -0.04, 0.0])
  shift = render.displacement(renderer.rig, articulation)
  moved = hopper.landmarks + shift
  affine = render.head_affine(renderer.center, motion)
  nodes = np.concatenate([moved[renderer.mesh], renderer.anchors]) @ affine[:, :2].T + affine[:, 2]
  moving = np.zeros(len(nodes), bool)
  moving[: len(renderer.mesh)] = True
  frames = [
    render.warp_mesh(
      hopper.image,
      renderer.nodes,
      nodes,
      renderer.simplices,
      moving,
      cv2.invertAffineTransform(affine),
      step,
    )
    for step in (1, 2)
  ]
  difference = np.abs(frames[0].astype(int) - frames[1].astype(int))
  # On Hopper's mesh as the Face Landmarker places it: mean 0.24 of 255, 99th percentile 4
  # (the bars were 0.2 and 3 for the legacy FaceMesh's mesh of the same photo).
  assert difference.mean() < 0.3 and np.percentile(difference, 99) <= 4
  # Outside the moving box the frame is the head's affine image of the photo.
  still = cv2.warpAffine(hopper.image, affine, (256, 256), borderMode=cv2.BORDER_REPLICATE)
  assert np.abs(frames[1][:20].astype(int) - still[:20].astype(int)).max() <= 1
  # And the mouth opened: the box was resampled through the mesh.
  assert np.abs(frames[1].astype(int) - still.astype(int)).max() > 50


@pytest.mark.slow  # renders pictures through the command line
def test_contact_sheet_of_one_photos_speakers(tmp_path):
  path = str(tmp_path / 'sheet.png')
  argv = ['contact-sheet', '--out', path, '--photo', 'takeo', '--variants', '3', '--rows', '3']
  argv += ['--lfw_faces', '0', '--words', 'BAT', '--step', '10']
  result = run_module('extraction.synthetic', *argv)
  assert result.returncode == 0, result.stderr[-2000:]
  sheet = cv2.imread(path)
  assert sheet.shape[0] == 3 * 128
  assert run_module('extraction.synthetic', *argv[:4], 'nobody', *argv[5:]).returncode == 2
