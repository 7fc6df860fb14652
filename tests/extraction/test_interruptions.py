"""A real extraction (2 spawn workers, real FaceMesh) killed with SIGKILL and rerun.

Issue 13: after a kill -9 of the parent no worker process may be left behind,
and the rerun must give shards byte-identical to an uninterrupted run.
"""

import glob
import os
import random
import signal
import subprocess
import sys
import time

from extraction_media import write_clip
import psutil
import pytest

from extraction import clip as clip_lib
from extraction import pipeline

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_FRAMES = (
  100  # every frame of carphone goes through FaceMesh: ~1 s a clip, so a kill lands mid-run
)


def _corpus(root: str) -> str:
  for k in range(3):
    write_clip(root, 'HELLO', 'train', f'HELLO_{k:05d}', 'Text: HELLO\nStart: 1.0\nEnd: 2.0\n')
    write_clip(root, 'THERE', 'train', f'THERE_{k:05d}', 'Text: THERE\nStart: 0.2\nEnd: 0.8\n')
  return root


def _shard_bytes(data_dir):
  return {
    name: open(os.path.join(data_dir, name), 'rb').read()
    for name in sorted(os.listdir(data_dir))
    if '.tfrecord-' in name
  }


def _alive(process: psutil.Process) -> bool:
  try:
    return process.status() != psutil.STATUS_ZOMBIE
  except psutil.NoSuchProcess:
    return False


def _cmdline(process: psutil.Process) -> str:
  """A process's command line, '' once it has exited (children come and go while listed)."""
  try:
    return ' '.join(process.cmdline())
  except psutil.Error:
    return ''


def _command(corpus: str, out: str) -> list[str]:
  """The extraction command line of these tests (2 workers)."""
  workers = ['--workers', '2', '--max_frames', str(MAX_FRAMES), '--quiet']
  return [sys.executable, '-m', 'extraction', '--input', corpus, '--out', out, *workers]


def _start(corpus: str, out: str) -> subprocess.Popen:
  return subprocess.Popen(
    _command(corpus, out),
    cwd=REPO,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )


def _kill_when(parent: subprocess.Popen, ready, timeout: float = 120.0) -> list[psutil.Process]:
  """SIGKILLs the parent once ready() holds and both workers run; returns its descendants then."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    workers = [
      p for p in psutil.Process(parent.pid).children(recursive=True) if 'spawn_main' in _cmdline(p)
    ]
    if len(workers) >= 2 and ready():
      descendants = psutil.Process(parent.pid).children(recursive=True)
      os.kill(parent.pid, signal.SIGKILL)
      parent.wait()
      return descendants
    assert parent.poll() is None, 'the extraction ended before it could be killed'
    time.sleep(0.05)
  raise AssertionError('the extraction never reached the kill point')


def _assert_all_exit(descendants: list[psutil.Process], within: float = 10.0) -> None:
  deadline = time.monotonic() + within
  while any(_alive(p) for p in descendants) and time.monotonic() < deadline:
    time.sleep(0.1)
  left = [(p.pid, _cmdline(p)[:80]) for p in descendants if _alive(p)]
  for process in descendants:  # never leave them to the next test
    if _alive(process):
      process.kill()
  assert not left, f'worker processes outlived the killed parent: {left}'


@pytest.mark.slow
def test_kill_9_of_the_parent_leaves_no_worker_and_the_rerun_gives_the_same_shards(tmp_path):
  corpus = _corpus(str(tmp_path / 'corpus'))
  reference = str(tmp_path / 'reference')
  settings = clip_lib.Settings(max_frames=MAX_FRAMES)
  pipeline.run(corpus, reference, workers=1, settings=settings, progress=False)

  out = str(tmp_path / 'data')
  cached = lambda: glob.glob(os.path.join(out, '.cache', '*', '*.npz'))
  # Kill 1: as soon as the first clip is in the cache (mid-extraction).
  _assert_all_exit(_kill_when(_start(corpus, out), lambda: bool(cached())))
  done = len(cached())
  assert 0 < done < 6 and not _shard_bytes(out)
  # Kill 2: at a random moment of the resumed run, start-up included.
  at = time.monotonic() + random.Random(13).uniform(0.5, 6.0)
  _assert_all_exit(_kill_when(_start(corpus, out), lambda: time.monotonic() > at))

  result = subprocess.run(
    _command(corpus, out),
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert _shard_bytes(out) == _shard_bytes(reference)
