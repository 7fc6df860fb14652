"""Bad input to a real extraction (real FaceMesh on carphone): a clear error, nothing lost.

Each test names the bad input of issue 13 it covers; the good clips beside a bad
one are still written, and every bad row or clip is in the report with its reason.
"""

import json
import os
import subprocess
import sys

import pytest

from extraction import pipeline
from extraction_media import write_clip
from extraction_media import write_manifest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*args, timeout=300):
  return subprocess.run([sys.executable, '-m', 'extraction', *args], capture_output=True,
                        text=True, timeout=timeout, cwd=REPO)


def _reasons(report) -> dict:
  rows = [s for split in report['splits'].values() for s in split['skipped']]
  return {s['video_id']: s['reason'] for s in rows + report.get('rejected', [])}


def test_speech_interval_beyond_the_video_is_a_clip_error_naming_file_interval_and_duration(tmp_path):
  root = str(tmp_path / 'in')
  manifest = write_manifest(root, ['a.mp4,hello,train,s1,1.0,2.0', 'b.mp4,there,train,s1,0.2,0.8',
                                   'late.mp4,hello,train,s1,5.0,6.0', 'long.mp4,there,val,s1,3.5,4.6',
                                   'txt.mp4,hello,test,s1,,', 'lrw.mp4,there,test,s1,,'])
  with open(os.path.join(root, 'txt.txt'), 'w') as f:
    f.write('Text: HELLO\nStart: 4.5\nEnd: 5.2\n')  # carphone lasts 4.0 s
  with open(os.path.join(root, 'lrw.txt'), 'w') as f:
    f.write('Text: THERE\nConf: 4\nDuration: 4.8 seconds\n')
  report = pipeline.run(manifest, str(tmp_path / 'data'), workers=1, progress=False)
  assert report['written'] == 2 and report['failed'] == 4
  reasons = _reasons(report)
  assert 'late.mp4: speech interval 5-6 s ends after the video (4.00 s long)' in reasons['late']
  assert 'long.mp4: speech interval 3.5-4.6 s ends after the video (4.00 s long)' in reasons['long']
  assert 'txt.mp4: speech interval 4.5-5.2 s' in reasons['txt']
  assert 'lrw.mp4: its transcript says the speech lasts 4.8 s but the video is 4.00 s' in reasons['lrw']
