"""Evaluates a workdir's best checkpoint on a split: `python -m lipjax.evaluate --workdir DIR`.

Needs only the workdir (config.json, dataset_meta.json, checkpoints/) and the
data set's shards; writes eval_{split}.json (accuracy, macro-F1, top-5,
per-class accuracy, per-speaker accuracy, confusion matrix) and
confusion_{split}.png into the workdir. Per speaker, because a held-out face the
model fails on is what a speaker-independent mean hides.

A sentence reader's workdir (CTC): eval_{split}.json holds the WER and CER of
greedy decoding, of beam search (`--beam_width`), and of beam search within a
grammar (`--grammar grid`) or a lexicon (`--lexicon FILE`) when given; each
decoding's WER and CER per speaker; a few misread utterances (reference and
reading) per decoding; and every utterance's readings.
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
from lipjax import sentences
from lipjax import workdir as workdir_lib

FLAGS = flags.FLAGS
SHOWN_ERRORS = 10  # misread utterances kept per decoding in a sentence report


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('workdir', None, 'Training workdir to evaluate.')
  flags.DEFINE_string('split', 'test', 'Split to evaluate (train, val or test).')
  flags.DEFINE_string('data_dir', None, 'Data set directory (default: the one in config.json).')
  sentences.define_flags()


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


def sentence_report(
  result: dict,
  readings: dict[str, list[str]],
  split: str,
  step: int,
  which: str,
  speakers: list[str],
  video_ids: list[str],
) -> dict[str, Any]:
  """The JSON-ready report of a sentence reader's evaluation; readings: texts per decoding."""
  references = result['references']
  if not len(speakers) == len(video_ids) == len(references):
    raise ValueError(
      f'{len(speakers)} speakers and {len(video_ids)} ids for {len(references)} utterances'
    )
  decodings, per_speaker, errors = {}, {}, {}
  for name, hypotheses in readings.items():
    decodings[name] = {
      'wer': metrics_lib.word_error_rate(references, hypotheses),
      'cer': metrics_lib.character_error_rate(references, hypotheses),
    }
    per_speaker[name] = metrics_lib.error_rates_by_group(references, hypotheses, speakers)
    misread = [i for i, (r, h) in enumerate(zip(references, hypotheses)) if r != h]
    errors[name] = [
      {
        'video_id': video_ids[i],
        'speaker': speakers[i],
        'reference': references[i],
        'reading': hypotheses[i],
      }
      for i in misread[:SHOWN_ERRORS]
    ]
  return {
    'split': split,
    'checkpoint': which,
    'step': int(step),
    'examples': result['count'],
    'loss': result['loss'],
    'decodings': decodings,
    'per_speaker': per_speaker,
    'errors': errors,
    'utterances': [
      {
        'video_id': video_id,
        'speaker': speaker,
        'reference': reference,
        **{name: texts[i] for name, texts in readings.items()},
      }
      for i, (video_id, speaker, reference) in enumerate(zip(video_ids, speakers, references))
    ],
  }


def read_sentences(
  result: dict, beam_width: int = 16, grammar: str | None = None, lexicon: str | None = None
) -> dict[str, list[str]]:
  """Each decoding's texts of an evaluate_sentences result: greedy, beam, beam within each constraint."""
  log_probs, lengths = result['log_probs'], result['lengths']
  readings = {
    'greedy': result['hypotheses'],
    'beam': sentences.read(log_probs, lengths, 'beam', beam_width),
  }
  if grammar:
    readings[f'beam+grammar:{grammar}'] = sentences.read(
      log_probs, lengths, 'beam', beam_width, grammar=sentences.grammar_named(grammar)
    )
  if lexicon:
    readings['beam+lexicon'] = sentences.read(
      log_probs, lengths, 'beam', beam_width, lexicon=sentences.read_lexicon(lexicon)
    )
  return readings


def evaluate_workdir(
  workdir: str,
  split: str = 'test',
  data_dir: str | None = None,
  beam_width: int = 16,
  grammar: str | None = None,
  lexicon: str | None = None,
) -> dict:
  """Evaluates the workdir's best checkpoint on a split and writes its reports.

  A word classifier: eval_{split}.json and confusion_{split}.png. A sentence
  reader: eval_{split}.json with greedy and beam decoding, and beam search within
  `grammar` (a name of sentences.GRAMMARS) or `lexicon` (a file) when given.
  """
  config, meta, model, params, step, which = restore_model(workdir)
  if data_dir:
    config.data_dir = data_dir
  if not workdir_lib.path(config.data_dir).exists():
    raise FileNotFoundError(
      f'data set {config.data_dir} (from {workdir}/config.json) does not exist; pass --data_dir'
    )
  if (grammar or lexicon) and not meta.is_sentences:
    raise ValueError(f'{workdir} holds a word classifier; a grammar or lexicon reads sentences')
  if lexicon:
    sentences.read_lexicon(lexicon)  # a bad file stops here, before the model runs
  examples = input_pipeline.load_split(config, split)
  if meta.is_sentences:
    result = evaluation.evaluate_sentences(
      evaluation.parallel_evaluate_step(model.apply, sentence_reader=True),
      parallel.replicate(params),
      input_pipeline.eval_iterator(config, split, parallel.num_devices(), examples=examples),
    )
    readings = read_sentences(result, beam_width, grammar, lexicon)
    report = sentence_report(
      result,
      readings,
      split,
      step,
      which,
      examples.strings('speaker'),
      examples.strings('video_id'),
    )
    workdir_lib.path(workdir, f'eval_{split}.json').write_text(json.dumps(report, indent=1))
    return report
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


def print_sentence_summary(report: dict, workdir: str) -> None:
  """A sentence evaluation's lines: WER and CER per decoding, the weakest speaker, a few misreadings."""
  split = report['split']
  rates = '; '.join(
    f'{name} WER {r["wer"]:.4f} CER {r["cer"]:.4f}' for name, r in report['decodings'].items()
  )
  last = list(report['decodings'])[-1]
  weakest, stats = next(iter(report['per_speaker'][last].items()))
  print(
    f'{split}: {rates} on {report["examples"]} utterances ({report["checkpoint"]} checkpoint, '
    f'step {report["step"]}); weakest of {len(report["per_speaker"][last])} speakers ({last}): '
    f'{weakest} WER {stats["wer"]:.4f}; wrote {workdir}/eval_{split}.json'
  )
  for error in report['errors'][last][:3]:
    print(f'  {error["video_id"]}: read {error["reading"]!r} for {error["reference"]!r} ({last})')


def main(argv):
  """Prints one summary line; a user error becomes one line on stderr and exit status 2."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS.workdir:
    raise app.UsageError('--workdir is required')
  cli.quiet_third_party_logs()
  _, meta = workdir_lib.load(FLAGS.workdir)
  sentences.check_flags(FLAGS, meta.is_sentences)
  report = evaluate_workdir(
    FLAGS.workdir, FLAGS.split, FLAGS.data_dir, FLAGS.beam_width, FLAGS.grammar, FLAGS.lexicon
  )
  if meta.is_sentences:
    print_sentence_summary(report, FLAGS.workdir)
    return
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
