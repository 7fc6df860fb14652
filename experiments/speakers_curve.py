"""Accuracy on held-out people against the number of training speakers, at a fixed number of clips.

python experiments/speakers_curve.py --out experiments/results/speakers --points 4:11,11:4,22:2,44:1
    [--steps 3000] [--seeds 0] [--base KEY=VALUE ...] [--workers 2]

Each point S:K is a data set whose training split holds S speakers saying each of
the vocabulary's words K times: S x K x words training clips, the same number at
every point. It is built by `python -m extraction.synthetic generate
--train_speakers S --clips_per_speaker K --held_out_clips_per_speaker N` (a
seeded choice of S of the training speakers; the val and test people and their
clips are the same at every point) and `python -m extraction`, both resumable.
configs/small.py with the --base changes then trains on it (experiments/
ablate.py's runs: early stopping on val, the best checkpoint evaluated on
every split). Writes speakers.csv, speakers.md (the table) and speakers.png
(test accuracy against training speakers, log scale) into --out, and prints the
table and the command that made it.
"""

import os
import shlex
import subprocess
import sys
import time

from absl import flags
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ablate  # the runs: one config per variant and seed, trained and evaluated

from extraction import cli
from extraction import schema

FLAGS = flags.FLAGS
PROGRAM = 'experiments/speakers_curve.py'


def define_flags() -> None:
  flags.DEFINE_string('out', None, 'Folder for the data sets, runs, table and plot.')
  flags.DEFINE_list('points', ['4:11', '11:4', '22:2', '44:1'], 'S:K pairs: speakers, clips.')
  flags.DEFINE_integer('steps', 3000, 'Training steps per run.')
  cli.define_integer_list('seeds', [0], 'Training seeds per point.')
  flags.DEFINE_multi_string('base', [], 'KEY=VALUE config change of every run (repeatable).')
  flags.DEFINE_integer(
    'vocabulary_size', 100, "Words: the N most frequent (0: the generator's 10 demo words)."
  )
  flags.DEFINE_integer('context_words', 2, 'Words in running speech (0: isolated words).')
  flags.DEFINE_integer('lfw_faces', 100, 'LFW crops beside the seven photos (generate).')
  flags.DEFINE_integer('held_out_people', 8, 'People in val, and as many in test (generate).')
  flags.DEFINE_integer('held_out_clips', 1, 'Clips of each word per val or test person.')
  flags.DEFINE_integer('workers', 2, 'Worker processes of generate and extraction.')


def parse_points(items: list[str]) -> list[tuple[int, int]]:
  """['4:11', ...] -> [(4, 11), ...], all with the same number of clips per word."""
  points = []
  for item in items:
    speakers, sep, clips = item.partition(':')
    if not sep or not speakers.isdigit() or not clips.isdigit():
      raise ValueError(f'--points takes S:K pairs of whole numbers, got {item!r}')
    points.append((int(speakers), int(clips)))
  if len({s * k for s, k in points}) != 1:
    raise ValueError(f'--points: S x K differs between points {points}; the curve fixes it')
  return points


def build(out: str, speakers: int, clips: int) -> str:
  """Generates and extracts the data set of one point (both resumable); returns its data dir."""
  videos = os.path.join(out, f'data_{speakers}x{clips}_videos')
  data = os.path.join(out, f'data_{speakers}x{clips}')
  if not os.path.exists(os.path.join(videos, 'generator.json')):
    run_step(
      ['-m', 'extraction.synthetic', 'generate', '--out', videos]
      + ([f'--vocabulary_size={FLAGS.vocabulary_size}'] if FLAGS.vocabulary_size else [])
      + [f'--context_words={FLAGS.context_words}']
      + [f'--lfw_faces={FLAGS.lfw_faces}', '--variants=1']
      + [f'--val_speakers={FLAGS.held_out_people}', f'--test_speakers={FLAGS.held_out_people}']
      + [f'--train_speakers={speakers}', f'--clips_per_speaker={clips}']
      + [f'--held_out_clips_per_speaker={FLAGS.held_out_clips}', f'--workers={FLAGS.workers}']
    )
  if not os.path.exists(os.path.join(data, 'dataset_info.json')):
    run_step(
      ['-m', 'extraction', '--input', os.path.join(videos, 'manifest.csv'), '--out', data]
      + [f'--workers={FLAGS.workers}', '--quiet']
    )
  return data


def run_step(args: list[str]) -> None:
  """Runs `python ARGS` from the repository; its failure ends this program with its last line."""
  started = time.perf_counter()
  result = subprocess.run([sys.executable] + args, cwd=os.path.dirname(HERE), check=False)
  if result.returncode not in (0, 1):  # 1: some clips skipped, reported in its report
    raise RuntimeError(f'python {shlex.join(args)} exited {result.returncode}')
  print(f'{args[1]}: {time.perf_counter() - started:.0f} s', flush=True)


def plot(rows: list[dict], path: str) -> None:
  """Test accuracy (mean and each seed) against training speakers, log scale."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  speakers = sorted({r['speakers'] for r in rows})
  means = [np.mean([r['test'] for r in rows if r['speakers'] == s]) for s in speakers]
  figure, axis = plt.subplots(figsize=(6, 4))
  axis.plot([r['speakers'] for r in rows], [r['test'] for r in rows], 'o', alpha=0.4)
  axis.plot(speakers, means, '-o', label='test (held-out people)')
  val = [np.mean([r['val'] for r in rows if r['speakers'] == s]) for s in speakers]
  axis.plot(speakers, val, '--s', color='gray', ms=4, label='val (other held-out people)')
  axis.set_xscale('log')
  axis.minorticks_off()
  axis.set_xticks(speakers, [str(s) for s in speakers])
  axis.set_xlabel(f'training speakers ({rows[0]["train_clips"]:,} training clips at every point)')
  axis.set_ylabel('accuracy')
  kind = 'words in running speech' if FLAGS.context_words else 'isolated words'
  words = FLAGS.vocabulary_size or 10  # 0: the generator's 10 demo words
  axis.set_title(f'Held-out people against training speakers\n{words} {kind}', fontsize=11)
  axis.grid(alpha=0.3)
  axis.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def main(argv: list[str]) -> int:
  cli.require('out')
  points = parse_points(FLAGS.points)
  base = ablate.parse_base(FLAGS.base)
  os.makedirs(FLAGS.out, exist_ok=True)
  rows = []
  for speakers, clips in points:
    data = build(FLAGS.out, speakers, clips)
    for seed in FLAGS.seeds:
      result = ablate.run_one(
        'lipjax (small)',
        seed,
        FLAGS.steps,
        os.path.join(FLAGS.out, f'{speakers}x{clips}'),
        data,
        base,
      )
      train_clips = schema.DatasetMeta.load(data).split_sizes['train']
      rows.append(
        dict(
          speakers=speakers,
          clips_per_word=clips,
          seed=seed,
          train_clips=train_clips,
          train=result['train_accuracy'],
          val=result['val_accuracy'],
          test=result['test_accuracy'],
          steps=result['best_step'],
        )
      )
  ablate.write_csv(os.path.join(FLAGS.out, 'speakers.csv'), rows)
  table = [
    '| training speakers | clips per word each | training clips | seeds | test (held-out people) '
    '| val | train |',
    '|---|---|---|---|---|---|---|',
  ]
  for speakers, clips in points:
    mine = [r for r in rows if r['speakers'] == speakers]
    mean = {key: f'{np.mean([r[key] for r in mine]):.3f}' for key in ('train', 'val', 'test')}
    spread = f' ± {np.std([r["test"] for r in mine]):.3f}' if len(mine) > 1 else ''
    table.append(
      f'| {speakers} | {clips} | {mine[0]["train_clips"]:,} | {len(mine)} | '
      f'{mean["test"]}{spread} | {mean["val"]} | {mean["train"]} |'
    )
  command = 'python experiments/speakers_curve.py ' + shlex.join(argv[1:] or sys.argv[1:])
  text = '\n'.join(table) + f'\n\n`{command}`\n'
  with open(os.path.join(FLAGS.out, 'speakers.md'), 'w') as f:
    f.write(text)
  plot(rows, os.path.join(FLAGS.out, 'speakers.png'))
  print(text)
  return cli.DONE


if __name__ == '__main__':
  cli.run(main, PROGRAM, define_flags, takes_arguments=False, description=__doc__)
