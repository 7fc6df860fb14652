"""experiments/ablate.py's configs: --base changes every variant, and each variant's own change wins."""

import csv
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'experiments'))

import ablate  # noqa: E402


def test_parse_base_reads_literals_and_bare_strings():
  assert ablate.parse_base(
    ['model.centre=window_scaled', 'input.cache=True', 'batch_size=64', 'x=1e-3']
  ) == {
    'model.centre': 'window_scaled',
    'input.cache': True,
    'batch_size': 64,
    'x': 1e-3,
  }
  with pytest.raises(ValueError, match='KEY=VALUE'):
    ablate.parse_base(['model.centre'])


def test_base_goes_under_every_variant_and_the_variant_wins():
  base = {'model.centre': 'window_scaled', 'input.cache': False}
  plain = ablate.variant_config('lipjax (small)', 0, 100, '/data', base)
  assert plain.model.centre == 'window_scaled'
  assert not plain.input.cache
  assert plain.data_dir == '/data'
  no_mask = ablate.variant_config('no speech mask', 1, 100, None, base)
  assert (no_mask.model.centre, no_mask.model.mask_mode, no_mask.seed) == (
    'window_scaled',
    'frames',
    1,
  )
  # The centring variants set the centring themselves, whatever the base says.
  assert ablate.variant_config('no rest centring', 0, 100, None, base).model.centre == 'none'
  assert ablate.variant_config('rest centring', 0, 100, None, base).model.centre == 'rest_scaled'
  # Without a base, today's tables are unchanged.
  assert ablate.variant_config('lipjax (small)', 0, 100, None).model.centre == 'rest_scaled'


def test_a_misspelt_base_key_fails():
  with pytest.raises(KeyError):
    ablate.variant_config('lipjax (small)', 0, 100, None, {'model.centr': 'none'})


def test_only_finished_tables_the_saved_runs_of_todays_config(tmp_path):
  """--only_finished trains nothing; a saved run made with another config is left out."""
  out = str(tmp_path / 'ablation')
  os.makedirs(os.path.join(out, 'runs'))
  base = {'model.centre': 'window_scaled'}

  def save(name, seed, config_base, test, **measured):
    config = ablate.variant_config(name, seed, 100, '/data', config_base)
    _, path = ablate._paths(name, seed, out)
    result = {
      'variant': name, 'seed': seed, 'steps': 100, 'train_accuracy': 0.5, 'val_accuracy': 0.4,
      'test_accuracy': test, 'test_macro_f1': test, 'gap': 0.1, 'best_step': 100,
      'parameters': 7, 'train_seconds': 60.0, **measured,
      'config': json.loads(config.to_json_best_effort()),
    }  # fmt: skip
    with open(path, 'w') as f:
      json.dump(result, f)

  save('lipjax (small)', 0, base, 0.5)  # saved before ablate.py recorded peak memory
  save('lipjax (small)', 1, base, 0.7, peak_rss_gib=1.5)
  save('no speech mask', 0, None, 0.9)  # made without the base: not today's
  command = [
    sys.executable, os.path.join(REPO, 'experiments', 'ablate.py'), '--only_finished',
    '--steps', '100', '--seeds', '0,1', '--data_dir', '/data', '--out', out,
    '--variants', 'lipjax (small),no speech mask', '--base', 'model.centre=window_scaled',
  ]  # fmt: skip
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert 'finished runs: lipjax (small) seeds [0, 1]' in result.stdout
  with open(os.path.join(out, 'ablation.csv')) as f:
    rows = list(csv.DictReader(f))
  assert [(r['variant'], r['seeds']) for r in rows] == [('lipjax (small)', '2')]
  assert float(rows[0]['test_accuracy_mean']) == pytest.approx(0.6)
  with open(os.path.join(out, 'runs.csv')) as f:
    runs = list(csv.DictReader(f))
  assert [(r['seed'], r['peak_rss_gib']) for r in runs] == [('0', ''), ('1', '1.5')]
  assert not os.path.exists(os.path.join(out, 'runs', 'lipjax__small__seed0'))  # nothing trained
  table = open(os.path.join(out, 'ablation.md')).read()
  assert '--base model.centre=window_scaled --only_finished' in table
  assert '| lipjax (small) | 2 | 0.600 ± 0.141 |' in table
  assert 'peak memory 1.5 GiB' in table


def test_a_run_saved_before_a_config_field_existed_matches_its_no_op_value(tmp_path):
  """A saved config without min_train_steps ran what min_train_steps=0 runs, and only that."""
  config = ablate.variant_config('lipjax (small)', 0, 100, '/data')
  resolved = json.loads(config.to_json_best_effort())
  assert resolved['min_train_steps'] == 0
  older = {k: v for k, v in resolved.items() if k != 'min_train_steps'}
  path = str(tmp_path / 'run.json')
  with open(path, 'w') as f:
    json.dump({'test_accuracy': 0.5, 'config': older}, f)
  assert ablate._saved_result(path, resolved) == {'test_accuracy': 0.5, 'config': older}
  assert ablate._saved_result(path, {**resolved, 'min_train_steps': 500}) is None
  assert ablate._saved_result(path, {**resolved, 'seed': 1}) is None
