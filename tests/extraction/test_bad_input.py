"""Bad input to a real extraction (real FaceMesh on carphone): a clear error, nothing lost.

Each test names the bad input of issue 13 it covers; the good clips beside a bad
one are still written, and every bad row or clip is in the report with its reason.
"""

import json
import os
import subprocess
import sys

from extraction_media import write_blank_video
from extraction_media import write_manifest
import pytest

from extraction import clip as clip_lib
from extraction import pipeline
from extraction import sources

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*args, timeout=300):
  return subprocess.run(
    [sys.executable, '-m', 'extraction', *args],
    capture_output=True,
    text=True,
    timeout=timeout,
    cwd=REPO,
  )


def _reasons(report) -> dict:
  rows = [s for split in report.get('splits', {}).values() for s in split['skipped']]
  return {s['video_id']: s['reason'] for s in rows + report.get('rejected', [])}


def test_speech_interval_beyond_the_video_is_a_clip_error_naming_file_interval_and_duration(
  tmp_path,
):
  root = str(tmp_path / 'in')
  manifest = write_manifest(
    root,
    [
      'a.mp4,hello,train,s1,1.0,2.0',
      'b.mp4,there,train,s1,0.2,0.8',
      'late.mp4,hello,train,s1,5.0,6.0',
      'long.mp4,there,val,s1,3.5,4.6',
      'txt.mp4,hello,test,s1,,',
      'lrw.mp4,there,test,s1,,',
      'edge.mp4,there,test,s1,4.0,4.2',
      'ok.mp4,there,test,s1,3.5,4.15',
    ],
  )
  with open(os.path.join(root, 'txt.txt'), 'w') as f:
    f.write('Text: HELLO\nStart: 4.5\nEnd: 5.2\n')  # carphone lasts 4.0 s
  with open(os.path.join(root, 'lrw.txt'), 'w') as f:
    f.write('Text: THERE\nConf: 4\nDuration: 4.8 seconds\n')
  report = pipeline.run(manifest, str(tmp_path / 'data'), workers=1, progress=False)
  assert report['written'] == 3 and report['failed'] == 5  # ok.mp4 ends within the slack
  reasons = _reasons(report)
  assert 'late.mp4: speech interval 5-6 s ends after the video (4.00 s long)' in reasons['late']
  assert 'long.mp4: speech interval 3.5-4.6 s ends after the video (4.00 s long)' in reasons['long']
  assert 'txt.mp4: speech interval 4.5-5.2 s' in reasons['txt']
  assert (
    'edge.mp4: speech interval(s) 4-4.2 s hold no frame of the video (4.00 s long)'
    in reasons['edge']
  )
  assert (
    'lrw.mp4: its transcript says the speech lasts 4.8 s but the video is 4.00 s' in reasons['lrw']
  )


def test_a_manifest_of_only_bad_rows_names_every_reason_on_stderr_and_in_the_report(tmp_path):
  manifest = write_manifest(
    str(tmp_path / 'in'), ['a.mp4,hello,holdout,s1,,', 'b.mp4,there,train,s1,x,1']
  )
  out = str(tmp_path / 'data')
  result = _cli('--input', manifest, '--out', out, '--quiet', timeout=120)
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  line = result.stderr.strip().splitlines()[-1]
  assert line.startswith('extraction: error: ') and 'every row is malformed' in line
  assert (
    "manifest.csv:2: split 'holdout'" in line
    and 'manifest.csv:3: start/end must be seconds' in line
  )
  with open(os.path.join(out, pipeline.REPORT_NAME)) as f:
    report = json.load(f)
  assert (
    sorted(_reasons(report)) == ['a', 'b'] and report['error'] == line[len('extraction: error: ') :]
  )
  assert not os.path.exists(os.path.join(out, 'dataset_info.json'))


def test_a_row_with_an_unknown_split_is_counted_and_reported_beside_good_clips(tmp_path):
  manifest = write_manifest(
    str(tmp_path / 'in'),
    [
      'a.mp4,hello,train,s1,1.0,2.0',
      'b.mp4,there,train,s1,0.2,0.8',
      'c.mp4,there,holdout,s1,0.2,0.8',
      'd.mp4,hello,test,s1,zero,1',
    ],
  )
  out = str(tmp_path / 'data')
  result = _cli('--input', manifest, '--out', out, '--workers', '1', '--quiet')
  assert result.returncode == 1, result.stderr[-2000:]
  assert 'wrote 2 clips' in result.stdout and '; 2 skipped' in result.stdout
  assert 'skipped c: ' in result.stderr and "split 'holdout' is not one of" in result.stderr
  assert 'skipped d: ' in result.stderr
  with open(os.path.join(out, pipeline.REPORT_NAME)) as f:
    report = json.load(f)
  assert report['failed'] == 2 and sorted(_reasons(report)) == ['c', 'd']
  assert "manifest.csv:4: split 'holdout'" in _reasons(report)['c']


def test_a_single_class_is_refused_before_extraction_with_no_data_set_written(tmp_path):
  manifest = write_manifest(
    str(tmp_path / 'in'), ['a.mp4,hello,train,s1,1.0,2.0', 'b.mp4,hello,test,s1,0.2,0.8']
  )
  out = str(tmp_path / 'data')
  result = _cli('--input', manifest, '--out', out, '--quiet', timeout=120)
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert (
    "only one class ('HELLO') among the usable clips; a word classifier needs at least 2"
    in result.stderr.strip().splitlines()[-1]
  )
  assert not os.path.exists(os.path.join(out, '.cache'))  # refused before any FaceMesh work
  assert not os.path.exists(os.path.join(out, 'dataset_info.json'))


def test_a_data_set_whose_extracted_clips_span_one_class_is_not_written(tmp_path):
  root = str(tmp_path / 'in')
  manifest = write_manifest(
    root, ['a.mp4,hello,train,s1,1.0,2.0', 'blank.mp4,there,train,s1,0.2,0.8']
  )
  write_blank_video(os.path.join(root, 'blank.mp4'))
  out = str(tmp_path / 'data')
  os.makedirs(out)
  for name in (
    'dataset_info.json',
    'features.json',
  ):  # an earlier run's, for shards now overwritten
    with open(os.path.join(out, name), 'w') as f:
      f.write('{}')
  with pytest.raises(
    sources.SourceError, match=r"fewer than 2 classes \(only 'HELLO'; 1 clips failed"
  ):
    pipeline.run(manifest, out, workers=1, progress=False)
  assert not [
    name
    for name in os.listdir(out)
    if 'tfrecord' in name or name.endswith('.json') and name != pipeline.REPORT_NAME
  ]
  with open(os.path.join(out, pipeline.REPORT_NAME)) as f:
    assert 'face found in 0 of' in _reasons(json.load(f))['blank']


@pytest.mark.parametrize(
  'flags, named',
  [
    (['--fps', '0'], ['--fps must be a positive number, got 0.0']),
    (  # the hyphen spellings of the argparse days name the same flags
      ['--ema-alpha', '0', '--max-frames', '0', '--min-face-fraction', '2'],
      [
        '--max_frames must be at least 1, got 0',
        '--ema_alpha must be in (0, 1], got 0.0',
        '--min_face_fraction must be in [0, 1], got 2.0',
      ],
    ),
  ],
)
def test_bad_settings_are_one_line_and_exit_2_before_any_clip_is_touched(tmp_path, flags, named):
  manifest = write_manifest(
    str(tmp_path / 'in'), ['a.mp4,hello,train,s1,1.0,2.0', 'b.mp4,there,train,s1,0.2,0.8']
  )
  out = str(tmp_path / 'data')
  result = _cli('--input', manifest, '--out', out, '--quiet', *flags, timeout=120)
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('extraction: error: '), result.stderr
  assert all(problem in lines[0] for problem in named), lines[0]
  assert not os.path.exists(out)


def test_bad_settings_given_to_the_library_raise_before_any_clip_is_touched(tmp_path):
  manifest = write_manifest(
    str(tmp_path / 'in'), ['a.mp4,hello,train,s1,1.0,2.0', 'b.mp4,there,train,s1,0.2,0.8']
  )
  with pytest.raises(ValueError, match=r'bad extraction settings: fps must be a positive number'):
    pipeline.run(manifest, str(tmp_path / 'data'), settings=clip_lib.Settings(fps=0.0))
  assert not os.path.exists(tmp_path / 'data')


def test_an_array_job_part_left_by_a_run_over_another_manifest_is_never_merged(tmp_path):
  rows = [
    'a.mp4,hello,train,s1,1.0,2.0',
    'b.mp4,there,train,s1,0.2,0.8',
    'c.mp4,hello,test,s1,1.0,2.0',
    'd.mp4,there,test,s1,0.2,0.8',
  ]
  old = write_manifest(str(tmp_path / 'old'), rows)
  new = write_manifest(str(tmp_path / 'new'), [r.replace('there', 'world') for r in rows])
  jobs = str(tmp_path / 'jobs')
  pipeline.run(old, jobs, workers=1, num_shards=2, shard_index=1, progress=False)
  report = pipeline.run(new, jobs, workers=1, num_shards=2, shard_index=0, progress=False)
  assert not report['complete'] and report['stale_parts'] == [1] and report['parts_done'] == 1
  assert not os.path.exists(os.path.join(jobs, 'dataset_info.json'))
  report = pipeline.run(new, jobs, workers=1, num_shards=2, shard_index=1, progress=False)
  assert report['complete'] and report['classes'] == ['HELLO', 'WORLD']
  single = str(tmp_path / 'single')
  pipeline.run(new, single, workers=1, num_shards=2, progress=False)
  assert _shard_bytes(jobs) == _shard_bytes(single)


def _shard_bytes(data_dir):
  return {
    name: open(os.path.join(data_dir, name), 'rb').read()
    for name in sorted(os.listdir(data_dir))
    if '.tfrecord-' in name
  }


def test_decoder_warnings_stay_off_the_terminal_and_go_into_the_report(tmp_path):
  root = str(tmp_path / 'in')
  manifest = write_manifest(
    root,
    [
      'a.mp4,hello,train,s1,1.0,2.0',
      'b.mp4,there,train,s1,0.2,0.8',
      'cut.mp4,there,test,s1,0.2,0.8',
    ],
  )
  with open(os.path.join(root, 'cut.mp4'), 'r+b') as f:
    f.truncate(4000)  # the moov atom is gone
  out = str(tmp_path / 'data')
  result = _cli('--input', manifest, '--out', out, '--workers', '1', '--quiet')
  assert result.returncode == 1, result.stderr[-2000:]
  assert '[mov,mp4' not in result.stderr and '[ WARN' not in result.stderr, result.stderr
  assert 'inference_feedback_manager' not in result.stderr  # MediaPipe's own start-up chatter
  with open(os.path.join(out, pipeline.REPORT_NAME)) as f:
    reason = _reasons(json.load(f))['cut']
  assert reason.endswith(
    'cut.mp4: OpenCV cannot open it (not a video, or an unsupported codec); '
    'the decoder says: moov atom not found'
  ), reason
  ours = [
    line
    for line in result.stderr.splitlines()
    if line.startswith('  skipped cut: ') or line.endswith(' 2 classes -> ' + out)
  ]
  assert ours == result.stderr.splitlines(), result.stderr  # nothing but extraction's own lines


def test_a_refused_input_keeps_the_report_of_the_data_set_already_in_out(tmp_path):
  out = tmp_path / 'data'
  out.mkdir()
  (out / 'dataset_info.json').write_text('{}')
  (out / pipeline.REPORT_NAME).write_text('{"written": 1050}')
  manifest = write_manifest(str(tmp_path / 'in'), ['a.mp4,hello,train,s1,1.0,2.0'])
  with pytest.raises(sources.SourceError, match='only one class'):
    pipeline.run(manifest, str(out), progress=False)
  assert (out / pipeline.REPORT_NAME).read_text() == '{"written": 1050}'
