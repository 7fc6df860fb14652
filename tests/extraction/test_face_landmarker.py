"""The Tasks API's Face Landmarker as a tracker (facemesh), and finding its bundle (face_model)."""

import os
import pathlib
import re
import shutil
import socket
import zipfile

from extraction_media import carphone_path
import numpy as np
import pytest

from extraction import face_model
from extraction import facemesh
from extraction import native_stderr
from extraction import roi

# MediaPipe's published bundle, kept beside the repository for machines without internet.
BUNDLE = os.path.normpath(
  os.path.join(
    os.path.dirname(__file__), '..', '..', '..', 'shared', 'models', face_model.FILE_NAME
  )
)


@pytest.fixture(scope='module')
def frames():
  """carphone's first 60 frames [60, 144, 176, 3] RGB: a man talking, his mouth opening late."""
  import cv2

  capture, read = cv2.VideoCapture(carphone_path()), []
  while len(read) < 60:
    ok, frame = capture.read()
    assert ok
    read.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
  return np.stack(read)


def _tracked(clip, bundle=BUNDLE, mirror_average=False):
  """A fresh FaceLandmarkerTracker's (landmarks, detected) on a clip."""
  with native_stderr.silenced():
    with facemesh.FaceLandmarkerTracker(bundle, mirror_average=mirror_average) as tracker:
      return tracker.landmarks(clip)


def _mouth_opening(points):
  """Pixels between the inner lips' middle points (FaceMesh 13 and 14) per frame."""
  return np.linalg.norm(points[:, 13, :2] - points[:, 14, :2], axis=-1)


def test_the_landmarker_tracks_a_talking_face_and_its_lips_move(frames):
  points, detected = _tracked(frames)
  assert points.shape == (60, roi.NUM_FACEMESH_LANDMARKS, 3) and points.dtype == np.float32
  assert detected.all()
  height, width = frames.shape[1:3]
  assert (points[..., 0] > 0).all() and (points[..., 0] < width).all()
  assert (points[..., 1] > 0).all() and (points[..., 1] < height).all()
  opening = _mouth_opening(points)
  assert opening[:50].max() < 6 and opening[55:].max() > 12  # closed, then open


@pytest.mark.skipif(
  not facemesh.legacy_facemesh_installed(), reason='mediapipe >= 1 has no legacy FaceMesh'
)
def test_the_landmarker_places_the_mouth_where_facemesh_does(frames):
  clip = frames[30:]  # the mouth still, then opening
  new, _ = _tracked(clip)
  with native_stderr.silenced(), facemesh.FaceMeshTracker(mirror_average=False) as tracker:
    old, _ = tracker.landmarks(clip)
  lips = list(roi.ROI_INDICES)
  apart = np.linalg.norm((new - old)[:, lips, :2], axis=-1)
  assert apart.mean() < 1.0 and apart.max() < 4.0  # measured 0.6 px on average, 2.5 px at most
  assert np.abs(new - old)[:, lips, 2].mean() < 1.0  # z scaled as FaceMesh's is
  assert np.abs(_mouth_opening(new) - _mouth_opening(old)).max() < 3.0  # measured 1.7 px


def test_reset_makes_a_clip_independent_of_the_clip_before(frames):
  first, second = frames[:10], np.ascontiguousarray(frames[10:25, :, ::-1])
  alone, _ = _tracked(second)
  with (
    native_stderr.silenced(),
    facemesh.FaceLandmarkerTracker(BUNDLE, mirror_average=False) as tracker,
  ):
    tracker.landmarks(first)
    after, _ = tracker.landmarks(second)
    tracker.landmarks(first)
    carried_on = np.stack([tracker.track(frame) for frame in second])
  np.testing.assert_array_equal(after, alone)
  # Without the reset, MediaPipe goes on tracking the face where the first clip left it.
  assert np.abs(carried_on - alone).max() > 1.0


def test_mirror_average_is_the_mean_of_the_frames_and_their_flips_estimates(frames):
  clip = frames[:12]
  flipped = np.ascontiguousarray(clip[:, :, ::-1])
  averaged, found = _tracked(clip, mirror_average=True)
  plain, _ = _tracked(clip)
  of_flip, _ = _tracked(flipped)
  assert found.all()
  moved_back = of_flip[:, roi.mesh_mirror()].copy()
  moved_back[..., 0] = clip.shape[2] - moved_back[..., 0]
  np.testing.assert_allclose(averaged, 0.5 * (plain + moved_back), rtol=0, atol=1e-4)
  assert np.abs(plain - averaged).max() > 0.1  # not the plain estimate


def test_a_bundle_mediapipe_cannot_read_is_refused_with_its_name(tmp_path, frames):
  truncated = str(tmp_path / 'face_landmarker.task')
  with open(BUNDLE, 'rb') as f:
    head = f.read(100_000)
  with open(truncated, 'wb') as f:
    f.write(head)
  named = re.escape(truncated)
  with pytest.raises(face_model.FaceModelError, match=f'^{named}: MediaPipe cannot load it'):
    _tracked(frames[:1], bundle=truncated)
  with pytest.raises(face_model.FaceModelError, match=f'^{named}: not a MediaPipe model bundle'):
    face_model.resolve(truncated)


def _corrupt_copy(path):
  """A copy of the bundle with one byte of its landmark model changed; MediaPipe still loads it."""
  data = bytearray(open(BUNDLE, 'rb').read())
  data[1_500_000] ^= 0xFF
  with open(path, 'wb') as f:
    f.write(data)
  return str(path)


def _rezipped_copy(path, compression=zipfile.ZIP_STORED, members=None):
  """The bundle's members (or some of them) in a zip of their own: another, loadable bundle."""
  with zipfile.ZipFile(BUNDLE) as official, zipfile.ZipFile(path, 'w', compression) as bundle:
    for name in reversed(official.namelist()):
      if members is None or name in members:
        bundle.writestr(name, official.read(name))
  return str(path)


def test_a_damaged_or_wrong_bundle_a_user_names_is_refused_with_its_name(tmp_path):
  corrupt = _corrupt_copy(tmp_path / 'corrupt.task')
  with pytest.raises(
    face_model.FaceModelError,
    match=f'^{re.escape(corrupt)}: damaged bundle, face_landmarks_detector.tflite fails its',
  ):
    face_model.resolve(corrupt)
  detector_only = _rezipped_copy(tmp_path / 'detector.task', members=['face_detector.tflite'])
  with pytest.raises(face_model.FaceModelError, match='without face_landmarks_detector.tflite'):
    face_model.resolve(detector_only)
  compressed = _rezipped_copy(tmp_path / 'deflated.task', zipfile.ZIP_DEFLATED)
  with pytest.raises(face_model.FaceModelError, match='MediaPipe reads only uncompressed'):
    face_model.resolve(compressed)
  missing = str(tmp_path / 'missing.task')
  with pytest.raises(face_model.FaceModelError, match=f'^{re.escape(missing)}: no such file'):
    face_model.resolve(missing)


def _unreachable_url():
  """An http URL on this machine where nothing listens: refused at once, no network involved."""
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
  return f'http://127.0.0.1:{port}/{face_model.FILE_NAME}'


@pytest.fixture
def places(tmp_path, monkeypatch):
  """Official bundles at a user's path, at LIPJAX_FACE_MODEL's and in an XDG cache; no URL."""
  monkeypatch.setenv('no_proxy', '*')
  monkeypatch.setattr(face_model, 'URL', _unreachable_url())
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
  found = {
    'given': str(tmp_path / 'given.task'),
    'env': str(tmp_path / 'env.task'),
    'cache': face_model.cache_path(),
  }
  os.makedirs(os.path.dirname(found['cache']))
  for path in found.values():
    shutil.copy(BUNDLE, path)
  monkeypatch.setenv(face_model.ENV_VAR, found['env'])
  return found


def test_resolve_takes_the_given_path_then_the_environment_then_the_cache(places, monkeypatch):
  assert places['cache'] == os.path.join(
    os.environ['XDG_CACHE_HOME'], 'lipjax', 'face_landmarker.task'
  )
  assert face_model.resolve(places['given']) == places['given']
  assert face_model.resolve() == places['env']
  monkeypatch.setenv(face_model.ENV_VAR, '')
  assert face_model.resolve() == places['cache']
  assert face_model.digest(face_model.resolve()) == face_model.SHA256


def test_a_user_may_name_any_loadable_bundle_but_the_cache_holds_only_the_official_one(
  places, tmp_path, frames, monkeypatch
):
  own = _rezipped_copy(tmp_path / 'own.task')  # the same models, zipped in another order
  assert face_model.digest(own) != face_model.SHA256
  assert face_model.resolve(own) == own
  _, detected = _tracked(frames[:3], bundle=own)
  assert detected.all()
  shutil.copy(own, places['cache'])
  monkeypatch.delenv(face_model.ENV_VAR)
  with pytest.raises(face_model.FaceModelError) as raised:
    face_model.resolve()
  assert str(raised.value).startswith(
    f'{places["cache"]}: {os.path.getsize(own):,} bytes, SHA-256 {face_model.digest(own)[:12]}'
  )
  assert str(raised.value).endswith(
    f'(3,758,596 bytes, SHA-256 {face_model.SHA256}); delete it or pass --face_model'
  )


def test_with_nothing_cached_an_unreachable_url_says_where_to_put_the_bundle(places, monkeypatch):
  monkeypatch.delenv(face_model.ENV_VAR)
  os.remove(places['cache'])
  with pytest.raises(face_model.FaceModelError) as raised:
    face_model.resolve()
  message = str(raised.value)
  assert message.startswith(f'cannot download the face landmarker bundle from {face_model.URL} (')
  assert f'save it as {places["cache"]}, or pass --face_model PATH' in message
  assert os.listdir(os.path.dirname(places['cache'])) == []  # no partial file left


def test_the_bundle_is_downloaded_once_into_the_cache_and_checked(places, tmp_path, monkeypatch):
  # A file:// URL stands in for MediaPipe's: the same download code, no network.
  monkeypatch.delenv(face_model.ENV_VAR)
  os.remove(places['cache'])
  truncated = tmp_path / 'truncated.task'
  truncated.write_bytes(open(BUNDLE, 'rb').read()[:1000])
  monkeypatch.setattr(face_model, 'URL', truncated.as_uri())
  with pytest.raises(
    face_model.FaceModelError, match=f'^{re.escape(face_model.URL)}: downloaded 1,000 bytes, SHA-'
  ):
    face_model.resolve()
  assert os.listdir(os.path.dirname(places['cache'])) == []
  monkeypatch.setattr(face_model, 'URL', pathlib.Path(BUNDLE).absolute().as_uri())
  assert face_model.resolve() == places['cache']
  assert face_model.digest(places['cache']) == face_model.SHA256
  monkeypatch.setattr(face_model, 'URL', _unreachable_url())
  assert face_model.resolve() == places['cache']  # not downloaded again


def test_the_cache_follows_xdg_cache_home_or_defaults_to_home(tmp_path, monkeypatch):
  monkeypatch.setenv('HOME', str(tmp_path / 'home'))
  for unusable in ('', 'relative/cache'):
    monkeypatch.setenv('XDG_CACHE_HOME', unusable)
    assert face_model.cache_path() == str(tmp_path / 'home/.cache/lipjax/face_landmarker.task')
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
  assert face_model.cache_path() == str(tmp_path / 'xdg/lipjax/face_landmarker.task')


def test_digest_is_the_files_sha256(tmp_path):
  (tmp_path / 'abc').write_bytes(b'abc')
  expected = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
  assert face_model.digest(str(tmp_path / 'abc')) == expected
  assert face_model.digest(BUNDLE) == face_model.SHA256


# --- extraction with the landmarker --------------------------------------------------------------


def test_extraction_with_the_landmarker_reads_carphone_from_the_bundle_at_a_path(
  tmp_path, monkeypatch
):
  from extraction_media import write_clip

  from extraction import clip as clip_lib
  from extraction import pipeline
  from extraction import schema
  from extraction import sources

  # Nothing to fall back on: the bundle must come from the path given, and no download is tried
  # (the URL points at a closed local port, so a download would fail the run).
  monkeypatch.delenv(face_model.ENV_VAR, raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'empty-cache'))
  monkeypatch.setattr(face_model, 'URL', _unreachable_url())
  root = str(tmp_path / 'corpus')
  write_clip(root, 'HELLO', 'train', 'HELLO_00001', 'Text: HELLO\nStart: 1.0\nEnd: 2.0\n')
  write_clip(root, 'THERE', 'train', 'THERE_00001', 'Text: THERE\nStart: 0.2\nEnd: 0.8\n')
  settings = clip_lib.Settings(landmarks=clip_lib.LANDMARKER, mirror_average=False)
  out = str(tmp_path / 'data')
  report = pipeline.run(root, out, workers=1, progress=False, settings=settings, face_model=BUNDLE)
  assert report['written'] == 2 and report['failed'] == 0
  assert report['splits']['train']['face_detection_rate'] == 1.0
  recorded = schema.DatasetMeta.load(out).extraction
  assert recorded['settings']['landmarks'] == 'landmarker'
  assert recorded['face_model']['sha256'] == face_model.SHA256
  assert not os.path.exists(face_model.cache_path())
  # The legacy tracker's data set of the same clips is another data set: nothing is reused.
  legacy_settings = clip_lib.Settings(landmarks=clip_lib.FACEMESH)
  for clip in sources.discover(root):
    assert pipeline.cache_key(clip, legacy_settings) != pipeline.cache_key(
      clip, settings, face_model_sha256=face_model.SHA256
    )
  if facemesh.legacy_facemesh_installed():  # mediapipe < 1 runs it too
    legacy = pipeline.run(root, out, workers=1, progress=False, settings=legacy_settings)
    assert legacy['frames_processed'] > 0


def test_a_corrupt_bundle_on_the_command_line_is_one_line_naming_it(tmp_path):
  from commands import last_line
  from commands import run_module
  from extraction_media import write_clip

  root = str(tmp_path / 'corpus')
  write_clip(root, 'HELLO', 'train', 'HELLO_00001', 'Text: HELLO\nStart: 1.0\nEnd: 2.0\n')
  write_clip(root, 'THERE', 'train', 'THERE_00001', 'Text: THERE\nStart: 0.2\nEnd: 0.8\n')
  damaged = _corrupt_copy(tmp_path / 'damaged.task')
  result = run_module(
    'extraction',
    '--input',
    root,
    '--out',
    str(tmp_path / 'data'),
    '--landmarks',
    'landmarker',
    '--face_model',
    damaged,
  )
  assert result.returncode == 2, result.stderr[-2000:]
  line = last_line(result)
  assert line.startswith(f'extraction: error: {damaged}: ') and 'Traceback' not in result.stderr
  assert not os.path.exists(tmp_path / 'data' / 'dataset_info.json')
