"""The demo data set: synthetic talking faces, generated once, then extracted into shards.

`build_demo_dataset(data_dir)` is what training calls when the demo data set is
missing. Videos go to a cache folder beside it (data_dir + '_videos') and are
reused while their generator settings are unchanged; extraction itself is
resumable, so an interrupted build picks up where it stopped. The whole build
is 1,370 clips: 10 words said once by each of 89 training people and three
times by each of 8 val and 8 test people (more people rather than more clips of
each carries best to new faces: experiments/README.md); the README's results
give what it costs. From the command line: `python -m extraction.demo DATA_DIR`.
"""

import dataclasses
import json
import logging
import os
import time

from absl import app

from extraction import cli
from extraction import clip as clip_lib
from extraction import pipeline
from extraction import schema
from extraction.synthetic import dataset

# The default vocabulary; every built-in face photo and the 98 of scikit-image's 100 LFW
# crops the face landmarker finds a face in (105 speakers), each photo one speaker; held-out
# people say each word three times.
DEMO_SETTINGS = dataset.Settings(
  lfw_faces=100,
  clips_per_speaker=1,
  val_speakers=8,
  test_speakers=8,
  held_out_clips_per_speaker=3,
)


def videos_dir_for(data_dir: str) -> str:
  """The cache folder of the demo videos that belongs to a data set folder."""
  return os.path.normpath(data_dir) + '_videos'


def _generated(videos_dir: str, settings: dataset.Settings) -> bool:
  """True if videos_dir holds a finished generation with exactly these settings."""
  marker = os.path.join(videos_dir, 'generator.json')
  if not os.path.exists(marker):
    return False
  with open(marker) as f:
    recorded = json.load(f)
  expected = json.loads(json.dumps(dataclasses.asdict(settings)))  # tuples -> lists
  return (
    {**dataset.SETTINGS_ADDED_LATER, **recorded.get('settings', {})} == expected
    and recorded.get('generator_version') == dataset.GENERATOR_VERSION
    and os.path.exists(os.path.join(videos_dir, 'manifest.csv'))
  )


def is_current(data_dir: str) -> bool:
  """True if data_dir holds a finished data set extracted with today's default settings.

  A demo set built before extraction's defaults changed (e.g. FaceMesh's model) is not:
  `lipjax.train` then extracts it again (the videos are reused) so the demo's figures hold.
  """
  try:
    meta = schema.DatasetMeta.load(data_dir)
  except (FileNotFoundError, ValueError):
    return False  # missing or unfinished: built (again)
  recorded = meta.extraction.get('settings', {})
  return clip_lib.Settings.from_record(recorded) == clip_lib.Settings()


def build_demo_dataset(data_dir: str, workers: int | None = None) -> None:
  """Generates the demo videos (if not cached) and extracts them into data_dir."""
  workers = workers or min(2, os.cpu_count() or 1)
  videos_dir = videos_dir_for(data_dir)
  began = time.time()
  if _generated(videos_dir, DEMO_SETTINGS):
    logging.info('demo data set: reusing synthetic videos in %s', videos_dir)
  else:
    logging.info(
      'demo data set: generating synthetic talking-face videos into %s '
      '(once; reused while the generator settings are unchanged)',
      videos_dir,
    )
    dataset.generate(videos_dir, DEMO_SETTINGS, workers=workers)
  logging.info('demo data set: extracting landmarks into %s', data_dir)
  report = pipeline.run(
    os.path.join(videos_dir, 'manifest.csv'), data_dir, workers=workers, progress=True
  )
  logging.info(
    'demo data set: %d clips written, %d failed, in %.0f s -> %s',
    report.get('written', 0),
    report.get('failed', 0),
    time.time() - began,
    data_dir,
  )


def main(argv: list[str]) -> int:
  """Builds the demo data set into the one folder given; SOME_FAILED if clips were skipped."""
  if len(argv) != 2:
    raise app.UsageError(f'give one DATA_DIR, got {argv[1:]}')
  cli.plain_logs()
  build_demo_dataset(argv[1])
  with open(os.path.join(argv[1], pipeline.REPORT_NAME)) as f:
    failed = json.load(f).get('failed', 0)
  return cli.SOME_FAILED if failed else cli.DONE


if __name__ == '__main__':
  # `python -m extraction.demo DATA_DIR`: the demo set where `lipjax.train` would build it,
  # from an environment with the extraction stack (the Colab notebook's data cell).
  cli.run(main, 'extraction.demo')
