"""What lipjax's command lines share: one way to run an entry point, quiet logs, CPU devices.

Every entry point (`python -m lipjax.train|evaluate|predict|diagnose`) defines
its absl flags in `define_flags()` and runs through `run`, so a user's mistake
(bad flag, missing file, incompatible workdir) is one line on stderr naming the
program, and a non-zero exit status, never a traceback.
"""

import gc
import logging as std_logging
import os
import sys
from typing import Callable

from absl import app
from absl import flags
from absl import logging

# Where configs/small.py's data set lives; `python -m lipjax.train` builds it when missing.
DEMO_DATA_DIR = os.path.expanduser('~/.cache/lipjax/demo')
OWN_CODE = ('/lipjax/', '/extraction/')
# Errors a user can act on; anything else is a bug and keeps its traceback.
USER_ERRORS = (FileNotFoundError, ValueError, KeyError, OSError)
# Config keys that existed once, and what replaced them (a user's old command line).
REMOVED_CONFIG_KEYS = {
  'jit_augment': 'config.input.jit_augment is gone: augmentation runs in JAX on the devices',
  'shuffle_buffer': 'config.input.shuffle_buffer is gone: grain shuffles the whole split',
  'cycle_length': 'config.input.cycle_length is gone: grain reads examples by index',
}


def error_message(error: BaseException) -> str:
  """The readable one-line text of an error (a KeyError's own str() adds quotes and escapes)."""
  text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
  return '; '.join(line.strip() for line in text.splitlines() if line.strip())


def run(main: Callable[[list[str]], None], program: str, define_flags: Callable[[], None]) -> None:
  """Defines the flags, parses them and runs main; user errors exit 1 with one line."""
  define_flags()

  def parse(argv):
    try:
      return flags.FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
      replaced = [text for key, text in REMOVED_CONFIG_KEYS.items() if f"'{key}'" in str(e)]
      sys.exit(
        f'{program}: error: bad command line: {error_message(e)} ('
        + (
          '; '.join(replaced) + '; drop the flag'
          if replaced
          else 'see --helpfull for flags, configs/*.py for config keys'
        )
        + ')'
      )

  def guarded(argv):
    try:
      main(argv)
      return
    except USER_ERRORS as e:
      message = f'{program}: error: {error_message(e)}'
    # Out of the except block the error's traceback and the frames it held are gone;
    # collecting now runs the failed run's teardown (tf.data iterators log as they are
    # destroyed), so the error stays the last line the user sees, not the chatter.
    gc.collect()
    sys.exit(message)

  app.run(guarded, flags_parser=parse)


def _own_or_error(record: std_logging.LogRecord) -> bool:
  """Keeps lipjax/extraction records and anything at ERROR or above."""
  return record.levelno >= std_logging.ERROR or any(p in record.pathname for p in OWN_CODE)


def quiet_third_party_logs() -> None:
  """Drops INFO/WARNING chatter of tfds, orbax and jax (one line per checkpoint, per shard read)."""
  logging.get_absl_handler().addFilter(_own_or_error)
  logging.set_verbosity(logging.INFO)


def split_cpu_into_devices(requested: int, batch_sizes: tuple[int, ...]) -> int:
  """Makes XLA expose CPU cores as devices so pmap splits each batch across them.

  pmap then runs one slice of the batch per core, which helps most while other
  processes compete for the cores.
  requested: -1 = one per core (largest count <= cores dividing every batch
  size), 0 = leave XLA's default, N = exactly N. Must run before JAX's first
  use (importing it is fine: backends start lazily); a device count already in
  XLA_FLAGS wins. Accelerators are unaffected (only the host platform changes).
  Returns the count set (0: none).
  """
  flag = '--xla_force_host_platform_device_count'
  if requested == 0 or flag in os.environ.get('XLA_FLAGS', ''):
    return 0
  count = requested
  if requested < 0:
    count = max(
      n for n in range(1, (os.cpu_count() or 1) + 1) if all(size % n == 0 for size in batch_sizes)
    )
  os.environ['XLA_FLAGS'] = f'{os.environ.get("XLA_FLAGS", "")} {flag}={count}'.strip()
  return count
