"""Evaluates a workdir's best checkpoint on a split: `python -m lipjax.evaluate --workdir DIR`.

Needs only the workdir (config.json, dataset_meta.json, checkpoints/) and the
data set's shards; writes eval_{split}.json (accuracy, macro-F1, top-5,
per-class accuracy, per-speaker accuracy, confusion matrix) and
confusion_{split}.png into the workdir. Per speaker, because a held-out face the
model fails on is what a speaker-independent mean hides.
"""

import json
from typing import Any

from absl import app
from absl import flags
import numpy as np

from extraction import schema
from lipjax import checkpoints
from lipjax import cli
from lipjax import evaluation
from lipjax import input_pipeline
from lipjax import metrics as metrics_lib
from lipjax import models
from lipjax import parallel
from lipjax import plots
from lipjax import workdir as workdir_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('workdir', None, 'Training workdir to evaluate.')
  flags.DEFINE_string('split', 'test', 'Split to evaluate (train, val or test).')
  flags.DEFINE_string('data_dir', None, 'Data set directory (default: the one in config.json).')


def restore_model(workdir: str):
  """The workdir's model and its best checkpoint's parameters (else the latest's).

  Returns (config, meta, model, params, step, 'best' | 'latest').
  """
  config, meta = workdir_lib.load(workdir)
  params, step, which = checkpoints.restore_params(workdir)
  return config, meta, models.create_model(config, meta), params, step, which


def evaluation_report(
  result: dict, meta: schema.DatasetMeta, split: str, step: int, which: str, speakers: list[str]
) -> dict[str, Any]:
  """The JSON-ready report of one evaluation; speakers: each example's, in read order."""
  if len(speakers) != len(result['labels']):
    raise ValueError(f'{len(speakers)} speakers for {len(result["labels"])} evaluated examples')
  per_class = metrics_lib.per_class_accuracy(result['confusion'])
  return {
    'split': split,
    'checkpoint': which,
    'step': int(step),
    'examples': result['count'],
    'accuracy': result['accuracy'],
    'macro_f1': result['macro_f1'],
    'top5': result['top5'],
    'loss': result['loss'],
    'per_class_accuracy': {
      name: (None if np.isnan(a) else float(a)) for name, a in zip(meta.class_names, per_class)
    },
    'per_speaker': metrics_lib.accuracy_by_group(result['labels'], result['predictions'], speakers),
    'class_names': list(meta.class_names),
    'confusion_matrix': result['confusion'].tolist(),
  }


def evaluate_workdir(workdir: str, split: str = 'test', data_dir: str | None = None) -> dict:
  """Evaluates the workdir's best checkpoint on a split and writes JSON + PNG reports."""
  config, meta, model, params, step, which = restore_model(workdir)
  if data_dir:
    config.data_dir = data_dir
  if not workdir_lib.path(config.data_dir).exists():
    raise FileNotFoundError(
      f'data set {config.data_dir} (from {workdir}/config.json) does not exist; pass --data_dir'
    )
  examples = input_pipeline.load_split(config, split)
  result = evaluation.evaluate_model(
    evaluation.parallel_evaluate_step(model.apply),
    parallel.replicate(params),
    input_pipeline.eval_iterator(config, split, parallel.num_devices(), examples=examples),
    meta.num_classes,
  )
  speakers = examples.strings('speaker')
  report = evaluation_report(result, meta, split, step, which, speakers)
  workdir_lib.path(workdir, f'eval_{split}.json').write_text(json.dumps(report, indent=1))
  plots.confusion_matrix(
    result['confusion'],
    meta.class_names,
    f'{split}: accuracy {report["accuracy"]:.3f}, macro-F1 {report["macro_f1"]:.3f}\n'
    f'{report["examples"]} clips, {which} checkpoint (step {step})',
    workdir_lib.path(workdir, f'confusion_{split}.png'),
  )
  return report


def main(argv):
  """Prints one summary line; a user error becomes one line on stderr and exit status 2."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS.workdir:
    raise app.UsageError('--workdir is required')
  cli.quiet_third_party_logs()
  report = evaluate_workdir(FLAGS.workdir, FLAGS.split, FLAGS.data_dir)
  weakest, weakest_stats = next(iter(report['per_speaker'].items()))
  print(
    f'{FLAGS.split}: accuracy {report["accuracy"]:.4f}, macro-F1 {report["macro_f1"]:.4f}, '
    f'top-5 {report["top5"]:.4f} on {report["examples"]} clips ({report["checkpoint"]} '
    f'checkpoint, step {report["step"]}); weakest of {len(report["per_speaker"])} speakers: '
    f'{weakest} {weakest_stats["accuracy"]:.4f} on {weakest_stats["examples"]} clips; '
    f'wrote {FLAGS.workdir}/eval_{FLAGS.split}.json and confusion_{FLAGS.split}.png'
  )


if __name__ == '__main__':
  cli.run(main, 'lipjax.evaluate', define_flags)
