"""experiments/bench_gpu.py on CPU with tiny settings: every column is filled, nothing fails."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'experiments'))

import bench_gpu


def test_cost_analysis_flops_from_a_dict_or_a_list_of_dicts():
  assert bench_gpu.total_flops({'flops': 3.0}) == 3.0
  assert bench_gpu.total_flops([{'flops': 3.0}, {'flops': 2.0}]) == 5.0
  assert bench_gpu.total_flops(None) == 0.0


@pytest.mark.slow
def test_tiny_run_measures_every_row():
  rows = bench_gpu.benchmark(
    bench_gpu.Settings(
      configs='small',
      batch_sizes='2',
      dtypes='bfloat16',
      frames=6,
      matmul_size=64,
      min_seconds=0.01,
      max_steps=2,
    )
  )
  assert [(r['dtype'], r['batch']) for r in rows] == [('bfloat16', 2)]
  for row in rows:
    assert 'error' not in row, row
    assert row['examples_s'] > 0 and row['of_matmul'] > 0
    assert row['unrolled'] and row['gflop_step'] > 0 and row['xla_scan_gflop'] > 0
