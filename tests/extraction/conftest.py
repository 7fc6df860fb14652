"""Shared fixtures: real videos from installed packages and small LRW-style corpora."""

from extraction_media import carphone_path
from extraction_media import write_blank_video
from extraction_media import write_clip
import pytest


@pytest.fixture
def carphone():
  return carphone_path()


@pytest.fixture
def mixed_corpus(tmp_path):
  """An LRW-style folder: 3 good clips and a broken video, a faceless video, a bad transcript."""
  root = str(tmp_path / 'corpus')
  write_clip(root, 'HELLO', 'train', 'HELLO_00001', 'Text: HELLO\nStart: 0.5\nEnd: 3.2\n')
  write_clip(
    root, 'HELLO', 'test', 'HELLO_00002', 'Text:  HELLO\nConf:  4\nDuration: 0.42 seconds\n'
  )
  write_clip(root, 'WORLD', 'train', 'WORLD_00001', 'Text: WORLD\nStart: 1.0\nEnd: 2.0\n')
  broken = write_clip(root, 'WORLD', 'train', 'WORLD_00002', 'Text: WORLD\nStart: 0.1\nEnd: 0.5\n')
  with open(broken, 'r+b') as f:
    f.truncate(4000)  # the moov atom is gone: OpenCV cannot open it
  write_clip(root, 'WORLD', 'train', 'WORLD_00003', 'Text: WORLD\nStart: zero\n')
  faceless = write_clip(root, 'WORLD', 'val', 'WORLD_00004', 'Text: WORLD\nStart: 0.1\nEnd: 0.9\n')
  write_blank_video(faceless)
  return root
