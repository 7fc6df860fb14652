"""FaceMesh's attention model (--refine_landmarks): extraction runs it, records it, caches apart."""

from extraction_media import write_clip
import numpy as np

from extraction import clip as clip_lib
from extraction import facemesh
from extraction import native_stderr
from extraction import pipeline
from extraction import schema
from extraction import sources
from extraction import transcripts

REFINED = clip_lib.Settings(refine_landmarks=True)
PLAIN = clip_lib.Settings(refine_landmarks=False)


def _read(data_dir, split):
  from lipjax import data_source

  source = data_source.SplitSource(data_dir, split)
  return {e['video_id']: e for e in source.__getitems__(range(len(source)))}


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
  assert clip_lib.Settings.from_record({'refine_landmarks': True}).refine_landmarks is True


def test_refine_landmarks_must_be_a_bool():
  problems = dict(clip_lib.Settings(refine_landmarks='yes').problems())
  assert problems == {'refine_landmarks': "must be True or False, got 'yes'"}
