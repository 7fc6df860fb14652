"""CPU seconds per synthetic clip: generation (rendering + encoding), optionally extraction, and a 500-word budget.

python experiments/bench_generator.py [--base REV] [--words N] [--takes 1,4] [--context_words 2]
    [--extract] [--workdir DIR]

Runs `python -m extraction.synthetic generate --workers 1` twice per tree, with
--clips_per_speaker at each of --takes, and takes the difference of the process
CPU time (user + system of the command and its worker processes) over the
difference in clips: the marginal cost of a clip, without start-up, the FaceMesh
runs on the photos and the writing of the manifest. CPU time, not wall time: the
machine is shared. --base REV also measures the generator of a git revision (its
`extraction/` from `git archive`, in a temporary folder) in the same run, so both
figures see the same machine. --extract measures `python -m extraction` on the
same sets the same way, and the summary line projects a 500-word set with 75
training clips a word.
"""

import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from absl import flags

from extraction import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS


def _cpu_of(command: list[str], cwd: str) -> float:
  """Runs a command to completion; returns the CPU seconds it and its children used."""
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if result.returncode != 0:
    raise RuntimeError(f'{shlex.join(command)} failed:\n{result.stderr[-3000:]}')
  return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _clips(out_dir: str) -> int:
  """Clips a finished generate run wrote (rows of its manifest)."""
  with open(os.path.join(out_dir, 'manifest.csv')) as f:
    return sum(1 for _ in f) - 1


def _generate_command(args, out_dir: str, takes: int) -> list[str]:
  """The generate command of one measurement (flags every measured revision knows).

  Hyphen spellings: the argparse generators of older revisions know only those, and
  today's reads them as the underscore flags.
  """
  return [
    sys.executable, '-m', 'extraction.synthetic', 'generate', '--out', out_dir,
    '--vocabulary-size', str(args.words), '--context-words', str(args.context_words),
    '--clips-per-speaker', str(takes), '--workers', '1', '--seed', str(args.seed),
  ]  # fmt: skip


def measure(tree: str, args, scratch: str, label: str) -> dict:
  """Marginal CPU seconds per clip of generation (and extraction) for one source tree."""
  runs = []
  for takes in args.takes:
    out_dir = os.path.join(scratch, f'{label}_{takes}')
    began = time.monotonic()
    cpu = _cpu_of(_generate_command(args, out_dir, takes), tree)
    run = {'takes': takes, 'clips': _clips(out_dir), 'generate_cpu_s': cpu}
    run['generate_wall_s'] = time.monotonic() - began
    if args.extract:
      data_dir = os.path.join(scratch, f'{label}_{takes}_data')
      run['extract_cpu_s'] = _cpu_of(
        [
          sys.executable,
          '-m',
          'extraction',
          '--input',
          os.path.join(out_dir, 'manifest.csv'),
          '--out',
          data_dir,
          '--workers',
          '1',
        ],  # fmt: skip
        REPO,
      )
    runs.append(run)
    print(f'  {label}: {json.dumps(run)}', flush=True)
  first, last = runs[0], runs[-1]
  extra_clips = last['clips'] - first['clips']
  if extra_clips <= 0:
    raise ValueError(
      f'--takes {args.takes} gave no extra clips ({first["clips"]} -> {last["clips"]})'
    )
  figures = {
    'generate_cpu_s_per_clip': (last['generate_cpu_s'] - first['generate_cpu_s']) / extra_clips,
    'generate_fixed_cpu_s': first['generate_cpu_s']
    - first['clips'] * (last['generate_cpu_s'] - first['generate_cpu_s']) / extra_clips,
  }
  if args.extract:
    figures['extract_cpu_s_per_clip'] = (
      last['extract_cpu_s'] - first['extract_cpu_s']
    ) / extra_clips
  return figures


def base_tree(revision: str, scratch: str) -> str:
  """A folder holding `extraction/` as it was at a git revision."""
  tree = os.path.join(scratch, 'base_tree')
  os.makedirs(tree)
  archive = subprocess.run(
    ['git', 'archive', revision, 'extraction'], cwd=REPO, capture_output=True, check=True
  ).stdout
  subprocess.run(['tar', '-x', '-C', tree], input=archive, check=True)
  return tree


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('base', None, 'Git revision to measure beside the work tree.')
  flags.DEFINE_integer('words', 4, '--vocabulary_size of the measured sets.')
  cli.define_integer_list('takes', [1, 4], 'Two --clips_per_speaker, e.g. 1,4.')
  flags.DEFINE_integer('context_words', 2, '--context_words of the measured sets.')
  flags.DEFINE_integer('seed', 0, '--seed of the measured sets.')
  flags.DEFINE_bool('extract', False, 'Also measure extraction.')
  flags.DEFINE_string('workdir', None, 'Scratch folder (default: a temporary one).')


def main(argv: list[str]) -> None:
  """Measures, prints the figures and the command that made them."""
  del argv  # takes no arguments
  args = FLAGS
  if len(args.takes) != 2:
    raise ValueError(f'--takes needs two clip counts, e.g. 1,4; got {args.takes}')
  command = shlex.join(['python', 'experiments/bench_generator.py'] + sys.argv[1:])
  scratch = args.workdir or tempfile.mkdtemp(prefix='bench_generator_')
  os.makedirs(scratch, exist_ok=True)
  print(
    f'$ {command}\n{time.strftime("%Y-%m-%d %H:%M")} on {os.cpu_count()} cores, scratch {scratch}'
  )
  try:
    results = {}
    if args.base:
      results[f'base {args.base}'] = measure(base_tree(args.base, scratch), args, scratch, 'base')
    results['work tree'] = measure(REPO, args, scratch, 'work')
  finally:
    if not args.workdir:
      shutil.rmtree(scratch, ignore_errors=True)
  print(
    f'\nCPU seconds per clip ({args.words} words, --context_words {args.context_words}, 1 worker):'
  )
  for name, figures in results.items():
    line = f'  {name:<24} generate {figures["generate_cpu_s_per_clip"]:.4f}'
    line += f' (+{figures["generate_fixed_cpu_s"]:.1f} s a run)'
    if 'extract_cpu_s_per_clip' in figures:
      line += f', extract {figures["extract_cpu_s_per_clip"]:.4f}'
    print(line)
  if args.base:
    old, new = (r['generate_cpu_s_per_clip'] for r in results.values())
    print(f'  generation: {old / new:.2f}x less CPU a clip than {args.base}')
  work = results['work tree']
  if 'extract_cpu_s_per_clip' in work:
    # 500 words x (75 training + 25 held-out clips a word), as the 500-word set's plan.
    clips = 500 * 100
    core_s = clips * (work['generate_cpu_s_per_clip'] + work['extract_cpu_s_per_clip'])
    print(
      f'  500 words x 100 clips ({clips:,}): {core_s / 3600:.2f} core-hours = '
      f'{core_s / 7200:.2f} h on 2 cores (generation + extraction, at these rates)'
    )


if __name__ == '__main__':
  cli.run(main, 'experiments/bench_generator.py', define_flags, takes_arguments=False)
