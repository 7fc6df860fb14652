"""Command line: generate a synthetic data set, draw a contact sheet, show visemes.

python -m extraction.synthetic generate --out DIR [--words BAT,PAT,... | --vocabulary_size N]
    [--context_words K [--background_fraction F]] [--sentences N] [--grid_sentences N] [--faces DIR]
python -m extraction.synthetic contact-sheet --out sheet.png [--context_words K]
python -m extraction.synthetic visemes BAT PAT MOON
"""

import dataclasses
import os
import sys

from absl import flags

from extraction import cli
from extraction import face_model
from extraction import schema
from extraction.synthetic import contact_sheet
from extraction.synthetic import dataset
from extraction.synthetic import lexicon
from extraction.synthetic import phonetics
from extraction.synthetic import running

FLAGS = flags.FLAGS
PROGRAM = 'extraction.synthetic'
# Settings fields whose flag has another name.
FLAG_OF_FIELD = {'num_frames': 'frames', 'variants_per_face': 'variants'}


class _PairParser(flags.ArgumentParser):
  """Parses 'LO,HI' into two numbers with LO <= HI (integers if integer)."""

  def __init__(self, integer: bool = False):
    super().__init__()
    self.integer = integer
    self.syntactic_help = f'LO,HI (two {"integers" if integer else "numbers"})'

  def parse(self, argument) -> tuple:
    """The pair of 'lo,hi' (or of a tuple, a default)."""
    kind = 'integers' if self.integer else 'numbers'
    try:
      parts = argument.split(',') if isinstance(argument, str) else argument
      lo, hi = (float(x) for x in parts)
    except (TypeError, ValueError):
      raise ValueError(f'expected LO,HI (two {kind}), got {argument!r}') from None
    if self.integer and (lo != int(lo) or hi != int(hi)):
      raise ValueError(f'expected LO,HI (two integers), got {argument!r}')
    if lo > hi:
      raise ValueError(f'expected LO <= HI, got {argument!r}')
    return (int(lo), int(hi)) if self.integer else (lo, hi)

  def flag_type(self) -> str:
    """How --help names the type."""
    return 'pair'


def _define_pair(name: str, default: tuple, help_text: str, integer: bool = False) -> None:
  """A flag taking LO,HI."""
  flags.DEFINE(
    _PairParser(integer), name, default, help_text, serializer=flags.CsvListSerializer(',')
  )


def _define_settings_flags() -> None:
  """Flags shared by generate and contact-sheet, defaulting to dataset.Settings."""
  d = dataset.Settings()
  flags.DEFINE_list('words', None, f'Vocabulary (default {",".join(d.words)}).')
  flags.DEFINE_integer(
    'vocabulary_size',
    None,
    'Vocabulary: the N most frequent English words (wordfreq) of '
    f'{lexicon.MIN_VOCABULARY_LETTERS}+ letters that CMUdict pronounces (deterministic).',
  )
  flags.mark_flags_as_mutual_exclusive(['words', 'vocabulary_size'])
  flags.DEFINE_string(
    'faces', None, 'Folder of face photos, one identity each (default: built-in faces).'
  )
  flags.DEFINE_string(
    'face_model',
    None,
    "The Face Landmarker's bundle, face_landmarker.task, that finds the faces to animate. "
    f'Default: ${face_model.ENV_VAR}, else the user cache ({face_model.cache_path()}), else '
    "downloaded once from MediaPipe's published URL and checked.",
  )
  flags.DEFINE_integer('seed', d.seed, 'Seed of every random draw (clips, speakers, splits).')
  flags.DEFINE_float('fps', d.fps, 'Frame rate of the videos.')
  flags.DEFINE_integer('frames', d.num_frames, 'Frames per clip (LRW: 29, 1.16 s at 25 fps).')
  flags.DEFINE_integer('clips_per_speaker', d.clips_per_speaker, 'Clips of each word per speaker.')
  flags.DEFINE_integer(
    'variants',
    d.variants_per_face,
    'Speakers made from each face photo, each drawn as a person of its own (geometry, '
    "appearance, head pose, camera, speaking style); all of a person's speakers share a split.",
  )
  flags.DEFINE_integer(
    'lfw_faces',
    d.lfw_faces,
    "Built-in faces: the seven photos plus the first N of scikit-image's 100 LFW face crops "
    'that FaceMesh finds (0-100; ignored with --faces).',
  )
  flags.DEFINE_integer('val_speakers', d.val_speakers, 'People whose speakers make the val split.')
  flags.DEFINE_integer(
    'test_speakers', d.test_speakers, 'People whose speakers make the test split.'
  )
  flags.DEFINE_integer(
    'train_speakers',
    d.train_speakers,
    'Render only N training speakers (a seeded choice; 0: all); val and test are unchanged, '
    'and every clip is the one a full run renders.',
  )
  flags.DEFINE_integer(
    'held_out_clips_per_speaker',
    d.held_out_clips_per_speaker,
    'Clips of each word per val or test speaker (0: --clips_per_speaker).',
  )
  _define_pair('rate_range', d.rate_range, 'Speaking-rate factor LO,HI.')
  flags.DEFINE_float(
    'duration_jitter', d.duration_jitter, "Log-normal std of each viseme's duration."
  )
  _define_pair('lead_range', d.lead_range, 'Leading silence LO,HI in seconds.')
  flags.DEFINE_float('min_trail', d.min_trail, 'Shortest trailing silence in seconds.')
  flags.DEFINE_float(
    'coarticulation_ms',
    d.coarticulation_ms,
    'Std of the Gaussian smoothing of viseme targets, in ms.',
  )
  _define_pair(
    'rest_open_range',
    d.rest_open_range,
    'Jaw and lip opening at rest LO,HI (0 = closed, 1 = wide), per clip.',
  )
  flags.DEFINE_float('head_degrees', d.head_degrees, 'Head-motion amplitude: rotation in degrees.')
  flags.DEFINE_float('head_scale', d.head_scale, 'Head-motion amplitude: relative scale.')
  flags.DEFINE_float('head_shift', d.head_shift, 'Head-motion amplitude: shift in pixels.')
  flags.DEFINE_float('brightness_jitter', d.brightness_jitter, 'Per-clip exposure change.')
  flags.DEFINE_float(
    'lip_paint',
    d.lip_paint,
    'Opacity (0-1) of a lip-coloured fill of the outer lip contour: an edge where lips meet '
    "skin for FaceMesh to follow (0: the photo's own lips).",
  )
  r = running.RunningSpeech()
  flags.DEFINE_integer(
    'context_words',
    r.context_words,
    '0: isolated words (a word between silences). K > 0: each clip is a --frames window cut '
    'from running speech as LRW cuts it: the word centred, at least K context words on each '
    'side (more where K do not fill the window), coarticulated across word boundaries, speech '
    "in every frame; the transcript is LRW's (Text, Conf, Duration).",
  )
  flags.DEFINE_integer(
    'lexicon_size',
    r.lexicon_size,
    'Context words come from the N most frequent English words, less the vocabulary and its '
    'look-alikes (same visemes); drawn by frequency.',
  )
  flags.DEFINE_float(
    'pause_probability',
    r.pause_probability,
    'Chance of a pause between two words of running speech.',
  )
  _define_pair('pause_range', r.pause_range, 'Pause length LO,HI in seconds.')


def _define_generate_flags() -> None:
  """Flags of generate: the settings, the output, background windows and sentences."""
  flags.DEFINE_string('out', None, 'Output folder.')
  flags.DEFINE_integer('workers', 1, 'Worker processes.')
  _define_settings_flags()
  r = running.RunningSpeech()
  flags.DEFINE_float(
    'background_fraction',
    r.background_fraction,
    'With --context_words K > 0: also write round(F x word clips per speaker) windows per '
    f'speaker labelled {schema.BACKGROUND_LABEL} (folder {schema.BACKGROUND_LABEL}/SPLIT/), '
    'centred on a non-vocabulary word, a pause or a word boundary.',
  )
  flags.DEFINE_integer(
    'sentences',
    r.sentences,
    'Also write N whole utterances per speaker (vocabulary and context words mixed) as '
    "sentences/SPLIT_00001.mp4 with LRS2-style transcripts (each word's start and end) and "
    'sentences.csv.',
  )
  _define_pair('sentence_words', r.sentence_words, 'Words per sentence LO,HI.', integer=True)
  flags.DEFINE_integer(
    'grid_sentences',
    r.grid_sentences,
    "Also write N different sentences of GRID's grammar per speaker (bin blue at f two now), "
    "in GRID's layout under OUT/grid (speaker folders of 3 s videos, alignments/SPEAKER/*.align): "
    '`python -m extraction --input OUT/grid` reads it as GRID. With --clips_per_speaker 0: only them.',
  )
  flags.DEFINE_bool(
    'save_landmarks',
    False,
    'Also write where the renderer put the 468 landmarks of every frame, beside each video '
    '(VIDEO.landmarks.npy), for `python -m extraction --landmarks file`: the set extracted '
    'without FaceMesh.',
  )
  flags.DEFINE_float(
    'sentence_vocabulary_share',
    r.sentence_vocabulary_share,
    'Chance that a sentence word is a vocabulary word (each sentence has at least one).',
  )


def _define_sheet_flags() -> None:
  """Flags of contact-sheet: the settings, the PNG and what it shows."""
  flags.DEFINE_string('out', None, 'PNG path.')
  flags.DEFINE_integer('rows', 8, 'Clips (rows) on the sheet.')
  flags.DEFINE_integer('step', 3, 'Show every STEP-th frame.')
  flags.DEFINE_string('photo', None, 'Show only the speakers of this photo (e.g. hopper, lfw-03).')
  _define_settings_flags()


def _given(cls) -> dict:
  """The fields of dataclass cls that this command's flags set, by field name."""
  flag_of = {f.name: FLAG_OF_FIELD.get(f.name, f.name) for f in dataclasses.fields(cls)}
  return {field: FLAGS[flag].value for field, flag in flag_of.items() if flag in FLAGS}


def _settings() -> dataset.Settings:
  """Settings from the flags (--words or --vocabulary_size resolved into words)."""
  given = _given(dataset.Settings)
  if FLAGS.vocabulary_size is not None:
    given['words'] = lexicon.vocabulary(FLAGS.vocabulary_size)
  elif FLAGS.words is not None:
    given['words'] = tuple(w.strip().upper() for w in FLAGS.words if w.strip())
  else:
    del given['words']
  return dataset.Settings(**given)


def _speech() -> running.RunningSpeech:
  """RunningSpeech from the flags (those a command lacks keep their defaults)."""
  return running.RunningSpeech(**_given(running.RunningSpeech))


def generate(argv: list[str]) -> int:
  """Writes the data set; returns SOME_FAILED if a photo was skipped (each reported)."""
  del argv  # takes no arguments
  cli.require('out')
  report = dataset.generate(
    FLAGS.out,
    _settings(),
    FLAGS.faces,
    FLAGS.workers,
    _speech(),
    FLAGS.save_landmarks,
    FLAGS.face_model,
  )
  for message in report['skipped_photos']:
    print(f'skipped: {message}', file=sys.stderr)
  sentences = sum(report.get('sentences', {}).values())
  grid_sentences = sum(report.get('grid', {}).get('sentences', {}).values())
  print(
    f'wrote {sum(report["clips"].values())} clips ({report["clips"]}) of '
    f'{len(report["words"])} words by {sum(map(len, report["speakers"].values()))} '
    f'speakers to {FLAGS.out}; ceiling accuracy {report["ceiling_accuracy"]:.3f}'
    + (f'; {sentences} sentences' if sentences else '')
    + (f'; {grid_sentences} GRID sentences in {FLAGS.out}/grid' if grid_sentences else '')
  )
  return cli.SOME_FAILED if report['skipped_photos'] else cli.DONE


def sheet(argv: list[str]) -> None:
  """Writes the contact sheet."""
  del argv  # takes no arguments
  cli.require('out')
  contact_sheet.write_sheet(
    FLAGS.out,
    contact_sheet.make_sheet(
      _settings(), FLAGS.faces, FLAGS.rows, FLAGS.step, _speech(), FLAGS.photo, FLAGS.face_model
    ),
  )
  print(f'wrote {FLAGS.rows} clips as a contact sheet to {os.path.abspath(FLAGS.out)}')


def visemes(argv: list[str]) -> None:
  """Prints each word's phones and visemes and the words' ceiling accuracy."""
  words = [w.upper() for w in argv[1:]]
  if not words:
    raise ValueError('give one or more words, e.g. visemes BAT PAT MOON')
  for word in words:
    print(f'{word}: {" ".join(phonetics.phones(word))} -> {" ".join(phonetics.visemes(word))}')
  print(f'ceiling accuracy {phonetics.ceiling_accuracy(words):.3f}')


COMMANDS = {
  'generate': cli.Command(
    'Writes videos, transcripts and manifest.csv. Run again after an interruption, it goes '
    'on where it stopped (same settings) to the same bytes. Exit status 1 if a photo was '
    'skipped (each named on stderr).',
    generate,
    _define_generate_flags,
  ),
  'contact-sheet': cli.Command('Writes a PNG of frames to look at.', sheet, _define_sheet_flags),
  'visemes': cli.Command(
    "Prints words' phones, visemes and the ceiling accuracy: visemes BAT PAT MOON.",
    visemes,
    takes_arguments=True,
  ),
}


if __name__ == '__main__':
  cli.run_commands(PROGRAM, COMMANDS)
