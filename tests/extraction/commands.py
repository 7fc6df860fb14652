"""Runs a command line as a user does: a fresh process, its exit status and its output."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_module(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
  """`python -m MODULE ARGS...` from the repository root; never raises on a failed command."""
  return subprocess.run(
    [sys.executable, '-m', module, *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=timeout,
    check=False,
  )


def last_line(result: subprocess.CompletedProcess) -> str:
  """The last line the command wrote on stderr (where its one-line error goes)."""
  lines = result.stderr.strip().splitlines()
  return lines[-1] if lines else ''
