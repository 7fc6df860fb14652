"""experiments/ablate.py's configs: --base changes every variant, and each variant's own change wins."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'experiments'))

import ablate  # noqa: E402


def test_parse_base_reads_literals_and_bare_strings():
  assert ablate.parse_base(
    ['model.centre=window_scaled', 'input.jit_augment=True', 'batch_size=64', 'x=1e-3']
  ) == {
    'model.centre': 'window_scaled',
    'input.jit_augment': True,
    'batch_size': 64,
    'x': 1e-3,
  }
  with pytest.raises(ValueError, match='KEY=VALUE'):
    ablate.parse_base(['model.centre'])


def test_base_goes_under_every_variant_and_the_variant_wins():
  base = {'model.centre': 'window_scaled', 'input.jit_augment': True}
  plain = ablate.variant_config('lipjax (small)', 0, 100, '/data', base)
  assert plain.model.centre == 'window_scaled'
  assert plain.input.jit_augment
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
