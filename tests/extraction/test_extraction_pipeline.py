"""Whole extraction runs with real FaceMesh on a real video, real shards on disk."""

import json
import os
import subprocess
import sys

from extraction_media import write_clip
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph

from extraction import clip as clip_lib
from extraction import face_model
from extraction import pipeline
from extraction import roi
from extraction import schema
from extraction import sources


def _read(data_dir, split):
  from lipjax import data_source

  source = data_source.SplitSource(data_dir, split)
  return source.__getitems__(range(len(source)))


def _cache_key(clip, settings):
  """The clip's cache key as pipeline.run makes it (with the landmarker's bundle digest)."""
  landmarker = settings.landmarks == clip_lib.LANDMARKER
  digest = face_model.digest(face_model.resolve()) if landmarker else ''
  return pipeline.cache_key(clip, settings, face_model_sha256=digest)


def _shard_files(data_dir):
  return sorted(n for n in os.listdir(data_dir) if n.startswith('lipjax-'))


def test_rerunning_with_another_file_format_rewrites_the_shards_from_the_clip_cache(
  carphone_corpus, tmp_path
):
  pytest.importorskip('tensorflow', reason='TFRecord shards are written by the [tf] extra')
  out = str(tmp_path / 'data')
  pipeline.run(carphone_corpus, out, workers=1, progress=False)
  assert _shard_files(out) == [
    'lipjax-test.array_record-00000-of-00001',
    'lipjax-train.array_record-00000-of-00001',
  ]
  written = _read(out, 'train')
  # The same command with --file_format tfrecord: no clip is extracted again.
  report = pipeline.run(carphone_corpus, out, workers=1, progress=False, file_format='tfrecord')
  assert report['frames_processed'] == 0 and report['written'] == 3
  assert _shard_files(out) == [
    'lipjax-test.tfrecord-00000-of-00001',
    'lipjax-train.tfrecord-00000-of-00001',
  ]
  assert schema.DatasetMeta.load(out).extraction['file_format'] == 'tfrecord'
  for a, b in zip(written, _read(out, 'train')):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  # And back: how a data set extracted before ArrayRecord becomes one, in place.
  pipeline.run(carphone_corpus, out, workers=1, progress=False)
  assert all('.array_record-' in name for name in _shard_files(out))


def _shard_bytes(data_dir):
  return {
    name: open(os.path.join(data_dir, name), 'rb').read()
    for name in sorted(os.listdir(data_dir))
    if '.tfrecord-' in name
  }


@pytest.fixture
def carphone_corpus(tmp_path):
  root = str(tmp_path / 'corpus')
  write_clip(root, 'HELLO', 'train', 'HELLO_00001', 'Text: HELLO\nStart: 1.0\nEnd: 2.0\n')
  write_clip(root, 'HELLO', 'test', 'HELLO_00002', 'Text: HELLO\nConf: 3\nDuration: 0.6 seconds\n')
  write_clip(root, 'THERE', 'train', 'THERE_00001', 'Text: THERE\nStart: 0.2\nEnd: 0.8\n')
  return root


def test_carphone_becomes_shards_that_tfds_reads_back_bit_identical(carphone_corpus, tmp_path):
  out = str(tmp_path / 'data')
  cores = os.sched_getaffinity(0)
  report = pipeline.run(carphone_corpus, out, workers=1, progress=False)
  assert report['complete'] and report['written'] == 3 and report['failed'] == 0
  assert os.sched_getaffinity(0) == cores  # the one-worker run pins this process only while it runs

  examples = _read(out, 'train') + _read(out, 'test')
  assert len(examples) == 3
  for example in examples:
    assert example['landmarks'].shape == (29, roi.NUM_NODES, 3)
    assert example['au'].shape == (29, 18) and example['geometry'].shape == (29, 10)
    assert example['face_mask'].all() and example['frame_mask'].all()  # a face in every frame
    assert 0 <= example['landmarks'].min() and example['landmarks'].max() <= 1
    assert 0 < example['speech_mask'].sum() < 29

  # Bit-identical to what extraction wrote: rebuild each example from the clip cache.
  settings = clip_lib.Settings()
  meta = schema.DatasetMeta.load(out)
  by_id = {e['video_id']: e for e in examples}
  for clip in sources.discover(carphone_corpus):
    status, arrays = pipeline._load_cached(out, _cache_key(clip, settings))
    assert status == 'ok'
    expected = arrays.to_example(
      meta.class_names.index(clip.label), clip.speaker, clip.video_id, 29
    )
    got = by_id[clip.video_id]
    for key in schema.FRAME_KEYS:
      assert got[key].dtype == expected[key].dtype
      assert got[key].tobytes() == expected[key].tobytes(), key
    assert got['label'] == expected['label'] and got['length'] == 29

  # The 4 s clip is cut to 29 frames around its speech; the report counts it.
  assert report['splits']['train']['cut_to_max_frames'] == 2
  assert report['splits']['train']['face_detection_rate'] == 1.0
  assert report['splits']['train']['resampled_fps'] == 2  # 29.97 fps -> 25 fps


def test_metadata_carries_a_connected_mirror_symmetric_graph_within_the_roi(
  carphone_corpus, tmp_path
):
  out = str(tmp_path / 'data')
  pipeline.run(carphone_corpus, out, workers=1, progress=False)
  meta = schema.DatasetMeta.load(out)
  assert meta.class_names == ['HELLO', 'THERE'] and meta.split_sizes == {'train': 2, 'test': 1}
  assert meta.roi_indices == list(roi.ROI_INDICES) and meta.max_frames == 29 and meta.fps == 25.0
  senders, receivers, perm = map(np.array, (meta.senders, meta.receivers, meta.mirror_perm))
  n = meta.num_nodes
  assert senders.min() >= 0 and max(senders.max(), receivers.max()) < n
  edges = set(zip(senders.tolist(), receivers.tolist()))
  assert all((perm[s], perm[r]) in edges for s, r in edges)
  adjacency = scipy.sparse.coo_matrix((np.ones(len(senders)), (senders, receivers)), shape=(n, n))
  assert scipy.sparse.csgraph.connected_components(adjacency, directed=False)[0] == 1
  assert len(meta.au_names) == 18 and len(meta.geometry_names) == 10
  assert np.array(meta.mean_landmarks).shape == (n, 3)


def test_bad_clips_are_reported_and_the_exit_code_says_so(mixed_corpus, tmp_path):
  out = str(tmp_path / 'data')
  result = subprocess.run(
    [
      sys.executable,
      '-m',
      'extraction',
      '--input',
      mixed_corpus,
      '--out',
      out,
      '--workers',
      '2',
      '--quiet',
    ],
    capture_output=True,
    text=True,
    timeout=300,
    cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
  )
  assert result.returncode == 1, result.stderr[-2000:]
  with open(os.path.join(out, pipeline.REPORT_NAME)) as f:
    report = json.load(f)
  assert report['written'] == 3 and report['failed'] == 3
  reasons = {
    s['video_id']: s['reason'] for split in report['splits'].values() for s in split['skipped']
  }
  assert 'OpenCV cannot open it' in reasons['WORLD/train/WORLD_00002']
  assert 'WORLD_00002.mp4' in reasons['WORLD/train/WORLD_00002']
  assert 'WORLD_00003.txt:2: expected a time in seconds' in reasons['WORLD/train/WORLD_00003']
  assert 'face found in 0 of' in reasons['WORLD/val/WORLD_00004']
  assert 'wrote 3 clips' in result.stdout
  assert 'skipped WORLD/val/WORLD_00004' in result.stderr
  assert len(_read(out, 'train')) == 2 and len(_read(out, 'test')) == 1


def test_input_error_is_one_line_and_exit_code_2(tmp_path):
  result = subprocess.run(
    [
      sys.executable,
      '-m',
      'extraction',
      '--input',
      str(tmp_path / 'missing'),
      '--out',
      str(tmp_path / 'o'),
    ],
    capture_output=True,
    text=True,
    timeout=120,
    cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
  )
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith('extraction: error: ')
  assert 'Traceback' not in result.stderr


def test_rerun_after_a_kill_skips_finished_clips_and_yields_the_same_shards(
  carphone_corpus, tmp_path
):
  out = str(tmp_path / 'data')
  pipeline.run(carphone_corpus, out, workers=1, progress=False)
  first = _shard_bytes(out)
  # A kill mid-run: one clip's result never reached the cache, no shards were written yet.
  clip = sources.discover(carphone_corpus)[0]
  os.remove(pipeline._cache_paths(out, _cache_key(clip, clip_lib.Settings()))[0])
  for name in first:
    os.remove(os.path.join(out, name))
  report = pipeline.run(carphone_corpus, out, workers=1, progress=False)
  assert report['frames_processed'] == 29  # only the missing clip was redone
  assert _shard_bytes(out) == first


def test_array_jobs_split_the_corpus_and_the_last_one_writes_metadata(carphone_corpus, tmp_path):
  single = str(tmp_path / 'single')
  pipeline.run(carphone_corpus, single, workers=1, num_shards=2, progress=False)
  jobs = str(tmp_path / 'jobs')
  first = pipeline.run(
    carphone_corpus, jobs, workers=1, num_shards=2, shard_index=1, progress=False
  )
  assert not first['complete'] and not os.path.exists(os.path.join(jobs, 'dataset_info.json'))
  last = pipeline.run(carphone_corpus, jobs, workers=1, num_shards=2, shard_index=0, progress=False)
  assert last['complete'] and last['written'] == 3
  assert _shard_bytes(jobs) == _shard_bytes(single)
  assert len(_read(jobs, 'train')) == 2
