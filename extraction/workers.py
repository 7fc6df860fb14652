"""Worker processes for extraction and the synthetic generator: one way to start, hold state, die.

Both pools spawn (the parent may hold TensorFlow's threads, which fork would copy
broken), keep what a worker builds once (a FaceMesh graph, a face renderer) in
`state`, and end with their parent even after a kill -9 of it.
"""

import concurrent.futures
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

CONTEXT = multiprocessing.get_context('spawn')
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_WATCHDOG_SECONDS = 1.0

# What this process built for its tasks (in the parent too, when it runs them itself).
state = {}


def pool(workers: int, initializer, initargs=()) -> concurrent.futures.ProcessPoolExecutor:
  """A spawn process pool whose workers run initializer(*initargs) and die with this process."""
  return concurrent.futures.ProcessPoolExecutor(
    workers,
    mp_context=CONTEXT,
    initializer=_start,
    initargs=(os.getpid(), initializer, tuple(initargs)),
  )


def _start(parent_pid: int, initializer, initargs: tuple) -> None:
  """Worker start: tie its life to the parent's, then run the pool's own initializer."""
  exit_with_parent(parent_pid)
  initializer(*initargs)


def exit_with_parent(parent_pid: int) -> None:
  """Makes this worker process end when its parent does, even after a kill -9 of the parent.

  A pool worker blocks on a queue whose write end its sibling workers also hold,
  so it never sees the parent go: left alone, each (holding FaceMesh's memory) would
  live on until killed by hand. Linux kills it with the parent (PR_SET_PDEATHSIG);
  elsewhere, a thread notices the orphaning (a new parent pid) within a second.
  """
  if sys.platform.startswith('linux'):
    try:
      ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
      pass  # no prctl in this libc: the watchdog below still ends the worker
  if os.getppid() != parent_pid:  # the parent died before the death signal was armed
    os._exit(1)
  threading.Thread(
    target=_watch_parent, args=(parent_pid,), name='parent-watchdog', daemon=True
  ).start()


def _watch_parent(parent_pid: int) -> None:
  """Ends this process (no cleanup: the parent that would collect results is gone) once orphaned."""
  while os.getppid() == parent_pid:
    time.sleep(_WATCHDOG_SECONDS)
  os._exit(1)
