"""Command line of training: `python -m lipjax.train --config configs/small.py [--workdir DIR]`.

The only place that builds the demo data set (through extraction.demo) when
the config points at it and it is missing; the training library never reaches
into the video stack.
"""

import os
import sys

from absl import app
from absl import flags
from etils import epath
from ml_collections import config_flags

from lipjax import cli

FLAGS = flags.FLAGS
PROGRAM = 'lipjax.train'


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  config_flags.DEFINE_config_file(
    'config', None, 'Training configuration file (configs/*.py).', lock_config=True
  )
  flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, metrics and plots (default: runs/<config name>).'
  )


def ensure_demo_data(data_dir: str) -> None:
  """Builds the demo data set when the config points at it and it is missing, or extracts it
  again when it was made with other settings than extraction's defaults (and extraction is
  installed: without it, an existing demo set is used as it is)."""
  if '://' in data_dir or os.path.abspath(os.path.expanduser(data_dir)) != cli.DEMO_DATA_DIR:
    return
  exists = epath.Path(data_dir).exists()
  try:
    from extraction import demo
  except ImportError as e:
    if exists:
      return
    raise FileNotFoundError(
      f'demo data set {data_dir} is missing and extraction.demo cannot build it ({e}); '
      'install lipjax[extract]'
    ) from e
  if exists and demo.is_current(data_dir):
    return
  what = "Extracting the demo data set again (other settings than today's)"
  if not exists:
    what = 'Building the demo data set'
  print(f'{what} in {data_dir}', file=sys.stderr)
  demo.build_demo_dataset(data_dir)


def main(argv):
  """Runs train_and_evaluate on the --config's data set and --workdir."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if FLAGS.config is None:
    raise app.UsageError('--config is required, e.g. --config configs/small.py')
  config = FLAGS.config
  # Each process of a multi-host job feeds its devices 1/num_processes of every batch.
  hosts = config.get('num_processes') or 1
  cli.split_cpu_into_devices(
    config.cpu_devices, (config.batch_size // hosts, config.eval_batch_size // hosts)
  )
  from lipjax import train

  config_path = config_flags.get_config_filename(FLAGS['config'])
  config_name = os.path.splitext(os.path.basename(config_path))[0]
  workdir = FLAGS.workdir or os.path.join('runs', config_name)
  cli.quiet_third_party_logs()
  ensure_demo_data(config.data_dir)
  try:
    train.train_and_evaluate(config, workdir)
  except KeyboardInterrupt:
    sys.exit(f'{PROGRAM}: interrupted; rerun the same command to resume from {workdir}')


if __name__ == '__main__':
  cli.run(main, PROGRAM, define_flags, 'see --help for flags, configs/*.py for config keys')
