"""GRID's word windows extracted one decode per video against one link per word, in one run.

python experiments/bench_grid_extraction.py --input GRID_DIR [--videos 1000] [--workers 2]
    [--before facemesh,refine,mirror] [--after landmarker,mirror] [--face_model F]

Before many intervals per video, a GRID video's six words had to be six manifest rows
naming six links to it: each decoded the video and tracked the face through its own
29-frame window. Now the GRID folder (or a manifest whose rows share the video) is
decoded once and tracked once over the span of the six windows. Both ways extract the
same --videos videos' words into fresh folders, one after the other on this machine, and
the ratio of their wall times is printed with the frames tracked, each with its own
settings: --before and --after are the tracker (facemesh: the legacy FaceMesh; landmarker:
the Face Landmarker) and its options (refine: the legacy attention model; mirror: mirror
averaging). Extraction's defaults when the one-link run was measured were
facemesh,refine,mirror; the same settings on both sides give the ratio of the change alone.
"""

import csv
import os
import platform
import shlex
import sys
import tempfile
import time

from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from extraction import cli
from extraction import clip as clip_lib
from extraction import grid
from extraction import pipeline

FLAGS = flags.FLAGS
PROGRAM = 'experiments/bench_grid_extraction.py'


def settings_of(words: list[str]) -> clip_lib.Settings:
  """Extraction settings from 'facemesh,refine,mirror'-style words."""
  tracker, options = words[0], set(words[1:])
  unknown = options - {'refine', 'mirror'}
  if tracker not in clip_lib.TRACKERS or unknown:
    raise ValueError(f'expected TRACKER[,refine][,mirror] with TRACKER in {clip_lib.TRACKERS}')
  return clip_lib.Settings(
    landmarks=tracker, refine_landmarks='refine' in options, mirror_average='mirror' in options
  )


def one_link_per_word(clips, folder: str) -> str:
  """A manifest of one row per word, each naming a link of its own to the word's video."""
  links = os.path.join(folder, 'links')
  os.makedirs(links)
  rows = []
  for k, clip in enumerate(clips):
    link = os.path.join(links, f'{k:05d}{os.path.splitext(clip.video_path)[1]}')
    os.symlink(os.path.abspath(clip.video_path), link)
    start, end = clip.interval
    rows.append([link, clip.label, clip.split, clip.speaker, start, end])
  path = os.path.join(folder, 'one_link_per_word.csv')
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['path', 'label', 'split', 'speaker', 'start', 'end'])
    writer.writerows(rows)
  return path


def grid_subset(root: str, count: int, folder: str) -> str:
  """A GRID folder of links to the first `count` videos (sorted) and their alignments."""
  videos, aligns = grid.find(root)
  for speaker, name in sorted(videos)[:count]:
    for source, target in (
      (
        videos[speaker, name],
        os.path.join(folder, speaker, os.path.basename(videos[speaker, name])),
      ),
      (aligns[speaker, name], os.path.join(folder, 'alignments', speaker, name + '.align')),
    ):
      os.makedirs(os.path.dirname(target), exist_ok=True)
      os.symlink(os.path.abspath(source), target)
  return folder


def timed(input_path: str, out_dir: str, settings: clip_lib.Settings) -> dict:
  """Extracts into a fresh folder; the report with its wall time."""
  began = time.perf_counter()
  report = pipeline.run(
    input_path,
    out_dir,
    workers=FLAGS.workers,
    settings=settings,
    progress=False,
    face_model=FLAGS.face_model,
  )
  report['wall_seconds'] = time.perf_counter() - began
  return report


def main(argv) -> None:
  """Runs both extractions and prints their figures and the ratio."""
  del argv
  cli.require('input')
  print(f'$ {shlex.join(["python", PROGRAM] + sys.argv[1:])}')
  print(
    f'{time.strftime("%Y-%m-%d %H:%M")}, {platform.processor() or platform.machine()}, '
    f'{os.cpu_count()} cores'
  )
  before, after = settings_of(FLAGS.before), settings_of(FLAGS.after)
  with tempfile.TemporaryDirectory() as scratch:
    subset = grid_subset(FLAGS.input, FLAGS.videos, os.path.join(scratch, 'grid'))
    clips = [c for c in grid.discover(subset) if c.error is None]
    manifest = one_link_per_word(clips, scratch)
    rows = []
    for name, input_path, settings in (
      ('one link per word', manifest, before),
      ('one decode per video', subset, after),
    ):
      report = timed(input_path, os.path.join(scratch, name.replace(' ', '_')), settings)
      rows.append((name, settings, report))
  print(f'\n{FLAGS.videos} GRID videos, {len(clips)} word windows, {FLAGS.workers} workers')
  print('| extraction | tracker | windows written | frames tracked | wall s | frames/s |')
  print('|---|---|---|---|---|---|')
  for name, settings, report in rows:
    tracker = ','.join(
      [settings.landmarks]
      + (['refine'] if settings.refine_landmarks and settings.landmarks == 'facemesh' else [])
      + (['mirror'] if settings.mirror_average else [])
    )
    print(
      f'| {name} | {tracker} | {report["written"]} | {report["frames_processed"]} | '
      f'{report["wall_seconds"]:.0f} | {report["frames_processed"] / report["wall_seconds"]:.0f} |'
    )
  ratio = rows[0][2]['wall_seconds'] / rows[1][2]['wall_seconds']
  print(f'\none decode per video is {ratio:.2f}x faster (wall time, the same run)')


def define_flags() -> None:
  flags.DEFINE_string('input', None, 'A GRID folder (extraction/grid.py layouts).')
  flags.DEFINE_integer('videos', 1000, 'The first N videos (sorted by speaker and name).')
  flags.DEFINE_integer('workers', 2, 'Extraction workers, both ways.')
  flags.DEFINE_list(
    'before', ['facemesh', 'refine', 'mirror'], 'One link per word: tracker,options.'
  )
  flags.DEFINE_list(
    'after', ['facemesh', 'refine', 'mirror'], 'One decode per video: tracker,options.'
  )
  flags.DEFINE_string('face_model', None, "The landmarker's bundle (face_model.resolve).")


if __name__ == '__main__':
  cli.run(main, PROGRAM, define_flags, takes_arguments=False)
