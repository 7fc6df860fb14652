"""Reads words or sentences from face videos: `python -m lipjax.predict VIDEO ... --workdir DIR`.

Each video goes through the same code as training data (`extraction.clip.extract_clip`
with the settings recorded in the data set's metadata: same ROI, normalisation,
smoothing, features, cut to max_frames), then a model scores it: a workdir's best
orbax checkpoint under JAX, or a model exported by `python -m lipjax.export`
(`--model DIR [--backend savedmodel|tflite]`), which runs on TensorFlow alone: that
path never imports JAX. With a workdir all videos are scored in fixed-size batches
by one jitted function, so the model compiles once however many videos are given.
A sentence reader's workdir prints each video's sentence, read by beam search
(`--decoder greedy` for the best path), within a grammar (`--grammar grid`) or a
lexicon (`--lexicon FILE`) when given; `--start`/`--end` then give the speech's
span, which the reader's rest-pose centring reads (without them every frame counts).
This is the one lipjax entry point that needs mediapipe.
"""

import json
import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging
import numpy as np

from extraction import clip as clip_lib
from lipjax import cli
from lipjax import data_source
from lipjax import exported
from lipjax import sentences

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('workdir', None, 'Training workdir whose best checkpoint predicts (JAX).')
  flags.DEFINE_string(
    'model', None, 'Exported model folder (python -m lipjax.export --out); runs without JAX.'
  )
  flags.DEFINE_enum(
    'backend',
    exported.SAVEDMODEL,
    exported.BACKENDS,
    'With --model: the SavedModel, or the TFLite model where the export wrote one.',
  )
  flags.DEFINE_float(
    'start', None, 'Start of the spoken word (or sentence) in seconds (all videos).'
  )
  flags.DEFINE_float('end', None, 'End of the spoken word (or sentence) in seconds (all videos).')
  flags.DEFINE_integer('top_k', 5, 'How many words to print per video.')
  flags.DEFINE_enum(
    'decoder', 'beam', sentences.DECODERS, 'Sentence workdirs: beam search, or the best path.'
  )
  sentences.define_flags()
  flags.DEFINE_bool('json', False, 'Print one JSON document instead of text lines.')
  flags.DEFINE_integer('batch_size', 16, 'Videos scored per jitted call.')
  flags.DEFINE_string(
    'face_model',
    None,
    "The Face Landmarker's bundle, face_landmarker.task, where the data set was extracted with "
    'it. Default: $LIPJAX_FACE_MODEL, else the user cache, else one checked download.',
  )


def log_softmax(logits: np.ndarray) -> np.ndarray:
  """Log-probabilities of logits [..., K] over the last axis (float32, max-shifted).  # [..., K]"""
  shifted = np.asarray(logits, np.float32)
  shifted = shifted - shifted.max(axis=-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
  """Class probabilities of logits [B, C] (float32, max-shifted).  # [B, C]"""
  shifted = np.asarray(logits, np.float32)
  shifted = shifted - shifted.max(axis=-1, keepdims=True)
  p = np.exp(shifted)
  return p / p.sum(axis=-1, keepdims=True)


class Predictor:
  """A model plus the extraction settings its data set was made with.

  `Predictor(workdir)`: the workdir's best checkpoint under JAX;
  `Predictor.from_export(model_dir, backend)`: an exported model on TensorFlow alone.
  Both have meta, settings, step, checkpoint ('best' or 'latest'), features() and
  probabilities().
  """

  def __init__(self, workdir: str):
    import jax

    from lipjax import evaluate

    self.config, self.meta, model, self.params, self.step, self.checkpoint = evaluate.restore_model(
      workdir
    )
    apply = jax.jit(lambda params, batch: model.apply({'params': params}, batch, train=False))
    self._logits = lambda batch: np.asarray(apply(self.params, batch))
    self._same_shape_batches = True  # one batch shape: one compile
    self._set_settings()

  @classmethod
  def from_export(cls, model_dir: str, backend: str = exported.SAVEDMODEL) -> 'Predictor':
    """A predictor of a `python -m lipjax.export` folder; never imports JAX."""
    model = exported.load(model_dir, backend)
    predictor = cls.__new__(cls)
    predictor.config, predictor.params = None, None
    predictor.meta, predictor.step, predictor.checkpoint = model.meta, model.step, model.checkpoint
    predictor._logits = model.logits
    predictor._same_shape_batches = False  # any batch size; padding would only cost time
    predictor._set_settings()
    return predictor

  def _set_settings(self) -> None:
    """The extraction settings the data set records (defaults where absent), as video is read."""
    recorded = self.meta.extraction.get('settings', {})
    self.settings = clip_lib.Settings.from_record(recorded).for_video()

  def features(self, video_path: str, tracker, interval=None) -> dict:
    """Extracts one video into a padded, parsed example (ClipError if unusable)."""
    arrays = clip_lib.extract_clip(
      video_path, tracker, self.settings, intervals=[interval] if interval else None
    )
    example = arrays.to_example(
      label=0, speaker='', video_id=video_path, max_frames=self.meta.max_frames
    )
    return data_source.model_example(example)

  def _batched_logits(self, examples: list[dict], batch_size: int):
    """The model's logits of parsed examples, batch by batch ([b, C] or [b, T, K] each)."""
    for start in range(0, len(examples), batch_size):
      chunk = examples[start : start + batch_size]
      padded = chunk
      if self._same_shape_batches:
        # Pad with copies of the first example so every call has the same shape (one compile).
        padded = chunk + [chunk[0]] * (batch_size - len(chunk))
      batch = {key: np.stack([e[key] for e in padded]) for key in chunk[0]}
      yield self._logits(batch)[: len(chunk)]

  def probabilities(self, examples: list[dict], batch_size: int) -> np.ndarray:
    """Class probabilities for parsed examples, in batches of batch_size.  # [V, C]"""
    out = [softmax(logits) for logits in self._batched_logits(examples, batch_size)]
    return np.concatenate(out) if out else np.zeros((0, self.meta.num_classes), np.float32)

  def read(self, examples: list[dict], batch_size: int, decoder: str = 'beam', **options):
    """A sentence reader's text of each parsed example (options: sentences.read's)."""
    texts = []
    for start, logits in zip(
      range(0, len(examples), batch_size), self._batched_logits(examples, batch_size)
    ):
      lengths = [e['length'] for e in examples[start : start + batch_size]]
      texts += sentences.read(log_softmax(logits), lengths, decoder, **options)
    return texts


def predict_videos(
  workdir: str | None,
  videos: list[str],
  interval=None,
  top_k: int = 5,
  batch_size: int = 16,
  model_dir: str | None = None,
  backend: str = exported.SAVEDMODEL,
  reading: dict | None = None,
  face_model: str | None = None,
) -> list[dict]:
  """Returns, per video, its top-k words with probabilities (a sentence reader: its text) or the error.

  The model: a workdir's best checkpoint, or (workdir None) the export in model_dir.
  reading: a sentence reader's decoding, Predictor.read's decoder and options
  (default beam search, unconstrained). face_model: the Face Landmarker's bundle
  (face_model.resolve), where the data set's tracker is the landmarker.
  """
  from extraction import facemesh
  from extraction import native_stderr

  if (workdir is None) == (model_dir is None):
    raise ValueError('give exactly one of a workdir and an exported model folder')
  predictor = Predictor(workdir) if workdir else Predictor.from_export(model_dir, backend)
  results, examples = [], []
  # MediaPipe's and FFmpeg's own stderr lines are noise here; a bad video's reason is in its error.
  with (
    native_stderr.silenced(),
    facemesh.tracker_for_video(predictor.settings, face_model) as tracker,
  ):
    for path in videos:
      try:
        examples.append(predictor.features(path, tracker, interval))
        results.append({'video': path})
      except clip_lib.ClipError as error:
        results.append({'video': path, 'error': str(error)})
  checkpoint = {'which': predictor.checkpoint, 'step': int(predictor.step)}
  if predictor.meta.is_sentences:
    texts = iter(predictor.read(examples, batch_size, **(reading or {})))
    for result in results:
      if 'error' not in result:
        result.update(text=next(texts), checkpoint=checkpoint)
    return results
  probabilities = iter(predictor.probabilities(examples, batch_size))
  names = predictor.meta.class_names
  for result in results:
    if 'error' in result:
      continue
    p = next(probabilities)
    order = np.argsort(-p, kind='stable')[:top_k]
    result['top_k'] = [{'word': names[k], 'probability': float(p[k])} for k in order]
    result['checkpoint'] = checkpoint
  return results


def reading_options(
  decoder: str, beam_width: int, grammar: str | None, lexicon: str | None
) -> dict[str, Any]:
  """Predictor.read's decoder and options from the command line's names (a grammar, a file)."""
  if decoder == 'greedy' and (grammar or lexicon):
    raise app.UsageError('--grammar and --lexicon constrain beam search; drop --decoder greedy')
  if grammar and lexicon:
    raise app.UsageError('give --grammar or --lexicon, not both (a grammar names its own words)')
  options: dict[str, Any] = {'decoder': decoder}
  if decoder == 'beam':
    options['beam_width'] = beam_width
  if grammar:
    options['grammar'] = sentences.grammar_named(grammar)
  if lexicon:
    options['lexicon'] = sentences.read_lexicon(lexicon)
  return options


def flag_reading() -> dict[str, Any] | None:
  """A sentence workdir's decoding from the flags (None for words); flags of the other kind refused."""
  if not FLAGS.workdir:
    if any(FLAGS[name].present for name in sentences.FLAGS + ('decoder',)):
      raise app.UsageError('--decoder, --beam_width, --grammar and --lexicon go with a --workdir')
    return None
  from lipjax import workdir as workdir_lib

  is_sentences = workdir_lib.load(FLAGS.workdir)[1].is_sentences
  sentences.check_flags(FLAGS, is_sentences)
  if FLAGS['decoder'].present and not is_sentences:
    raise app.UsageError('--decoder: for sentence workdirs; this workdir reads words')
  if FLAGS['top_k'].present and is_sentences:
    raise app.UsageError('--top_k: for word workdirs; this workdir reads sentences')
  if not is_sentences:
    return None
  return reading_options(FLAGS.decoder, FLAGS.beam_width, FLAGS.grammar, FLAGS.lexicon)


def main(argv):
  """Prints the top-k words (or the sentence) per video; a bad video is one line on stderr, exit 1."""
  videos = argv[1:]
  if not videos:
    raise app.UsageError('give one or more video files')
  if bool(FLAGS.workdir) == bool(FLAGS.model):
    raise app.UsageError('give exactly one of --workdir (JAX) and --model (an export)')
  if FLAGS['backend'].present and not FLAGS.model:
    raise app.UsageError('--backend goes with --model')
  if (FLAGS.start is None) != (FLAGS.end is None):
    raise app.UsageError('--start and --end go together')
  interval = (FLAGS.start, FLAGS.end) if FLAGS.start is not None else None
  if interval and not 0 <= interval[0] < interval[1]:
    raise app.UsageError(f'need 0 <= --start < --end, got {interval}')
  logging.set_verbosity(logging.WARNING)  # the answer, not JAX's backend probing, is the output
  results = predict_videos(
    FLAGS.workdir or None,
    videos,
    interval,
    FLAGS.top_k,
    FLAGS.batch_size,
    model_dir=FLAGS.model or None,
    backend=FLAGS.backend,
    reading=flag_reading(),
    face_model=FLAGS.face_model,
  )
  if FLAGS.json:
    print(json.dumps(results, indent=1))
  else:
    for result in results:
      if 'error' in result:
        print(f'{result["video"]}: error: {result["error"]}', file=sys.stderr)
      elif 'text' in result:
        print(f'{result["video"]}: {result["text"]}')
      else:
        words = ', '.join(f'{w["word"]} {w["probability"]:.3f}' for w in result['top_k'])
        print(f'{result["video"]}: {words}')
  if any('error' in r for r in results):
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main, 'lipjax.predict', define_flags)
