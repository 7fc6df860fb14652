"""Live lip reading: cost per frame on one core, real-time factor, and word-spotting accuracy.

Usage:
  taskset -c 0 python experiments/bench_stream.py speed --workdir W --video V [--hop 2]
  python experiments/bench_stream.py spotting --workdir W --concat MANIFEST [--split test]
  python experiments/bench_stream.py spotting --workdir W --sentences SENTENCES_CSV [--split test]

speed: `lipjax.stream` over one video file, as fast as it goes (best of --repeats
runs): FaceMesh + face normalisation per frame, then per scored window the window's
features (smoothing, filling, AU/geometry) and the model, apart; the total per
frame, frames/s and the real-time factor (processing time / video duration). The
process pins itself to one core (as `taskset -c 0` does) before JAX and MediaPipe start.

spotting: the stream over held-out talk, scored against the words' spoken times.
  --concat MANIFEST: an LRW-style manifest's one-word clips (interval in the
    manifest) of each speaker of --split, words in turn, joined into one video per
    speaker; truth = each clip's word and interval, moved.
  --sentences SENTENCES_CSV: the generator's whole utterances (`--sentences N`,
    LRS2/LRS3-style transcripts with a word table), vocabulary and other words
    mixed, each speaker's joined into one video (as someone talking for a while).
A hit is an emitted word equal to a vocabulary word of the truth whose time (the
peak window's centre) lies in that word's spoken interval widened by --tolerance
seconds on each side; each spoken word and each emission count once (matched in
time order). Precision = hits / emissions, recall = hits / spoken vocabulary
words. Latency = emission time (the stream time of the hop that emitted the word:
the end of the last frame it needed) minus the spoken word's end, over hits; a live
source adds the processing time of that hop (the `speed` figures). Words in the
first or last half window of a video can never be centred in a window, so they
are excluded from the truth and reported apart.

Run of 2026-12-05 on the 2-core VM (no GPU), extraction's defaults (FaceMesh's attention model,
mirror-averaged), beside one or two training runs (figures in experiments/README.md, "Word
spotting"); the threshold is chosen on the val people's sentences, the figure is the test people's:
  # 10 demo words + _BACKGROUND_, 21 speakers (15 train, 2 val, 4 test), 1,575 clips and 4
  # sentences a speaker: 2 min 27 s
  python -m extraction.synthetic generate --out data/spot_videos --context_words 2 \
      --background_fraction 0.5 --sentences 4 --workers 1
  python -m extraction --input data/spot_videos/manifest.csv --out data/spot_fm \
      --workers 1                                                                   # 4 min 43 s
  python -m lipjax.train --config configs/small.py --config.data_dir=data/spot_fm \
      --config.model.centre=window_scaled --config.augment.mixup_alpha=0.0 \
      --workdir runs/spot_fm                                                        # 6 min 46 s
  python experiments/bench_stream.py spotting --workdir runs/spot_fm \
      --sentences data/spot_videos/sentences.csv --split val --hop 1                # 19 s
  python experiments/bench_stream.py spotting --workdir runs/spot_fm \
      --sentences data/spot_videos/sentences.csv --split test --hop 1               # 25 s
The speed figures (HISTORY.md) were not measured again: they need an idle machine.
"""

import csv
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time

from absl import flags
import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from extraction import cli

FLAGS = flags.FLAGS


def pin_to_one_core() -> int:
  """Restricts this process (and the threads it starts later) to its first allowed core."""
  core = min(os.sched_getaffinity(0))
  os.sched_setaffinity(0, {core})
  return core


class TimedScorer:
  """A stream scorer that times the model alone, from the second call of a run on.

  The first call of a run is the stream's warm-up (it compiles the model), not a window.
  """

  def __init__(self, scorer):
    self._scorer = scorer
    self.meta, self.settings = scorer.meta, scorer.settings
    self.start_run()

  def start_run(self):
    self.seconds, self.calls, self._warm_up = 0.0, 0, True

  def probabilities(self, examples, batch_size):
    started = time.perf_counter()
    out = self._scorer.probabilities(examples, batch_size)
    if self._warm_up:
      self._warm_up = False
    else:
      self.seconds += time.perf_counter() - started
      self.calls += 1
    return out


def speed(workdir: str, video: str, hop: int, repeats: int) -> dict:
  """Per-frame and per-window cost of the stream on one video file (best of `repeats` runs)."""
  from lipjax import stream

  scorer = TimedScorer(stream.load_predictor(workdir))
  runs = []
  for _ in range(repeats):
    scorer.start_run()
    _, summary = stream.spot_file(video, scorer, hop=hop)
    runs.append((summary.seconds, summary, scorer.seconds / max(scorer.calls, 1)))
  _, summary, model_seconds = min(runs, key=lambda r: r[0])
  frames = summary.frames
  window_seconds = summary.scoring_seconds / summary.hops - model_seconds
  return {
    'video': video,
    'frames': frames,
    'hop': hop,
    'facemesh_ms_per_frame': 1e3 * summary.facemesh_seconds / frames,
    'window_features_ms_per_hop': 1e3 * window_seconds,
    'model_ms_per_hop': 1e3 * model_seconds,
    'total_ms_per_frame': 1e3 * summary.seconds / frames,
    'frames_per_second': frames / summary.seconds,
    'real_time_factor': summary.real_time_factor,
    'runs_seconds': [round(r[0], 3) for r in runs],
  }


@dataclasses.dataclass
class Talk:
  """One video to spot words in and the words spoken in it."""

  path: str
  words: list  # (word, start, end) seconds, every spoken word


def join_talks(parts_by_speaker: dict, out_dir: str) -> list[Talk]:
  """Joins each speaker's videos (path, (word, start, end) list) into one video, times moved."""
  from extraction import video
  from extraction.synthetic import dataset

  talks = []
  for speaker, parts in sorted(parts_by_speaker.items()):
    frames, words, offset = [], [], 0.0
    for path, spoken in parts:
      clip, fps = video.read_frames(path)
      words += [(w, offset + s, offset + e) for w, s, e in spoken]
      frames.append(clip[..., ::-1])  # RGB -> BGR for the writer
      offset += len(clip) / fps
    out = os.path.join(out_dir, f'{speaker}.mp4')
    dataset.write_video(out, np.concatenate(frames), fps)
    talks.append(Talk(out, words))
  return talks


def _rows(manifest: str, split: str) -> list[dict]:
  """A manifest's rows of a split ('any': all), paths made absolute."""
  root = os.path.dirname(os.path.abspath(manifest))
  with open(manifest) as f:
    rows = [r for r in csv.DictReader(f) if split in ('any', r['split'])]
  return [dict(r, path=os.path.join(root, r['path'])) for r in rows]


def concat_talks(manifest: str, split: str, out_dir: str) -> list[Talk]:
  """A manifest's one-word clips of each speaker, words taken in turn, joined into one video."""
  by_speaker = {}
  for row in sorted(_rows(manifest, split), key=lambda r: r['path']):
    by_speaker.setdefault(row['speaker'], {}).setdefault(row['label'], []).append(row)
  parts = {}
  for speaker, by_word in by_speaker.items():
    # Round robin over the words, so that a video does not say one word twice in a row.
    rows = [
      by_word[w][k]
      for k in range(max(map(len, by_word.values())))
      for w in sorted(by_word)
      if k < len(by_word[w])
    ]
    parts[speaker] = [(r['path'], [(r['label'], float(r['start']), float(r['end']))]) for r in rows]
  return join_talks(parts, out_dir)


def sentence_talks(sentences_csv: str, split: str, out_dir: str) -> list[Talk]:
  """The generator's sentences of each speaker (word tables of their transcripts), joined."""
  from extraction import transcripts

  parts = {}
  for row in _rows(sentences_csv, split):
    table = transcripts.read(os.path.splitext(row['path'])[0] + '.txt').words
    spoken = [(w.upper(), float(s), float(e)) for w, s, e in table]
    parts.setdefault(row['speaker'], []).append((row['path'], spoken))
  return join_talks(parts, out_dir)


def match(emitted, truth, tolerance: float) -> tuple[int, list[float]]:
  """Hits between emitted spotting.Words and truth (word, start, end); returns (hits, latencies)."""
  used = [False] * len(truth)
  hits, latencies = 0, []
  for word in sorted(emitted, key=lambda w: w.time):
    for k, (label, start, end) in enumerate(truth):
      if not used[k] and label == word.word and start - tolerance <= word.time <= end + tolerance:
        used[k] = True
        hits += 1
        latencies.append(word.emitted_at - end)
        break
  return hits, latencies


def spotting_scores(
  workdir: str,
  talks: list[Talk],
  hop: int,
  thresholds,
  min_gap: float,
  tolerance: float,
) -> dict:
  """Precision, recall, F1 and latency of the stream's words at each threshold."""
  from lipjax import spotting
  from lipjax import stream

  scorer = stream.load_predictor(workdir)
  vocabulary = set(scorer.meta.class_names)
  half = 0.5 * scorer.meta.max_frames / scorer.meta.fps
  scored = []
  edge_words = 0
  for talk in talks:
    hops, summary = stream.spot_file(talk.path, scorer, hop=hop, threshold=1.0)
    hops = [h for h in hops if h.first >= 0]
    targets = [w for w in talk.words if w[0] in vocabulary]
    # A word whose centre is never a window centre cannot be spotted by any rule.
    reachable = [w for w in targets if half <= 0.5 * (w[1] + w[2]) <= summary.duration - half]
    edge_words += len(targets) - len(reachable)
    scored.append((hops, reachable))
  out = {'videos': len(talks), 'excluded_edge_words': edge_words, 'by_threshold': {}}
  for threshold in thresholds:
    emissions = hits = targets = 0
    latencies = []
    for hops, reachable in scored:
      probabilities = np.stack(
        [
          h.probabilities
          if h.probabilities is not None
          else np.full(scorer.meta.num_classes, np.nan)
          for h in hops
        ]
      )
      words = spotting.spot(
        [h.centre for h in hops],
        probabilities,
        scorer.meta.class_names,
        threshold,
        min_gap,
        emitted_at=[h.end for h in hops],
      )
      h, lat = match(words, reachable, tolerance)
      emissions += len(words)
      hits += h
      targets += len(reachable)
      latencies += lat
    precision = hits / emissions if emissions else float('nan')
    recall = hits / targets if targets else float('nan')
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    out['by_threshold'][f'{threshold:g}'] = {
      'emitted': emissions,
      'spoken': targets,
      'hits': hits,
      'precision': precision,
      'recall': recall,
      'f1': f1,
      'latency_median_s': float(np.median(latencies)) if latencies else None,
      'latency_p90_s': float(np.percentile(latencies, 90)) if latencies else None,
    }
  return out


def _define_speed_flags() -> None:
  """Flags of speed."""
  flags.DEFINE_string('workdir', None, 'Trained workdir whose best checkpoint scores windows.')
  flags.DEFINE_string('video', None, 'Video file to stream.')
  flags.DEFINE_integer('hop', 2, 'Frames between scored windows.')
  flags.DEFINE_integer('repeats', 3, 'Runs; the best is reported.')
  flags.DEFINE_bool('all_cores', False, 'Do not pin to one core.')


def _define_spotting_flags() -> None:
  """Flags of spotting."""
  flags.DEFINE_string('workdir', None, 'Trained workdir whose best checkpoint scores windows.')
  flags.DEFINE_string('concat', None, 'LRW-style manifest.csv of one-word clips.')
  flags.DEFINE_string('sentences', None, "The generator's sentences.csv.")
  flags.mark_flags_as_mutual_exclusive(['concat', 'sentences'], required=True)
  flags.DEFINE_string('split', 'test', "The split's speakers ('any': all).")
  flags.DEFINE_integer('hop', 2, 'Frames between scored windows.')
  flags.DEFINE_string('thresholds', '0.3,0.4,0.5,0.6,0.7,0.8', 'Emission thresholds, one row each.')
  flags.DEFINE_float('min_gap', 0.3, 'Seconds within which a second peak is the same word.')
  flags.DEFINE_float('tolerance', 0.1, "Seconds a hit may lie outside the word's interval.")


def _print(result: dict) -> None:
  """The result as JSON on stdout, with the machine it ran on."""
  result['machine'] = f'{platform.node()}, {os.cpu_count()} cores, {platform.processor()}'
  json.dump(result, sys.stdout, indent=1)
  print()


def speed_command(argv: list[str]) -> None:
  """Times the stream over one video; prints the JSON figures."""
  del argv  # takes no arguments
  cli.require('workdir', 'video')
  core = None if FLAGS.all_cores else pin_to_one_core()
  result = speed(FLAGS.workdir, FLAGS.video, FLAGS.hop, FLAGS.repeats)
  result['core'] = core
  _print(result)


def spotting_command(argv: list[str]) -> None:
  """Scores word spotting over held-out talk; prints the JSON figures."""
  del argv  # takes no arguments
  cli.require('workdir')
  with tempfile.TemporaryDirectory() as tmp:
    if FLAGS.concat:
      talks = concat_talks(FLAGS.concat, FLAGS.split, tmp)
    else:
      talks = sentence_talks(FLAGS.sentences, FLAGS.split, tmp)
    thresholds = [float(t) for t in FLAGS.thresholds.split(',')]
    result = spotting_scores(
      FLAGS.workdir, talks, FLAGS.hop, thresholds, FLAGS.min_gap, FLAGS.tolerance
    )
  result.update(hop=FLAGS.hop, min_gap=FLAGS.min_gap, tolerance_s=FLAGS.tolerance)
  _print(result)


COMMANDS = {
  'speed': cli.Command(
    'Cost per frame of `lipjax.stream` over one video on one core, and the real-time factor.',
    speed_command,
    _define_speed_flags,
  ),
  'spotting': cli.Command(
    'Word-spotting precision, recall and latency of the stream over held-out talk.',
    spotting_command,
    _define_spotting_flags,
  ),
}


if __name__ == '__main__':
  cli.run_commands('experiments/bench_stream.py', COMMANDS)
