"""Every command line of the project follows one convention (extraction/cli.py).

Flags are absl flags spelled with underscores (the argparse spellings still read);
exit status 0 done, 1 some inputs failed and were reported, 2 unusable input or
usage; a user's mistake is one line `PROGRAM: error: ...` on stderr; --help exits 0.
Each program runs as a user runs it, in a fresh process. Exit status 1 of real runs is
tested beside the work that reports the failed inputs: extraction
(test_extraction_pipeline, skipped clips), the generator (test_synthetic, a photo
without a face) and lipjax.predict (test_predict, a faceless video).
"""

import glob
import os
import subprocess
import sys

from absl import flags
import pytest

from extraction import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_HINT = 'see --help for flags, configs/*.py for config keys'
# (command words, the name its errors carry, a flag its --help lists or None)
PROGRAMS = [
  (['-m', 'lipjax.train'], 'lipjax.train', '--config'),
  (['-m', 'lipjax.evaluate'], 'lipjax.evaluate', '--split'),
  (['-m', 'lipjax.predict'], 'lipjax.predict', '--top_k'),
  (['-m', 'lipjax.diagnose'], 'lipjax.diagnose', '--data_dir'),
  (['-m', 'lipjax.export'], 'lipjax.export', '--out'),
  (['-m', 'lipjax.stream'], 'lipjax.stream', '--min_gap'),
  (['-m', 'extraction'], 'extraction', '--max_frames'),
  (['-m', 'extraction.demo'], 'extraction.demo', None),
  (['-m', 'extraction.synthetic', 'generate'], 'extraction.synthetic generate', '--lfw_faces'),
  (
    ['-m', 'extraction.synthetic', 'contact-sheet'],
    'extraction.synthetic contact-sheet',
    '--photo',
  ),
  (['-m', 'extraction.synthetic', 'visemes'], 'extraction.synthetic visemes', None),
  (['experiments/bench_stream.py', 'speed'], 'experiments/bench_stream.py speed', '--video'),
  (
    ['experiments/bench_stream.py', 'spotting'],
    'experiments/bench_stream.py spotting',
    '--tolerance',
  ),
  (['experiments/grid_trackers.py', 'track'], 'experiments/grid_trackers.py track', '--landmarks'),
  (['experiments/grid_trackers.py', 'layout'], 'experiments/grid_trackers.py layout', '--tracks'),
  (['experiments/grid_trackers.py', 'jitter'], 'experiments/grid_trackers.py jitter', '--tracks'),
] + [
  ([path], path, '--')
  for path in sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, 'experiments', '*.py'))
  )
  if not path.endswith(('bench_stream.py', 'grid_trackers.py'))  # programs of commands, above
]
# One program of each kind runs in the fast tier; the sweep over the others is slow (~40 s).
FAST = ('lipjax.diagnose', 'extraction', 'extraction.synthetic generate', 'experiments/ablate.py')
SWEEP = [
  pytest.param(*program, id=program[1], marks=() if program[1] in FAST else pytest.mark.slow)
  for program in PROGRAMS
]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
  """`python ARGS...` from the repository root, as a user types it."""
  return subprocess.run(
    [sys.executable, *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=timeout,
    env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'},
    check=False,
  )


def error_line(result: subprocess.CompletedProcess) -> str:
  """The last line on stderr, where the one-line error is; no traceback before it."""
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  lines = result.stderr.strip().splitlines()
  return lines[-1] if lines else ''


@pytest.mark.parametrize('command, program, flag', SWEEP)
def test_help_exits_0_with_the_programs_own_flags(command, program, flag):
  result = run(*command, '--help')
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip() and 'Try --helpfull' in result.stdout
  if flag:
    assert f'\n  {flag}' in result.stdout, result.stdout


@pytest.mark.parametrize('command, program, flag', SWEEP)
def test_a_misspelt_flag_is_one_line_and_exit_2(command, program, flag):
  result = run(*command, '--no_such_flag=1')
  assert result.returncode == 2
  hint = CONFIG_HINT if program == 'lipjax.train' else cli.USAGE_HINT
  assert error_line(result) == (
    f"{program}: error: bad command line: Unknown command line flag 'no_such_flag' ({hint})"
  )


@pytest.mark.parametrize(
  'command, line',
  [
    (
      ['-m', 'lipjax.diagnose', '/nowhere/run'],
      'lipjax.diagnose: error: /nowhere/run: no config.json; is this a lipjax training workdir?',
    ),
    (
      ['-m', 'lipjax.evaluate'],
      f'lipjax.evaluate: error: --workdir is required ({cli.USAGE_HINT})',
    ),
    (
      ['-m', 'extraction', '--input', '/nowhere/corpus', '--out', '/nowhere/data'],
      'extraction: error: /nowhere/corpus: no such folder or manifest',
    ),
    (
      ['-m', 'extraction.synthetic', 'visemes', 'XYZZYQ'],
      "extraction.synthetic visemes: error: word 'XYZZYQ' is not in the CMU Pronouncing Dictionary",
    ),
    (
      ['-m', 'extraction.synthetic'],
      'extraction.synthetic: error: give a command: generate, contact-sheet, visemes '
      f'({cli.USAGE_HINT})',
    ),
    (
      ['experiments/ablate.py', '--only_finished', '--out', '{tmp}/ablation'],
      'experiments/ablate.py: error: no finished runs of these variants and seeds under '
      '{tmp}/ablation',
    ),
    (
      ['experiments/bench_generator.py', '--takes', '1,2,3'],
      'experiments/bench_generator.py: error: --takes needs two clip counts, e.g. 1,4; got '
      '[1, 2, 3]',
    ),
    (
      ['experiments/bench_generator.py', '--words', '4', 'extra'],
      f"experiments/bench_generator.py: error: unexpected arguments ['extra'] ({cli.USAGE_HINT})",
    ),
  ],
  ids=[
    'lipjax',
    'lipjax usage',
    'extraction',
    'generator',
    'generator usage',
    'ablate',
    'bench',
    'arguments',
  ],
)
def test_unusable_input_is_one_line_and_exit_2(command, line, tmp_path):
  result = run(*(word.format(tmp=tmp_path) for word in command))
  assert result.returncode == 2
  assert error_line(result) == line.format(tmp=tmp_path)
  assert not os.path.exists('/nowhere')


def test_old_spellings_still_read(tmp_path):
  # argparse's hyphens: the settings reach extraction's checks under their new names.
  result = run('-m', 'extraction', '--input', '/x', '--out', '/y', '--max-frames', '0')
  assert result.returncode == 2
  assert error_line(result).startswith('extraction: error: --max_frames must be at least 1')
  # nargs='+' lists, a variant name with a comma among them: parsed, then no runs to table.
  result = run(
    'experiments/ablate.py',
    '--only_finished',
    '--seeds',
    '0',
    '1',
    '--variants',
    'lipjax (small)',
    'rest centring, unscaled',
    '--base',
    'model.centre=window_scaled',
    'seed=3',
    '--out',
    str(tmp_path),
  )
  assert result.returncode == 2
  assert error_line(result).startswith('experiments/ablate.py: error: no finished runs')
  # -h, argparse's short help.
  result = run('-m', 'extraction.synthetic', 'generate', '-h')
  assert result.returncode == 0 and '--context_words' in result.stdout


def test_canonical_argv_underscores_names_and_joins_list_words():
  flag_values = flags.FlagValues()
  flags.DEFINE_integer('max_frames', 29, '', flag_values=flag_values)
  flags.DEFINE_bool('skip_extraction', False, '', flag_values=flag_values)
  flags.DEFINE_list('variants', [], '', flag_values=flag_values)
  flags.DEFINE_multi_string('base', [], '', flag_values=flag_values)
  argv = ['prog', '--max-frames', '7', '--noskip-extraction', '--variants', 'a (b)', 'c, d']
  argv += ['--base', 'x=(1,2)', 'y=3', '--', '--max-frames']
  canonical = cli.canonical_argv(argv, join_lists=True, flag_values=flag_values)
  assert canonical == [
    'prog',
    '--max_frames',
    '7',
    '--noskip_extraction',
    '--variants=a (b),"c, d"',
    '--base=x=(1,2)',
    '--base=y=3',
    '--',
    '--max-frames',
  ]
  assert flag_values(canonical) == ['prog', '--max-frames']
  assert flag_values.variants == ['a (b)', 'c, d'] and flag_values.base == ['x=(1,2)', 'y=3']
  # Where a program takes arguments, words after a list flag stay arguments.
  assert cli.canonical_argv(
    ['prog', '--variants', 'a', 'video.mp4'], join_lists=False, flag_values=flag_values
  ) == ['prog', '--variants', 'a', 'video.mp4']
