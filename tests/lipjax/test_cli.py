"""Command-line helpers: CPU cores as pmap devices."""

from lipjax import cli

FLAG = '--xla_force_host_platform_device_count'


def test_one_device_per_core_that_divides_the_batches(monkeypatch):
  monkeypatch.setattr(cli.os, 'cpu_count', lambda: 4)
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_enable_fast_math=false')
  assert cli.split_cpu_into_devices(-1, (32, 12)) == 4
  assert cli.os.environ['XLA_FLAGS'] == f'--xla_cpu_enable_fast_math=false {FLAG}=4'
  monkeypatch.delenv('XLA_FLAGS')
  assert cli.split_cpu_into_devices(-1, (6,)) == 3  # 4 does not divide 6


def test_user_setting_and_zero_leave_xla_flags_alone(monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', f'{FLAG}=1')
  assert cli.split_cpu_into_devices(-1, (32,)) == 0
  assert cli.os.environ['XLA_FLAGS'] == f'{FLAG}=1'
  monkeypatch.delenv('XLA_FLAGS')
  assert cli.split_cpu_into_devices(0, (32,)) == 0
  assert 'XLA_FLAGS' not in cli.os.environ
  assert cli.split_cpu_into_devices(2, (32,)) == 2
  assert cli.os.environ['XLA_FLAGS'] == f'{FLAG}=2'
