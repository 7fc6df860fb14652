"""`python -m extraction --input DIR_OR_MANIFEST --out DATA_DIR [--workers N]`: videos -> shards.

Extracts mouth-landmark graphs from face videos into ArrayRecord (or TFRecord)
shards that tfds.builder_from_directory(DATA_DIR) describes, and
extraction_report.json. Resumable: rerun the same command after an
interruption and finished clips are not redone; rerun it with another --file_format
and the shards are rewritten from the clip cache. Exit status 0: every clip written;
1: some clips were skipped (each listed on stderr and in the report); 2: unusable
input or settings.
"""

import os
import sys

# MediaPipe and TensorFlow log from C++ at import; the workers inherit this quieter setting.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('GLOG_minloglevel', '2')

from absl import flags

from extraction import cli
from extraction import clip
from extraction import face_model
from extraction import grid
from extraction import pipeline
from extraction import shards
from extraction import sources
from extraction import transcripts

FLAGS = flags.FLAGS
PROGRAM = 'extraction'


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  defaults = clip.Settings()
  flags.DEFINE_string(
    'input',
    None,
    'LRW-style folder (WORD/{train,val,test}/WORD_00001.mp4 + .txt), a GRID folder (speaker '
    'folders of videos and .align word timings, as the corpus is distributed) or a CSV manifest '
    'with columns path,label,split,speaker,start,end (rows may share a video, one per word).',
  )
  flags.DEFINE_string(
    'out',
    None,
    f'Data set folder to write shards, metadata and {pipeline.REPORT_NAME} into.',
  )
  flags.DEFINE_integer(
    'workers',
    None,
    'Worker processes, each running its own FaceMesh on a core of its own (default: every '
    'core this job may use).',
  )
  flags.DEFINE_integer(
    'max_frames',
    defaults.max_frames,
    'Frames per example (T); longer clips are cut around the speech.',
  )
  flags.DEFINE_float(
    'fps', defaults.fps, 'Data set frame rate; videos at other rates are resampled to it.'
  )
  flags.DEFINE_float(
    'ema_alpha',
    defaults.ema_alpha,
    'Landmark smoothing: s_t = alpha * x_t + (1 - alpha) * s_{t-1}.',
  )
  flags.DEFINE_float(
    'min_face_fraction',
    defaults.min_face_fraction,
    'Skip a clip whose face is found in fewer of its frames than this.',
  )
  flags.DEFINE_integer(
    'min_frames', defaults.min_frames, 'Skip a clip shorter than this (after resampling).'
  )
  flags.DEFINE_enum(
    'landmarks',
    defaults.landmarks,
    clip.LANDMARK_SOURCES,
    "landmarker: MediaPipe's Face Landmarker (its bundle: --face_model). facemesh: the legacy "
    "FaceMesh (mediapipe < 1). file: read each video's landmarks from "
    "VIDEO.landmarks.npy beside it (float [frames, 468, 2 or 3], pixels, FaceMesh's layout, "
    'a NaN row where no face was found; extraction/landmark_files.py), e.g. found by another '
    "tracker or written by the generator's --save_landmarks.",
  )
  flags.DEFINE_bool(
    'refine_landmarks',
    defaults.refine_landmarks,
    "The legacy FaceMesh's attention model (--landmarks facemesh; mediapipe's "
    'refine_landmarks): places the lip and eye contours again with its own sub-model (about '
    '1.3x the time per frame); the Face Landmarker always runs its own. Recorded in the '
    'metadata: lipjax.predict and lipjax.stream track with the same model.',
  )
  flags.DEFINE_bool(
    'mirror_average',
    defaults.mirror_average,
    'The tracker on every frame and on its mirror image, each landmark the mean of the two '
    'estimates: twice the time per frame, for +1.4 points of word accuracy on GRID s1 (one '
    'seed; experiments/README.md). Recorded in the metadata like --refine_landmarks.',
  )
  flags.DEFINE_string(
    'face_model',
    None,
    "The Face Landmarker's bundle, face_landmarker.task (--landmarks landmarker). Default: "
    f'${face_model.ENV_VAR}, else the user cache ({face_model.cache_path()}), else downloaded '
    'once from MediaPipe and checked against its SHA-256. A path given here never reaches '
    'the network.',
  )
  flags.DEFINE_integer(
    'num_shards',
    1,
    'Shard files per split; also the number of array jobs that may split the corpus.',
  )
  flags.DEFINE_enum(
    'file_format',
    shards.ARRAY_RECORD,
    shards.FILE_FORMATS,
    'array_record: random access, read without TensorFlow (lipjax, grain, '
    'builder.as_data_source); tfrecord: for tf.data users (builder.as_dataset), needs '
    'TensorFlow.',
  )
  flags.DEFINE_integer(
    'shard_index',
    None,
    'Process only this shard (0-based), e.g. $SLURM_ARRAY_TASK_ID; the last job to finish '
    'writes the metadata.',
  )
  flags.DEFINE_bool('quiet', False, 'No progress bar.')
  grid_defaults = grid.Options()
  flags.DEFINE_enum(
    'examples',
    grid_defaults.examples,
    grid.EXAMPLES,
    'GRID: words (each word a --max_frames window centred on it, labelled with it: 51 classes) '
    'or sentences (each video one example with its text as tokens, for the sentence reader; '
    'give --max_frames 75, GRID videos being 3 s).',
  )
  flags.DEFINE_enum(
    'split_by',
    grid_defaults.split_by,
    grid.SPLITS_BY,
    "GRID: sentence (each speaker's sentences split by a seeded share, speaker-dependent) or "
    'speaker (--test_speakers held out: speaker-independent).',
  )
  flags.DEFINE_integer('split_seed', grid_defaults.seed, 'GRID: seed of the split.')
  flags.DEFINE_float(
    'val_fraction', grid_defaults.val_fraction, "GRID: share of each speaker's sentences for val."
  )
  flags.DEFINE_float(
    'test_fraction',
    grid_defaults.test_fraction,
    "GRID with --split_by sentence: share of each speaker's sentences for test.",
  )
  flags.DEFINE_list(
    'test_speakers',
    [],
    "GRID with --split_by speaker: the held-out speakers, e.g. LipNet's s1,s2,s20,s22.",
  )
  flags.DEFINE_list(
    'val_speakers',
    [],
    'GRID with --split_by speaker: speakers for val (default: --val_fraction of the training '
    "speakers' sentences).",
  )


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


def main(argv: list[str]) -> int:
  """Extracts the corpus; prints the summary and every skipped clip; returns the exit status."""
  del argv  # the flags say it all
  cli.require('input', 'out')
  cli.plain_logs()
  settings = clip.Settings(
    max_frames=FLAGS.max_frames,
    fps=FLAGS.fps,
    ema_alpha=FLAGS.ema_alpha,
    min_face_fraction=FLAGS.min_face_fraction,
    min_frames=FLAGS.min_frames,
    landmarks=FLAGS.landmarks,
    refine_landmarks=FLAGS.refine_landmarks,
    mirror_average=FLAGS.mirror_average,
  )
  problems = [(f'--{name}', problem) for name, problem in settings.problems()]
  if FLAGS.workers is not None and FLAGS.workers < 1:
    problems.append(('--workers', f'must be at least 1, got {FLAGS.workers}'))
  if FLAGS.num_shards < 1:
    problems.append(('--num_shards', f'must be at least 1, got {FLAGS.num_shards}'))
  elif FLAGS.shard_index is not None and not 0 <= FLAGS.shard_index < FLAGS.num_shards:
    problems.append(
      ('--shard_index', f'must be in [0, {FLAGS.num_shards}), got {FLAGS.shard_index}')
    )
  grid_options = grid.Options(
    examples=FLAGS.examples,
    split_by=FLAGS.split_by,
    seed=FLAGS.split_seed,
    val_fraction=FLAGS.val_fraction,
    test_fraction=FLAGS.test_fraction,
    test_speakers=tuple(FLAGS.test_speakers),
    val_speakers=tuple(FLAGS.val_speakers),
  )
  problems += [(f'--{name}', problem) for name, problem in grid_options.problems()]
  if problems:
    raise ValueError('; '.join(f'{flag} {problem}' for flag, problem in problems))
  report = pipeline.run(
    FLAGS.input,
    FLAGS.out,
    workers=FLAGS.workers,
    settings=settings,
    num_shards=FLAGS.num_shards,
    shard_index=FLAGS.shard_index,
    progress=not FLAGS.quiet,
    file_format=FLAGS.file_format,
    grid_options=grid_options,
    face_model=FLAGS.face_model,
  )
  print(_summary(report))
  for split in report.get('splits', {}).values():
    for skipped in split['skipped']:
      print(f'  skipped {skipped["video_id"]}: {skipped["reason"]}', file=sys.stderr)
  for rejected in report.get('rejected', []):
    print(f'  skipped {rejected["video_id"]}: {rejected["reason"]}', file=sys.stderr)
  if report.get('complete'):
    print(f'report: {os.path.join(FLAGS.out, pipeline.REPORT_NAME)}')
  return cli.SOME_FAILED if report.get('failed') else cli.DONE


if __name__ == '__main__':
  cli.run(
    main,
    PROGRAM,
    define_flags,
    takes_arguments=False,
    user_errors=(sources.SourceError, transcripts.TranscriptError),
  )
