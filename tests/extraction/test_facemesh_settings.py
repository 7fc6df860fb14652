"""FaceMesh's settings (--refine_landmarks, --mirror_average): run, recorded, cached apart."""

from extraction_media import write_clip
import numpy as np
import pytest

from extraction import clip as clip_lib
from extraction import facemesh
from extraction import native_stderr
from extraction import pipeline
from extraction import roi
from extraction import schema
from extraction import sources
from extraction import transcripts
from extraction.synthetic.faces import carphone_path

REFINED = clip_lib.Settings(landmarks=clip_lib.FACEMESH, refine_landmarks=True)
PLAIN = clip_lib.Settings(landmarks=clip_lib.FACEMESH, refine_landmarks=False)
# Tests that run the legacy FaceMesh, which mediapipe 1.x no longer has.
legacy_facemesh = pytest.mark.skipif(
  not facemesh.legacy_facemesh_installed(), reason='mediapipe >= 1 has no legacy FaceMesh'
)


def _read(data_dir, split):
  from lipjax import data_source

  source = data_source.SplitSource(data_dir, split)
  return {e['video_id']: e for e in source.__getitems__(range(len(source)))}


@legacy_facemesh
def test_refined_extraction_is_the_attention_models_and_is_recorded(tmp_path):
  corpus = str(tmp_path / 'corpus')
  write_clip(corpus, 'HELLO', 'train', 'HELLO_00001', 'Text: HELLO\nStart: 1.0\nEnd: 2.0\n')
  write_clip(corpus, 'THERE', 'train', 'THERE_00001', 'Text: THERE\nStart: 0.2\nEnd: 0.8\n')
  refined, plain = str(tmp_path / 'refined'), str(tmp_path / 'plain')
  for out, settings in ((refined, REFINED), (plain, PLAIN)):
    report = pipeline.run(corpus, out, workers=1, settings=settings, progress=False)
    assert report['written'] == 2 and report['failed'] == 0
  written, other = _read(refined, 'train'), _read(plain, 'train')
  meta = schema.DatasetMeta.load(refined)
  with native_stderr.silenced(), facemesh.FaceMeshTracker.from_settings(REFINED) as tracker:
    for clip in sources.discover(corpus):
      # What the refined tracker gives on this clip is what extraction wrote.
      transcript = transcripts.read(clip.transcript_path)
      arrays = clip_lib.extract_clip(clip.video_path, tracker, REFINED, transcript=transcript)
      expected = arrays.to_example(
        meta.class_names.index(clip.label), clip.speaker, clip.video_id, 29
      )
      np.testing.assert_array_equal(written[clip.video_id]['landmarks'], expected['landmarks'])
      # ... and not what the plain model gives (sub-pixel apart on this small video).
      moved = np.abs(written[clip.video_id]['landmarks'] - other[clip.video_id]['landmarks'])
      assert moved.max() > 1e-3
      assert pipeline.cache_key(clip, REFINED) != pipeline.cache_key(clip, PLAIN)
  assert meta.extraction['settings']['refine_landmarks'] is True
  assert clip_lib.Settings.from_record(meta.extraction['settings']).refine_landmarks is True
  plain_record = schema.DatasetMeta.load(plain).extraction['settings']
  assert clip_lib.Settings.from_record(plain_record).refine_landmarks is False


def test_a_record_made_before_a_setting_existed_reads_as_it_was_extracted():
  # A data set extracted before `landmarks` and `refine_landmarks` existed used FaceMesh's
  # plain model, whatever today's defaults are; a key this version does not know is ignored.
  old = {'max_frames': 12, 'fps': 30.0, 'ema_alpha': 0.5, 'a_later_setting': 3}
  settings = clip_lib.Settings.from_record(old)
  assert (settings.max_frames, settings.fps, settings.ema_alpha) == (12, 30.0, 0.5)
  assert settings.landmarks == clip_lib.FACEMESH and settings.refine_landmarks is False
  assert settings.mirror_average is False
  assert clip_lib.Settings.from_record({'refine_landmarks': True}).refine_landmarks is True


def test_facemesh_switches_must_be_bools():
  problems = dict(clip_lib.Settings(refine_landmarks='yes', mirror_average=1).problems())
  assert problems == {
    'refine_landmarks': "must be True or False, got 'yes'",
    'mirror_average': 'must be True or False, got 1',
  }


def _carphone_frames(count=12):
  import cv2

  capture, frames = cv2.VideoCapture(carphone_path()), []
  while len(frames) < count:
    ok, frame = capture.read()
    assert ok
    frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
  return np.stack(frames)


@legacy_facemesh
def test_mirror_average_is_the_mean_of_the_frames_and_their_flips_estimates():
  frames = _carphone_frames()
  flipped = np.ascontiguousarray(frames[:, :, ::-1])
  width, mirror = frames.shape[2], roi.mesh_mirror()
  with native_stderr.silenced():
    with facemesh.FaceMeshTracker(mirror_average=True) as tracker:
      averaged, found = tracker.landmarks(frames)
      averaged_of_flip, found_of_flip = tracker.landmarks(flipped)
    with facemesh.FaceMeshTracker(mirror_average=False) as tracker:
      plain, _ = tracker.landmarks(frames)
      of_flip, _ = tracker.landmarks(flipped)
  assert found.all() and found_of_flip.all()
  moved_back = of_flip[:, mirror].copy()
  moved_back[..., 0] = width - moved_back[..., 0]
  np.testing.assert_allclose(averaged, 0.5 * (plain + moved_back), rtol=0, atol=1e-4)
  # Exactly mirror-symmetric: the flipped video's landmarks are the original's, mirrored.
  mirrored = averaged[:, mirror].copy()
  mirrored[..., 0] = width - mirrored[..., 0]
  np.testing.assert_allclose(averaged_of_flip, mirrored, rtol=0, atol=1e-4)
  assert np.abs(plain - averaged).max() > 0.1  # not the plain estimate


@legacy_facemesh
def test_mirror_averaged_extraction_is_recorded_and_cached_apart(tmp_path):
  corpus = str(tmp_path / 'corpus')
  write_clip(corpus, 'HELLO', 'train', 'HELLO_00001', 'Text: HELLO\nStart: 1.0\nEnd: 2.0\n')
  write_clip(corpus, 'THERE', 'test', 'THERE_00001', 'Text: THERE\nStart: 0.2\nEnd: 0.8\n')
  settings = clip_lib.Settings(landmarks=clip_lib.FACEMESH, mirror_average=True)
  out = str(tmp_path / 'data')
  assert pipeline.run(corpus, out, workers=1, settings=settings, progress=False)['written'] == 2
  record = schema.DatasetMeta.load(out).extraction['settings']
  assert clip_lib.Settings.from_record(record).mirror_average is True
  clip = next(c for c in sources.discover(corpus) if c.split == 'train')
  with native_stderr.silenced(), facemesh.FaceMeshTracker(mirror_average=True) as tracker:
    arrays = clip_lib.extract_clip(
      clip.video_path, tracker, settings, transcript=transcripts.read(clip.transcript_path)
    )
  (written,) = _read(out, 'train').values()
  np.testing.assert_array_equal(written['landmarks'][: len(arrays.landmarks)], arrays.landmarks)
  single = clip_lib.Settings(landmarks=clip_lib.FACEMESH, mirror_average=False)
  assert pipeline.cache_key(clip, settings) != pipeline.cache_key(clip, single)


def test_a_demo_set_made_with_other_extraction_settings_is_not_current(tmp_path):
  import json
  import shutil

  from extraction import demo

  corpus = str(tmp_path / 'corpus')
  write_clip(corpus, 'HELLO', 'train', 'HELLO_00001', 'Text: HELLO\nStart: 1.0\nEnd: 2.0\n')
  write_clip(corpus, 'THERE', 'train', 'THERE_00001', 'Text: THERE\nStart: 0.2\nEnd: 0.8\n')
  current = str(tmp_path / 'current')
  assert pipeline.run(corpus, current, workers=1, progress=False)['written'] == 2
  assert demo.is_current(current)  # extracted with today's defaults
  old = tmp_path / 'old'
  shutil.copytree(current, old)
  record = json.loads((old / 'metadata.json').read_text())
  record['extraction']['settings'] = {  # as data sets made before those settings record it
    k: v for k, v in record['extraction']['settings'].items() if k not in clip_lib.ADDED_LATER
  }
  (old / 'metadata.json').write_text(json.dumps(record))
  assert not demo.is_current(str(old))
  assert not demo.is_current(str(tmp_path / 'missing'))
