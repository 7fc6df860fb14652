"""What lipjax's command lines share: a console with lipjax's own log lines only."""

import logging as std_logging

from absl import logging

OWN_CODE = ('/lipjax/', '/extraction/')


def _own_or_error(record: std_logging.LogRecord) -> bool:
  """Keeps lipjax/extraction records and anything at ERROR or above."""
  return record.levelno >= std_logging.ERROR or any(p in record.pathname for p in OWN_CODE)


def quiet_third_party_logs() -> None:
  """Drops INFO/WARNING chatter of tfds, orbax and jax (one line per checkpoint, per shard read)."""
  logging.get_absl_handler().addFilter(_own_or_error)
  logging.set_verbosity(logging.INFO)
