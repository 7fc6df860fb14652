"""What lipjax's command lines share: the project's convention, quiet logs, CPU devices.

Every entry point (`python -m lipjax.train|evaluate|predict|diagnose|export|stream`)
defines its absl flags in `define_flags()` and runs through `run`, which is
extraction.cli's convention (one-line errors, exit status 0 done / 1 some inputs
failed and were reported / 2 unusable input or usage, --help) plus the config keys
lipjax has dropped.
"""

import logging as std_logging
import os
from typing import Callable

from absl import logging

from extraction import cli as shared_cli

# Where configs/small.py's data set lives; `python -m lipjax.train` builds it when missing.
DEMO_DATA_DIR = os.path.expanduser('~/.cache/lipjax/demo')
OWN_CODE = ('/lipjax/', '/extraction/')
# Config keys that existed once, and what replaced them (a user's old command line).
REMOVED_CONFIG_KEYS = {
  'jit_augment': 'config.input.jit_augment is gone: augmentation runs in JAX on the devices',
  'shuffle_buffer': 'config.input.shuffle_buffer is gone: grain shuffles the whole split',
  'cycle_length': 'config.input.cycle_length is gone: grain reads examples by index',
}


def run(
  main: Callable[[list[str]], int | None],
  program: str,
  define_flags: Callable[[], None],
  usage_hint: str = shared_cli.USAGE_HINT,
) -> None:
  """Runs an entry point by the project's convention (extraction.cli.run); exits with its status."""
  shared_cli.run(main, program, define_flags, replaced=REMOVED_CONFIG_KEYS, usage_hint=usage_hint)


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
