"""Extraction from landmark files beside the videos (--landmarks file) and the generator's own."""

import json
import os

from extraction_media import write_manifest
import numpy as np
import pytest

from extraction import clip as clip_lib
from extraction import landmark_files
from extraction import pipeline
from extraction import roi
from extraction import video
from extraction.synthetic import dataset
from extraction.synthetic.faces import carphone_path

# The seven built-in photos' speakers (5 train, 1 val, 1 test), one clip of each of 2 words.
SMALL = dataset.Settings(
  words=('BAT', 'WATCH'),
  seed=3,
  clips_per_speaker=1,
  lfw_faces=0,
  val_speakers=1,
  test_speakers=1,
)
FILE = clip_lib.Settings(landmarks=clip_lib.LANDMARK_FILE)


def _read(data_dir, split):
  from lipjax import data_source

  source = data_source.SplitSource(data_dir, split)
  return source.__getitems__(range(len(source)))


def _reasons(report) -> dict:
  rows = [s for split in report['splits'].values() for s in split['skipped']]
  return {s['video_id']: s['reason'] for s in rows}


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
  out_dir = str(tmp_path_factory.mktemp('landmarks') / 'set')
  dataset.generate(out_dir, SMALL, workers=1, save_landmarks=True)
  return out_dir


def test_generated_landmarks_are_extracted_without_facemesh(generated, tmp_path):
  with open(os.path.join(generated, 'generator.json')) as f:
    assert json.load(f)['landmark_files'] is True
  with open(os.path.join(generated, 'manifest.csv')) as f:
    rows = f.read().splitlines()[1:]
  data_dir = str(tmp_path / 'data')
  report = pipeline.run(
    os.path.join(generated, 'manifest.csv'), data_dir, workers=1, settings=FILE, progress=False
  )
  assert report['written'] == len(rows) and report['failed'] == 0
  assert report['settings']['landmarks'] == 'file'
  # Each example is extraction's own steps over the rendered landmarks of its video's frames
  # (z: none rendered, so flat), not what FaceMesh finds in them.
  mesh_dir = str(tmp_path / 'mesh')
  pipeline.run(os.path.join(generated, 'manifest.csv'), mesh_dir, workers=1, progress=False)
  for split in ('train', 'test'):
    meshed = {e['video_id']: e for e in _read(mesh_dir, split)}
    for example in _read(data_dir, split):
      relpath = next(r.split(',')[0] for r in rows if example['video_id'] in r)
      rendered = np.load(landmark_files.path_for(os.path.join(generated, relpath)))
      assert rendered.shape == (SMALL.num_frames, roi.NUM_FACEMESH_LANDMARKS, 2)
      points = np.concatenate([rendered, np.zeros_like(rendered[..., :1])], -1)
      faces = np.stack([clip_lib.face_frame(p) for p in points])
      expected, _, _ = clip_lib.window_arrays(faces, np.ones(len(faces), bool), FILE)
      np.testing.assert_allclose(example['landmarks'], expected, atol=1e-6)
      assert np.ptp(example['landmarks'][..., 2]) == 0.0
      found = meshed[example['video_id']]['landmarks']
      assert np.abs(found[..., :2] - expected[..., :2]).max() > 1e-3  # FaceMesh's differ
      np.testing.assert_array_equal(
        example['speech_mask'], meshed[example['video_id']]['speech_mask']
      )


def test_landmark_files_do_not_change_the_videos(generated, tmp_path):
  plain = str(tmp_path / 'plain')
  dataset.generate(plain, SMALL, workers=1)
  with open(os.path.join(plain, 'manifest.csv')) as f:
    rows = [r.split(',')[0] for r in f.read().splitlines()[1:]]
  for relpath in rows:
    for folder in (plain, generated):
      assert os.path.exists(landmark_files.path_for(os.path.join(folder, relpath))) == (
        folder == generated
      )
    with (
      open(os.path.join(plain, relpath), 'rb') as a,
      open(os.path.join(generated, relpath), 'rb') as b,
    ):
      assert a.read() == b.read(), relpath


def _carphone_frames():
  """Frames carphone decodes to at its own rate."""
  window = video.read_window(carphone_path(), 25.0, 10**6, lambda n: 0)
  return window.source_frames


def test_a_resampled_window_reads_the_rows_of_its_own_frames(tmp_path):
  """carphone is not 25 fps: the window's frames index the file's rows at the video's rate."""
  manifest = write_manifest(str(tmp_path / 'v'), ['a.mp4,HELLO,train,s,1.0,1.6'])
  path = os.path.join(os.path.dirname(manifest), 'a.mp4')
  rows = _carphone_frames()
  points = np.zeros((rows, roi.NUM_FACEMESH_LANDMARKS, 3), np.float32)
  points[:, :, 0] = np.arange(rows)[:, None]  # each row's x: its frame index
  points[:, :, 1] = np.arange(roi.NUM_FACEMESH_LANDMARKS)
  points[:, :, 2] = 7.0
  landmark_files.write(path, points)
  clip = clip_lib.read_clip(path, FILE, intervals=[(1.0, 1.6)])
  assert clip.resampled and clip.video_frames == rows
  got, detected = landmark_files.read(path, clip.source_index, clip.video_frames)
  assert detected.all() and got.shape == (len(clip.frames), roi.NUM_FACEMESH_LANDMARKS, 3)
  np.testing.assert_array_equal(got[:, 0, 0], clip.source_index)
  # The window's frames are the resampled video's frames around the speech.
  assert 0 < clip.source_index[0] and np.all(np.diff(clip.source_index) >= 1)
  np.testing.assert_array_equal(got[:, :, 2], 7.0)


def test_bad_landmark_files_cost_only_their_clip(tmp_path):
  rows = [
    f'{name}.mp4,{label},train,s{i},1.0,1.6'
    for i, (name, label) in enumerate(
      [
        ('good', 'HELLO'),
        ('missing', 'HELLO'),
        ('short', 'WORLD'),
        ('partial', 'WORLD'),
        ('faceless', 'WORLD'),
        ('gaps', 'WORLD'),
        ('text', 'WORLD'),
      ]
    )
  ]
  manifest = write_manifest(str(tmp_path / 'v'), rows)
  folder = os.path.dirname(manifest)
  frames = _carphone_frames()
  # A face drawn as FaceMesh's mean layout moved about: any 468 points in general position.
  rng = np.random.default_rng(0)
  base = rng.uniform(40, 140, (roi.NUM_FACEMESH_LANDMARKS, 2)).astype(np.float32)
  good = base + rng.normal(0, 0.5, (frames, 1, 2)).astype(np.float32)
  for name in ('good', 'gaps', 'partial', 'faceless'):
    points = good.copy()
    if name == 'gaps':
      points[::3] = np.nan  # every third frame without a face
    if name == 'partial':
      points[30, :5] = np.nan
    if name == 'faceless':
      points[:] = np.nan
    landmark_files.write(os.path.join(folder, f'{name}.mp4'), points)
  landmark_files.write(os.path.join(folder, 'short.mp4'), good[:10])
  with open(landmark_files.path_for(os.path.join(folder, 'text.mp4')), 'w') as f:
    f.write('not numpy')
  data_dir = str(tmp_path / 'data')
  report = pipeline.run(manifest, data_dir, workers=1, settings=FILE, progress=False)
  reasons = _reasons(report)
  assert report['written'] == 2 and sorted(reasons) == [
    'faceless',
    'missing',
    'partial',
    'short',
    'text',
  ]
  assert reasons['missing'].startswith(
    os.path.join(folder, 'missing.landmarks.npy') + ': no landmark file'
  )
  assert (
    f'short.landmarks.npy: 10 rows of landmarks but {folder}/short.mp4 has {frames} frames'
    in (reasons['short'])
  )
  assert 'partial.landmarks.npy: frame 30 has some landmarks NaN' in reasons['partial']
  assert 'faceless.mp4: face found in 0 of' in reasons['faceless']
  assert 'text.landmarks.npy: not a readable .npy file' in reasons['text']
  examples = {e['video_id']: e for e in _read(data_dir, 'train')}
  window = clip_lib.read_clip(os.path.join(folder, 'gaps.mp4'), FILE, intervals=[(1.0, 1.6)])
  np.testing.assert_array_equal(
    examples['gaps']['face_mask'][: len(window.frames)], window.source_index % 3 != 0
  )
  assert examples['good']['face_mask'][: len(window.frames)].all()


def test_a_changed_landmark_file_is_extracted_again(tmp_path):
  manifest = write_manifest(
    str(tmp_path / 'v'), ['a.mp4,HELLO,train,s,1.0,1.6', 'b.mp4,WORLD,train,t,1.0,1.6']
  )
  folder = os.path.dirname(manifest)
  frames = _carphone_frames()
  rng = np.random.default_rng(1)
  for name in ('a', 'b'):
    points = rng.uniform(40, 140, (1, roi.NUM_FACEMESH_LANDMARKS, 2)) + rng.normal(
      0, 1, (frames, 1, 2)
    )
    landmark_files.write(os.path.join(folder, f'{name}.mp4'), points)
  data_dir = str(tmp_path / 'data')
  pipeline.run(manifest, data_dir, workers=1, settings=FILE, progress=False)
  before = {e['video_id']: e['landmarks'] for e in _read(data_dir, 'train')}
  moved = np.load(landmark_files.path_for(os.path.join(folder, 'a.mp4')))
  moved[:, 13:15, 1] += 5.0  # the lips part
  landmark_files.write(os.path.join(folder, 'a.mp4'), moved)
  pipeline.run(manifest, data_dir, workers=1, settings=FILE, progress=False)
  after = {e['video_id']: e['landmarks'] for e in _read(data_dir, 'train')}
  assert not np.array_equal(before['a'], after['a'])
  np.testing.assert_array_equal(before['b'], after['b'])


def test_bad_landmark_arrays_are_refused_on_write(tmp_path):
  with pytest.raises(
    ValueError, match=r'x.mp4: landmarks must be \[frames, 468, 2 or 3\], got \(5, 68, 2\)'
  ):
    landmark_files.write(str(tmp_path / 'x.mp4'), np.zeros((5, 68, 2)))
  assert clip_lib.Settings(landmarks='dlib').problems() == [
    ('landmarks', "must be one of ('facemesh', 'landmarker', 'file'), got 'dlib'")
  ]
