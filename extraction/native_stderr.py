"""What C and C++ libraries (FFmpeg, OpenCV, MediaPipe) write to stderr, kept off the user's terminal.

They write to file descriptor 2 directly, past Python's sys.stderr, so the only
way to quiet them is to point that descriptor elsewhere for a while. This is
process-wide: use it where one thread does the work (an extraction worker, a
one-worker run, prediction), never around another thread's own output.
"""

import contextlib
import os
import re
import sys
import tempfile

# `[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55db2fa5ec80] moov atom not found`: FFmpeg names its component
# and instance. OpenCV's `[ WARN:0@13.5] global cap.cpp:215 ...` and other libraries' lines
# (MediaPipe's threads may print while a video is read) say nothing about the video.
_FFMPEG_LINE = re.compile(r'^\[[^\]]* @ 0x[0-9a-fA-F]+\]\s*(.*)$')


@contextlib.contextmanager
def redirected(fd: int):
  """Points file descriptor 2 at `fd` for the block, then back where it was."""
  sys.stderr.flush()
  saved = os.dup(2)
  try:
    os.dup2(fd, 2)
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)


@contextlib.contextmanager
def silenced():
  """Discards what native code writes to stderr in the block."""
  with open(os.devnull, 'wb') as devnull, redirected(devnull.fileno()):
    yield


@contextlib.contextmanager
def captured(into: list):
  """Appends to `into` what native code wrote to stderr in the block (also when it raised)."""
  with tempfile.TemporaryFile() as log:
    try:
      with redirected(log.fileno()):
        yield
    finally:
      log.seek(0)
      into.append(log.read().decode('utf-8', errors='replace'))


def unsilenced_stream():
  """A text stream on the present stderr that later redirections leave alone (for a progress bar)."""
  sys.stderr.flush()
  return os.fdopen(os.dup(2), 'w', buffering=1)


def decoder_messages(text: str) -> str:
  """FFmpeg's messages in captured stderr, without their prefixes, as one line."""
  found = [_FFMPEG_LINE.match(line.strip()) for line in text.splitlines()]
  return '; '.join(dict.fromkeys(m.group(1) for m in found if m and m.group(1)))
