"""Prediction from raw videos with a real extracted data set and a real checkpoint."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from configs import test as test_config_lib
from extraction import pipeline
from extraction import schema
from extraction import shards
from extraction.synthetic.faces import carphone_path
from lipjax import evaluate
from lipjax import predict
from lipjax import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Speech intervals (seconds) inside the 4 s carphone clip; each becomes a different 29-frame cut.
INTERVALS = [(0.3 + 0.25 * k, 0.9 + 0.25 * k) for k in range(14)]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A manifest of carphone cuts -> real extraction -> a few real training steps."""
  root = tmp_path_factory.mktemp('predict')
  videos = root / 'videos'
  videos.mkdir()
  rows = ['path,label,split,speaker,start,end']
  splits = ['train'] * 8 + ['val'] * 2 + ['test'] * 4
  for k, ((start, end), split) in enumerate(zip(INTERVALS, splits)):
    name = f'clip{k:02d}.mp4'
    shutil.copy(carphone_path(), videos / name)
    rows.append(f'videos/{name},{"EARLY" if start < 1.8 else "LATE"},{split},s{k % 3},{start},{end}')
  (root / 'manifest.csv').write_text('\n'.join(rows) + '\n')
  data_dir = str(root / 'data')
  report = pipeline.run(str(root / 'manifest.csv'), data_dir, workers=1, progress=False)
  assert report['failed'] == 0
  config = test_config_lib.get_config()
  config.data_dir = data_dir
  workdir = str(root / 'workdir')
  train.train_and_evaluate(config, workdir)
  return {'root': root, 'data_dir': data_dir, 'workdir': workdir}


def test_prediction_features_are_bit_identical_to_the_extracted_shards(trained):
  from extraction import facemesh
  predictor = predict.Predictor(trained['workdir'])
  stored = {e['video_id'].decode(): e for e in
            __import__('tensorflow_datasets').as_numpy(shards.read_split(trained['data_dir'], 'test'))}
  with facemesh.FaceMeshTracker() as tracker:
    for video_id, example in stored.items():
      k = int(video_id[-2:])
      parsed = predictor.features(str(trained['root'] / 'videos' / f'clip{k:02d}.mp4'), tracker,
                                  INTERVALS[k])
      for key in ('landmarks', 'au', 'geometry', 'speech_mask', 'frame_mask', 'face_mask'):
        np.testing.assert_array_equal(parsed[key], example[key].astype(np.float32), err_msg=key)


def test_predictions_agree_with_evaluate_on_the_test_clips(trained):
  report = evaluate.evaluate_workdir(trained['workdir'], 'test')
  meta = schema.DatasetMeta.load(trained['data_dir'])
  clips = [k for k in range(14) if k >= 10]
  videos = [str(trained['root'] / 'videos' / f'clip{k:02d}.mp4') for k in clips]
  confusion = np.zeros((meta.num_classes, meta.num_classes), int)
  for k, video in zip(clips, videos):
    (result,) = predict.predict_videos(trained['workdir'], [video], interval=INTERVALS[k], top_k=2)
    label = meta.class_names.index('EARLY' if INTERVALS[k][0] < 1.8 else 'LATE')
    confusion[label, meta.class_names.index(result['top_k'][0]['word'])] += 1
  np.testing.assert_array_equal(confusion, np.array(report['confusion_matrix']))


def test_predict_cli_prints_top_k_for_the_real_clip_and_fails_cleanly_on_a_faceless_video(trained):
  import cv2
  blank = str(trained['root'] / 'blank.mp4')
  writer = cv2.VideoWriter(blank, cv2.VideoWriter_fourcc(*'mp4v'), 25, (176, 144))
  for _ in range(20):
    writer.write(np.full((144, 176, 3), 90, np.uint8))
  writer.release()
  result = subprocess.run(
      [sys.executable, '-m', 'lipjax.predict', carphone_path(), blank, '--workdir', trained['workdir'],
       '--top_k', '2'], capture_output=True, text=True, timeout=300, cwd=REPO,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert result.returncode == 1
  line = next(l for l in result.stdout.splitlines() if l.startswith(carphone_path()))
  words = line.split(': ', 1)[1].split(', ')
  assert len(words) == 2 and {w.split()[0] for w in words} == {'EARLY', 'LATE'}
  probabilities = [float(w.split()[1]) for w in words]
  assert probabilities[0] >= probabilities[1] and abs(sum(probabilities) - 1) < 1e-3
  assert f'{blank}: error: ' in result.stderr and 'face found in 0 of' in result.stderr
  assert 'Traceback' not in result.stderr
