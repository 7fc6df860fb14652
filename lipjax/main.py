"""Command line of training: `python -m lipjax.train --config configs/small.py [--workdir DIR]`."""

import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from lipjax import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Training configuration file (configs/*.py).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and plots '
                    '(default: runs/<config name>).')


def parse_flags(argv):
  """Parses flags; a bad --config.KEY=VALUE becomes one line on stderr and exit status 1."""
  try:
    return FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    sys.exit(f'lipjax.train: error: bad command line ({type(e).__name__}: {e}); '
             'see --helpfull for flags and configs/*.py for config keys')


def main(argv):
  """Runs train_and_evaluate; failures become one line on stderr and exit status 1."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if FLAGS.config is None:
    raise app.UsageError('--config is required, e.g. --config configs/small.py')
  config = FLAGS.config
  cli.split_cpu_into_devices(config.cpu_devices, (config.batch_size, config.eval_batch_size))
  from lipjax import train  # pylint: disable=g-import-not-at-top
  config_path = config_flags.get_config_filename(FLAGS['config'])
  config_name = os.path.splitext(os.path.basename(config_path))[0]
  workdir = FLAGS.workdir or os.path.join('runs', config_name)
  cli.quiet_third_party_logs()
  try:
    train.train_and_evaluate(config, workdir)
  except (FileNotFoundError, ValueError, KeyError, OSError) as e:
    sys.exit(f'lipjax.train: error: {e}')
  except KeyboardInterrupt:
    sys.exit(f'lipjax.train: interrupted; rerun the same command to resume from {workdir}')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
