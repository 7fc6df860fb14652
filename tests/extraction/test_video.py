"""Streaming decode: only the window's frames are held, and it equals decoding everything."""

import os
import subprocess
import sys
import textwrap

import cv2
from extraction_media import carphone_path
import numpy as np

from extraction import video

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _carphone_frames() -> list[np.ndarray]:
  capture = cv2.VideoCapture(carphone_path())
  frames = []
  while True:
    ok, frame = capture.read()
    if not ok:
      return frames
    frames.append(frame)


def _write(path: str, frames, fps: float, size=None, count=None, fourcc='mp4v') -> str:
  """Writes `count` frames (cycling through `frames`, resized to `size`) as a real video."""
  height, width = frames[0].shape[:2] if size is None else size
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
  for k in range(count or len(frames)):
    writer.write(cv2.resize(frames[k % len(frames)], (width, height)))
  writer.release()
  return path


def _window_by_decoding_everything(path, fps, length, first_of):
  frames, source_fps = video.read_frames(path)
  index = video.resample_indices(len(frames), source_fps, fps)
  first = first_of(len(index))
  return frames[index][first : first + length], first, len(index)


def test_window_equals_decoding_everything_at_every_rate(tmp_path):
  frames = _carphone_frames()
  paths = [carphone_path()] + [
    _write(str(tmp_path / f'{fps}.mp4'), frames, fps) for fps in (12, 25, 50)
  ]
  for path in paths:
    for target_fps, centre in ((25.0, 0.3), (25.0, 0.5), (30.0, 0.9)):
      first_of = lambda n, c=centre: max(0, min(int(c * n) - 14, n - 29))
      window = video.read_window(path, target_fps, 29, first_of)
      expected, first, num_frames = _window_by_decoding_everything(path, target_fps, 29, first_of)
      assert (window.first, window.num_frames) == (first, num_frames), path
      assert window.frames.tobytes() == expected.tobytes(), (path, target_fps, centre)


def test_a_container_that_miscounts_its_frames_is_read_again_with_the_true_count(tmp_path):
  full = _write(str(tmp_path / 'full.avi'), _carphone_frames(), 25, fourcc='MJPG')
  cut = str(tmp_path / 'cut.avi')
  with open(full, 'rb') as f, open(cut, 'wb') as g:
    g.write(f.read()[: int(0.7 * os.path.getsize(full))])  # the header still says 120 frames
  assert cv2.VideoCapture(cut).get(cv2.CAP_PROP_FRAME_COUNT) == 120
  asked = []
  first_of = lambda n: asked.append(n) or n - 29  # the last 29 frames: wrong if the count is
  window = video.read_window(cut, 25.0, 29, first_of)
  expected, first, num_frames = _window_by_decoding_everything(cut, 25.0, 29, lambda n: n - 29)
  assert asked == [120, num_frames] and num_frames < 120 and window.first == first
  assert window.frames.tobytes() == expected.tobytes()


def test_memory_does_not_grow_with_the_video_length(tmp_path):
  """Extracts 1 s of speech from a 5 s and a 20 s 640x360 video: peak RSS must not grow by 15 s of frames."""
  frames = _carphone_frames()
  short, long = (
    _write(str(tmp_path / f'{s}s.mp4'), frames, 25, size=(360, 640), count=25 * s) for s in (5, 20)
  )
  script = textwrap.dedent(f"""
      import resource
      from extraction import clip, face_model, facemesh
      with facemesh.FaceLandmarkerTracker(face_model.resolve()) as tracker:
        for path in ({short!r}, {long!r}):
          arrays = clip.extract_clip(path, tracker, clip.Settings(), intervals=[(2.0, 3.0)])
          assert arrays.landmarks.shape[0] == 29 and arrays.face_mask.all()
          print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
  """)
  result = subprocess.run(
    [sys.executable, '-c', script],
    capture_output=True,
    text=True,
    timeout=120,
    cwd=REPO,
    env={**os.environ, 'PYTHONPATH': REPO},
  )
  assert result.returncode == 0, result.stderr[-2000:]
  peak_short, peak_long = (int(line) / 1024 for line in result.stdout.split())
  frame_mb = 360 * 640 * 3 / 2**20
  # Decoding everything would hold 15 s x 25 fps = 375 more frames (~260 MB) for the long video.
  assert peak_long - peak_short < 60 * frame_mb, (peak_short, peak_long)
