"""Prediction from raw videos with a real extracted data set and a real checkpoint."""

import os
import subprocess
import sys

import numpy as np
import pytest

from extraction import clip as clip_lib
from extraction import schema
from extraction.synthetic.faces import carphone_path
from lipjax import evaluate
from lipjax import predict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def trained(carphone_run):
  """The session's carphone run: real extraction, a real best (not latest) checkpoint."""
  return carphone_run


def stored_examples(data_dir, split):
  """The split's examples as written by extraction, by clip number."""
  from lipjax import data_source

  source = data_source.SplitSource(data_dir, split)
  return {int(e['video_id'][-2:]): e for e in source.__getitems__(range(len(source)))}


def test_prediction_features_are_bit_identical_to_the_extracted_shards(trained):
  from extraction import face_model
  from extraction import facemesh

  predictor = predict.Predictor(trained['workdir'])
  stored = stored_examples(trained['data_dir'], 'test')
  assert sorted(stored) == trained['splits']['test']
  with facemesh.tracker_for(predictor.settings, face_model.resolve()) as tracker:
    for k, example in stored.items():
      parsed = predictor.features(
        str(trained['root'] / 'videos' / f'clip{k:02d}.mp4'), tracker, trained['intervals'][k]
      )
      for key in ('landmarks', 'au', 'geometry', 'speech_mask', 'frame_mask', 'face_mask'):
        np.testing.assert_array_equal(parsed[key], example[key].astype(np.float32), err_msg=key)


@pytest.fixture(scope='module')
def clip_probabilities(trained):
  """Class probabilities of each test clip's video, cut at its interval, by clip number."""
  from extraction import face_model
  from extraction import facemesh

  predictor = predict.Predictor(trained['workdir'])
  clips = trained['splits']['test']
  with facemesh.tracker_for(predictor.settings, face_model.resolve()) as tracker:
    examples = [
      predictor.features(
        str(trained['root'] / 'videos' / f'clip{k:02d}.mp4'), tracker, trained['intervals'][k]
      )
      for k in clips
    ]
    uncut = predictor.features(carphone_path(), tracker)  # no interval: the video's middle
  probabilities = predictor.probabilities(examples + [uncut], batch_size=8)
  return {
    'predictor': predictor,
    'by_clip': dict(zip(clips, probabilities[:-1])),
    'no_interval': probabilities[-1],
  }


def best_by_val_accuracy(records):
  """The step of the first evaluation with the highest val accuracy."""
  return max(records, key=lambda r: r['val_accuracy'])['step']


def test_predict_and_evaluate_use_the_best_checkpoint_not_the_latest(trained, clip_probabilities):
  best = best_by_val_accuracy(trained['records'])
  assert best == trained['best_step'] < trained['latest_step']
  predictor = clip_probabilities['predictor']
  assert (predictor.checkpoint, predictor.step) == ('best', best)
  report = evaluate.evaluate_workdir(trained['workdir'], 'test')
  assert (report['checkpoint'], report['step']) == ('best', best)


def test_predictions_agree_with_evaluate_clip_by_clip(trained, clip_probabilities):
  report = evaluate.evaluate_workdir(trained['workdir'], 'test')
  meta = schema.DatasetMeta.load(trained['data_dir'])
  labels = {k: meta.class_names.index(trained['word'](k)) for k in trained['splits']['test']}
  confusion = np.zeros((meta.num_classes, meta.num_classes), int)
  for k, p in clip_probabilities['by_clip'].items():
    confusion[labels[k], int(np.argmax(p))] += 1
  # Rows are true words, columns predictions (test_metrics checks that orientation by hand;
  # this model may classify every test clip right, where a transpose would not show here).
  np.testing.assert_array_equal(np.array(report['confusion_matrix']), confusion)
  # evaluate's loss is the mean of -log p(true word): the same probabilities, clip by clip.
  losses = [-np.log(p[labels[k]]) for k, p in clip_probabilities['by_clip'].items()]
  assert report['loss'] == pytest.approx(np.mean(losses), rel=1e-4)


def test_predict_videos_reports_each_videos_top_k_with_the_checkpoint(trained, clip_probabilities):
  k = trained['splits']['test'][0]
  video = str(trained['root'] / 'videos' / f'clip{k:02d}.mp4')
  (result,) = predict.predict_videos(
    trained['workdir'], [video], interval=trained['intervals'][k], top_k=2
  )
  p = clip_probabilities['by_clip'][k]
  names = clip_probabilities['predictor'].meta.class_names
  assert [w['word'] for w in result['top_k']] == [names[i] for i in np.argsort(-p)]
  np.testing.assert_allclose(
    [w['probability'] for w in result['top_k']], np.sort(p)[::-1], rtol=1e-5
  )
  assert result['checkpoint'] == {'which': 'best', 'step': trained['best_step']}


def test_predict_tracks_with_the_facemesh_model_the_data_was_extracted_with(trained, tmp_path):
  import shutil

  from extraction import facemesh

  if not facemesh.legacy_facemesh_installed():
    pytest.skip('mediapipe >= 1 has no legacy FaceMesh')
  from lipjax import workdir as workdir_lib

  # The same run, its data set's record now naming FaceMesh's plain model on the frames alone
  # (not today's default), as a data set extracted before those settings existed.
  workdir = tmp_path / 'workdir'
  shutil.copytree(trained['workdir'], workdir)
  meta_path = str(workdir_lib.path(workdir, workdir_lib.DATASET_META))
  meta = schema.DatasetMeta.load_json(meta_path)
  meta.extraction['settings'] = dict(
    meta.extraction['settings'],
    landmarks=clip_lib.FACEMESH,
    refine_landmarks=False,
    mirror_average=False,
  )
  meta.save_json(meta_path)
  k = trained['splits']['test'][0]
  video, interval = str(trained['root'] / 'videos' / f'clip{k:02d}.mp4'), trained['intervals'][k]
  (result,) = predict.predict_videos(str(workdir), [video], interval=interval, top_k=2)
  predictor = predict.Predictor(str(workdir))
  by_model = {}
  for refine in (True, False):
    with facemesh.FaceMeshTracker(refine_landmarks=refine, mirror_average=refine) as tracker:
      example = predictor.features(video, tracker, interval)
    by_model[refine] = np.sort(predictor.probabilities([example], batch_size=1)[0])[::-1][:2]
  printed = [w['probability'] for w in result['top_k']]
  np.testing.assert_allclose(printed, by_model[False], rtol=1e-6)
  assert np.abs(by_model[True] - by_model[False]).max() > 1e-5  # the two models' answers differ


def test_predict_cli_cuts_at_start_end_and_fails_cleanly_on_a_faceless_video(
  trained, clip_probabilities
):
  k = trained['splits']['test'][0]
  start, end = trained['intervals'][k]
  expected = clip_probabilities['by_clip'][k]
  # Without --start/--end the cut is elsewhere and the printed answer differs: the flags matter.
  assert [f'{p:.3f}' for p in expected] != [f'{p:.3f}' for p in clip_probabilities['no_interval']]
  blank = str(trained['root'] / 'videos' / 'blank.mp4')
  result = subprocess.run(
    [
      sys.executable,
      '-m',
      'lipjax.predict',
      carphone_path(),
      blank,
      '--workdir',
      trained['workdir'],
      '--top_k',
      '2',
      '--start',
      str(start),
      '--end',
      str(end),
    ],
    capture_output=True,
    text=True,
    timeout=300,
    cwd=REPO,
    env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'},
  )
  assert result.returncode == 1
  line = next(row for row in result.stdout.splitlines() if row.startswith(carphone_path()))
  names = clip_probabilities['predictor'].meta.class_names
  order = np.argsort(-expected)
  assert line == f'{carphone_path()}: ' + ', '.join(f'{names[i]} {expected[i]:.3f}' for i in order)
  assert f'{blank}: error: ' in result.stderr and 'face found in 0 of' in result.stderr
  assert 'Traceback' not in result.stderr
