"""Command line: python -m extraction --input DIR_OR_MANIFEST --out DATA_DIR [--workers N]."""

import argparse
import logging
import os
import sys

# MediaPipe and TensorFlow log from C++ at import; the workers inherit this quieter setting.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('GLOG_minloglevel', '2')

from extraction import clip
from extraction import pipeline
from extraction import shards
from extraction import sources
from extraction import transcripts


def _parser() -> argparse.ArgumentParser:
  defaults = clip.Settings()
  parser = argparse.ArgumentParser(
    prog='python -m extraction',
    description='Extract mouth-landmark graphs from face videos into ArrayRecord (or TFRecord) '
    'shards that tfds.builder_from_directory(OUT) describes. Resumable: rerun the same command '
    'after an interruption and finished clips are not redone; rerun it with another '
    '--file-format and the shards are rewritten from the clip cache.',
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument(
    '--input',
    required=True,
    help='LRW-style folder (WORD/{train,val,test}/WORD_00001.mp4 + .txt) or a CSV '
    'manifest with columns path,label,split,speaker,start,end',
  )
  parser.add_argument(
    '--out',
    required=True,
    help=f'data set folder to write shards, metadata and {pipeline.REPORT_NAME} into',
  )
  parser.add_argument(
    '--workers',
    type=int,
    default=None,
    help='worker processes, each running its own FaceMesh on a core of its own '
    '(default: every core this job may use)',
  )
  parser.add_argument(
    '--max-frames',
    type=int,
    default=defaults.max_frames,
    help='frames per example (T); longer clips are cut around the speech',
  )
  parser.add_argument(
    '--fps',
    type=float,
    default=defaults.fps,
    help='data set frame rate; videos at other rates are resampled to it',
  )
  parser.add_argument(
    '--ema-alpha',
    type=float,
    default=defaults.ema_alpha,
    help='landmark smoothing: s_t = alpha * x_t + (1 - alpha) * s_{t-1}',
  )
  parser.add_argument(
    '--min-face-fraction',
    type=float,
    default=defaults.min_face_fraction,
    help='skip a clip whose face is found in fewer of its frames than this',
  )
  parser.add_argument(
    '--min-frames',
    type=int,
    default=defaults.min_frames,
    help='skip a clip shorter than this (after resampling)',
  )
  parser.add_argument(
    '--num-shards',
    type=int,
    default=1,
    help='shard files per split; also the number of array jobs that may split the corpus',
  )
  parser.add_argument(
    '--file-format',
    choices=shards.FILE_FORMATS,
    default=shards.ARRAY_RECORD,
    help='array_record: random access, read without TensorFlow (lipjax, grain, '
    'builder.as_data_source); tfrecord: for tf.data users (builder.as_dataset), needs TensorFlow',
  )
  parser.add_argument(
    '--shard-index',
    type=int,
    default=None,
    help='process only this shard (0-based), e.g. $SLURM_ARRAY_TASK_ID; the last job '
    'to finish writes the metadata',
  )
  parser.add_argument('--quiet', action='store_true', help='no progress bar')
  return parser


def _summary(report: dict) -> str:
  if not report.get('complete'):
    stale = (
      f'; shard(s) {", ".join(map(str, report["stale_parts"]))} were made from another '
      'input or settings and must be rerun'
      if report.get('stale_parts')
      else ''
    )
    return (
      f'shard done; {report["parts_done"]} of {report["num_shards"]} shards present, '
      f'metadata is written when the last one finishes{stale}'
    )
  per_split = ', '.join(
    f'{name} {s["written"]} (face {s["face_detection_rate"]:.1%})'
    for name, s in report['splits'].items()
  )
  rate = f', {report["frames_per_second"]:.0f} frames/s' if 'frames_per_second' in report else ''
  return f'wrote {report["written"]} clips: {per_split}; {report["failed"]} skipped{rate}'


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(message)s')
  logging.getLogger('absl').setLevel(logging.ERROR)
  settings = clip.Settings(
    max_frames=args.max_frames,
    fps=args.fps,
    ema_alpha=args.ema_alpha,
    min_face_fraction=args.min_face_fraction,
    min_frames=args.min_frames,
  )
  problems = [(f'--{name.replace("_", "-")}', problem) for name, problem in settings.problems()]
  if args.workers is not None and args.workers < 1:
    problems.append(('--workers', f'must be at least 1, got {args.workers}'))
  if args.num_shards < 1:
    problems.append(('--num-shards', f'must be at least 1, got {args.num_shards}'))
  elif args.shard_index is not None and not 0 <= args.shard_index < args.num_shards:
    problems.append(('--shard-index', f'must be in [0, {args.num_shards}), got {args.shard_index}'))
  if problems:
    print(
      'extraction: error: ' + '; '.join(f'{flag} {problem}' for flag, problem in problems),
      file=sys.stderr,
    )
    return 2
  try:
    report = pipeline.run(
      args.input,
      args.out,
      workers=args.workers,
      settings=settings,
      num_shards=args.num_shards,
      shard_index=args.shard_index,
      progress=not args.quiet,
      file_format=args.file_format,
    )
  except (sources.SourceError, transcripts.TranscriptError, ValueError, OSError) as error:
    print(f'extraction: error: {error}', file=sys.stderr)
    return 2
  print(_summary(report))
  for split in report.get('splits', {}).values():
    for skipped in split['skipped']:
      print(f'  skipped {skipped["video_id"]}: {skipped["reason"]}', file=sys.stderr)
  for rejected in report.get('rejected', []):
    print(f'  skipped {rejected["video_id"]}: {rejected["reason"]}', file=sys.stderr)
  if report.get('complete'):
    print(f'report: {os.path.join(args.out, pipeline.REPORT_NAME)}')
  return 1 if report.get('failed') else 0


if __name__ == '__main__':
  sys.exit(main())
