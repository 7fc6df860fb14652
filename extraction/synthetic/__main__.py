"""Command line: generate a synthetic data set, draw a contact sheet, show visemes.

python -m extraction.synthetic generate --out DIR [--words BAT,PAT,... | --vocabulary-size N]
    [--context-words K [--background-fraction F]] [--sentences N] [--faces DIR]
python -m extraction.synthetic contact-sheet --out sheet.png [--context-words K]
python -m extraction.synthetic visemes BAT PAT MOON
"""

import argparse
import dataclasses
import os
import sys

from extraction import schema
from extraction.synthetic import contact_sheet
from extraction.synthetic import dataset
from extraction.synthetic import lexicon
from extraction.synthetic import phonetics
from extraction.synthetic import running


def _pair(text: str) -> tuple[float, float]:
  """Parses 'lo,hi' into two floats with lo <= hi."""
  try:
    lo, hi = (float(x) for x in text.split(','))
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected LO,HI (two numbers), got {text!r}') from None
  if lo > hi:
    raise argparse.ArgumentTypeError(f'expected LO <= HI, got {text!r}')
  return lo, hi


def _int_pair(text: str) -> tuple[int, int]:
  """Parses 'lo,hi' into two integers with lo <= hi."""
  lo, hi = _pair(text)
  if lo != int(lo) or hi != int(hi):
    raise argparse.ArgumentTypeError(f'expected LO,HI (two integers), got {text!r}')
  return int(lo), int(hi)


def _words(text: str) -> tuple[str, ...]:
  """Parses a comma-separated word list."""
  return tuple(w.strip().upper() for w in text.split(',') if w.strip())


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
  """Flags shared by generate and contact-sheet, defaulting to dataset.Settings."""
  d = dataset.Settings()
  vocabulary = parser.add_mutually_exclusive_group()
  vocabulary.add_argument(
    '--words',
    type=_words,
    default=d.words,
    help=f'comma-separated vocabulary (default {",".join(d.words)})',
  )
  vocabulary.add_argument(
    '--vocabulary-size',
    type=int,
    default=None,
    metavar='N',
    help='vocabulary: the N most frequent English words (wordfreq) of '
    f'{lexicon.MIN_VOCABULARY_LETTERS}+ letters that CMUdict pronounces (deterministic)',
  )
  parser.add_argument(
    '--faces',
    default=None,
    help='folder of face photos, one identity each (default: built-in faces)',
  )
  parser.add_argument('--seed', type=int, default=d.seed)
  parser.add_argument('--fps', type=float, default=d.fps)
  parser.add_argument('--frames', type=int, default=d.num_frames, dest='num_frames')
  parser.add_argument(
    '--clips-per-speaker',
    type=int,
    default=d.clips_per_speaker,
    help='clips of each word per speaker',
  )
  parser.add_argument(
    '--variants',
    type=int,
    default=d.variants_per_face,
    dest='variants_per_face',
    help='speakers made from each face photo, each drawn as a person of its own (geometry, '
    "appearance, head pose, camera, speaking style); all of a person's speakers share a split",
  )
  parser.add_argument(
    '--lfw-faces',
    type=int,
    default=d.lfw_faces,
    metavar='N',
    help="built-in faces: the seven photos plus the first N of scikit-image's 100 LFW face crops "
    'that FaceMesh finds (0-100; ignored with --faces)',
  )
  parser.add_argument('--val-speakers', type=int, default=d.val_speakers)
  parser.add_argument('--test-speakers', type=int, default=d.test_speakers)
  parser.add_argument(
    '--rate-range', type=_pair, default=d.rate_range, help='speaking-rate factor LO,HI'
  )
  parser.add_argument('--duration-jitter', type=float, default=d.duration_jitter)
  parser.add_argument(
    '--lead-range', type=_pair, default=d.lead_range, help='leading silence LO,HI in seconds'
  )
  parser.add_argument(
    '--min-trail', type=float, default=d.min_trail, help='shortest trailing silence in seconds'
  )
  parser.add_argument('--coarticulation-ms', type=float, default=d.coarticulation_ms)
  parser.add_argument(
    '--rest-open-range',
    type=_pair,
    default=d.rest_open_range,
    help='jaw and lip opening at rest LO,HI (0 = closed, 1 = wide), per clip',
  )
  parser.add_argument('--head-degrees', type=float, default=d.head_degrees)
  parser.add_argument('--head-scale', type=float, default=d.head_scale)
  parser.add_argument('--head-shift', type=float, default=d.head_shift, help='pixels')
  parser.add_argument('--brightness-jitter', type=float, default=d.brightness_jitter)
  r = running.RunningSpeech()
  parser.add_argument(
    '--context-words',
    type=int,
    default=r.context_words,
    metavar='K',
    help='0: isolated words (a word between silences). K > 0: each clip is a --frames window '
    'cut from running speech as LRW cuts it: the word centred, at least K context words on each '
    'side (more where K do not fill the window), coarticulated across word boundaries, speech in '
    "every frame; the transcript is LRW's (Text, Conf, Duration)",
  )
  parser.add_argument(
    '--lexicon-size',
    type=int,
    default=r.lexicon_size,
    metavar='N',
    help='context words come from the N most frequent English words, less the vocabulary and '
    'its look-alikes (same visemes); drawn by frequency',
  )
  parser.add_argument(
    '--pause-probability',
    type=float,
    default=r.pause_probability,
    help='chance of a pause between two words of running speech',
  )
  parser.add_argument(
    '--pause-range', type=_pair, default=r.pause_range, help='pause length LO,HI in seconds'
  )


def _add_generate_flags(parser: argparse.ArgumentParser) -> None:
  """Flags of generate only: background windows and sentences."""
  r = running.RunningSpeech()
  parser.add_argument(
    '--background-fraction',
    type=float,
    default=r.background_fraction,
    metavar='F',
    help='with --context-words K > 0: also write round(F x word clips per speaker) windows per '
    f'speaker labelled {schema.BACKGROUND_LABEL} (folder {schema.BACKGROUND_LABEL}/SPLIT/), '
    'centred on a non-vocabulary word, a pause or a word boundary',
  )
  parser.add_argument(
    '--sentences',
    type=int,
    default=r.sentences,
    metavar='N',
    help='also write N whole utterances per speaker (vocabulary and context words mixed) as '
    "sentences/SPLIT_00001.mp4 with LRS2-style transcripts (each word's start and end) and "
    'sentences.csv',
  )
  parser.add_argument(
    '--sentence-words', type=_int_pair, default=r.sentence_words, help='words per sentence LO,HI'
  )
  parser.add_argument(
    '--sentence-vocabulary-share',
    type=float,
    default=r.sentence_vocabulary_share,
    help='chance that a sentence word is a vocabulary word (each sentence has at least one)',
  )


def _settings(args) -> dataset.Settings:
  """Builds Settings from parsed flags (--vocabulary-size resolved into words)."""
  names = {f.name for f in dataclasses.fields(dataset.Settings)}
  settings = dataset.Settings(**{k: v for k, v in vars(args).items() if k in names})
  if args.vocabulary_size is not None:
    settings = dataclasses.replace(settings, words=lexicon.vocabulary(args.vocabulary_size))
  return settings


def _speech(args) -> running.RunningSpeech:
  """Builds RunningSpeech from parsed flags (those a subcommand lacks keep their defaults)."""
  names = {f.name for f in dataclasses.fields(running.RunningSpeech)}
  return running.RunningSpeech(**{k: v for k, v in vars(args).items() if k in names})


def main(argv=None) -> int:
  """Runs one subcommand; returns the exit code."""
  parser = argparse.ArgumentParser(
    prog='python -m extraction.synthetic',
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  commands = parser.add_subparsers(dest='command', required=True)
  gen = commands.add_parser(
    'generate',
    help='write videos, transcripts, manifest.csv',
    description='Writes videos, transcripts and manifest.csv. Run again after an '
    'interruption, it goes on where it stopped (same settings) to the same bytes.',
  )
  gen.add_argument('--out', required=True, help='output folder')
  gen.add_argument('--workers', type=int, default=1)
  _add_settings_flags(gen)
  _add_generate_flags(gen)
  sheet = commands.add_parser('contact-sheet', help='write a PNG of frames to look at')
  sheet.add_argument('--out', required=True, help='PNG path')
  sheet.add_argument('--rows', type=int, default=8, help='clips (rows) on the sheet')
  sheet.add_argument('--step', type=int, default=3, help='show every STEP-th frame')
  sheet.add_argument(
    '--photo', default=None, help='show only the speakers of this photo (e.g. hopper, lfw-03)'
  )
  _add_settings_flags(sheet)
  vis = commands.add_parser('visemes', help="print words' phones, visemes and the ceiling")
  vis.add_argument('words', nargs='+')
  args = parser.parse_args(argv)
  try:
    if args.command == 'generate':
      report = dataset.generate(args.out, _settings(args), args.faces, args.workers, _speech(args))
      for message in report['skipped_photos']:
        print(f'skipped: {message}', file=sys.stderr)
      sentences = sum(report.get('sentences', {}).values())
      print(
        f'wrote {sum(report["clips"].values())} clips ({report["clips"]}) of '
        f'{len(report["words"])} words by {sum(map(len, report["speakers"].values()))} '
        f'speakers to {args.out}; ceiling accuracy {report["ceiling_accuracy"]:.3f}'
        + (f'; {sentences} sentences' if sentences else '')
      )
    elif args.command == 'contact-sheet':
      settings = _settings(args)
      contact_sheet.write_sheet(
        args.out,
        contact_sheet.make_sheet(
          settings, args.faces, args.rows, args.step, _speech(args), args.photo
        ),
      )
      print(f'wrote {args.rows} clips as a contact sheet to {os.path.abspath(args.out)}')
    else:
      words = [w.upper() for w in args.words]
      for word in words:
        print(f'{word}: {" ".join(phonetics.phones(word))} -> {" ".join(phonetics.visemes(word))}')
      print(f'ceiling accuracy {phonetics.ceiling_accuracy(words):.3f}')
  except (ValueError, OSError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
