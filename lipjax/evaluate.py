"""Evaluates a workdir's best checkpoint on a split: `python -m lipjax.evaluate --workdir DIR`.

Needs only the workdir (config.json, dataset_meta.json, checkpoints/) and the
data set's shards; writes eval_{split}.json (accuracy, macro-F1, top-5,
per-class accuracy, confusion matrix) and confusion_{split}.png into the workdir.
"""

import json
import os
import sys
from typing import Any

from absl import app
from absl import flags
import ml_collections
import numpy as np

from extraction import schema
from lipjax import cli
from lipjax import input_pipeline
from lipjax import metrics as metrics_lib
from lipjax import parallel
from lipjax import plots
from lipjax import train

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('workdir', None, 'Training workdir to evaluate.')
  flags.DEFINE_string('split', 'test', 'Split to evaluate (train, val or test).')
  flags.DEFINE_string('data_dir', None, 'Data set directory (default: the one in config.json).')


def load_workdir(workdir: str) -> tuple[ml_collections.ConfigDict, schema.DatasetMeta]:
  """Reads the resolved config and data set metadata that training saved in a workdir."""
  for name in ('config.json', 'dataset_meta.json'):
    if not os.path.exists(os.path.join(workdir, name)):
      raise FileNotFoundError(f'{workdir}: no {name}; is this a lipjax training workdir?')
  with open(os.path.join(workdir, 'config.json')) as f:
    config = ml_collections.ConfigDict(json.load(f))
  return config, schema.DatasetMeta.load_json(os.path.join(workdir, 'dataset_meta.json'))


def restore_for_evaluation(config, meta, workdir: str):
  """Restores the best checkpoint (else the latest); returns (state, step, which)."""
  model = train.create_model(config, meta)
  import jax  # pylint: disable=g-import-not-at-top
  state = train.create_train_state(config, meta, model, jax.random.PRNGKey(0))
  latest, best = train.checkpoint_managers(workdir, config)
  for which, manager in (('best', best), ('latest', latest)):
    step = manager.best_step() if which == 'best' else manager.latest_step()
    if step is not None:
      state, _ = train.restore_checkpoint(manager, state, step)
      return state, step, which
  raise FileNotFoundError(f'{workdir}/checkpoints: no checkpoint to evaluate')


def evaluation_report(result: dict, meta: schema.DatasetMeta, split: str, step: int,
                      which: str) -> dict[str, Any]:
  """The JSON-ready report of one evaluation."""
  per_class = metrics_lib.per_class_accuracy(result['confusion'])
  return {
      'split': split, 'checkpoint': which, 'step': int(step), 'examples': result['count'],
      'accuracy': result['accuracy'], 'macro_f1': result['macro_f1'], 'top5': result['top5'],
      'loss': result['loss'],
      'per_class_accuracy': {name: (None if np.isnan(a) else float(a))
                             for name, a in zip(meta.class_names, per_class)},
      'class_names': list(meta.class_names),
      'confusion_matrix': result['confusion'].tolist(),
  }


def evaluate_workdir(workdir: str, split: str = 'test', data_dir: str | None = None) -> dict:
  """Evaluates the workdir's best checkpoint on a split and writes JSON + PNG reports."""
  config, meta = load_workdir(workdir)
  if data_dir:
    config.data_dir = data_dir
  if not os.path.exists(config.data_dir):
    raise FileNotFoundError(f'data set {config.data_dir} (from {workdir}/config.json) does not '
                            'exist; pass --data_dir')
  state, step, which = restore_for_evaluation(config, meta, workdir)
  num_devices = parallel.num_devices()
  dataset = input_pipeline.eval_dataset(config, split, num_devices)
  p_evaluate_step = parallel.data_parallel(train.evaluate_step)
  result = train.evaluate_model(p_evaluate_step, parallel.replicate(state), dataset,
                                meta.num_classes)
  report = evaluation_report(result, meta, split, step, which)
  with open(os.path.join(workdir, f'eval_{split}.json'), 'w') as f:
    json.dump(report, f, indent=1)
  plots.confusion_matrix(
      result['confusion'], meta.class_names,
      f'{split}: accuracy {report["accuracy"]:.3f}, macro-F1 {report["macro_f1"]:.3f}\n'
      f'{report["examples"]} clips, {which} checkpoint (step {step})',
      os.path.join(workdir, f'confusion_{split}.png'))
  return report


def main(argv):
  """Prints one summary line; failures become one line on stderr and exit status 1."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS.workdir:
    raise app.UsageError('--workdir is required')
  cli.quiet_third_party_logs()
  try:
    report = evaluate_workdir(FLAGS.workdir, FLAGS.split, FLAGS.data_dir)
  except (FileNotFoundError, ValueError, KeyError, OSError) as e:
    sys.exit(f'lipjax.evaluate: error: {e}')
  print(f'{FLAGS.split}: accuracy {report["accuracy"]:.4f}, macro-F1 {report["macro_f1"]:.4f}, '
        f'top-5 {report["top5"]:.4f} on {report["examples"]} clips ({report["checkpoint"]} '
        f'checkpoint, step {report["step"]}); wrote {FLAGS.workdir}/eval_{FLAGS.split}.json '
        f'and confusion_{FLAGS.split}.png')


if __name__ == '__main__':
  define_flags()
  app.run(main)
