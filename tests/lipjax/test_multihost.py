"""Two processes (jax.distributed over gloo, one CPU device each) train as one process on two devices.

Both runs go through the command line; the two-process run is killed by the
test after its step-4 checkpoint and started again, so the comparison also
covers resuming a multi-host run.
"""

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

from checkpoint_files import checkpoint_params
from checkpoint_files import read_metrics
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # real processes under jax.distributed

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMING_KEYS = ('steps_per_sec', 'examples_per_sec')

# The CLI, parked (not killed) right after the step-4 checkpoint, so that the test
# kills both processes while neither is inside a collective the other would wait in.
PARK_AFTER_CHECKPOINT = textwrap.dedent("""
    import pathlib, runpy, sys, time
    from lipjax import checkpoints
    real_save, parked = checkpoints.save, pathlib.Path(sys.argv[1])

    def save_then_park(manager, step, *args, **kwargs):
      real_save(manager, step, *args, **kwargs)
      if step == 4 and str(manager.directory).endswith('latest'):
        parked.touch()
        time.sleep(600)

    checkpoints.save = save_then_park
    sys.argv = ['lipjax.train'] + sys.argv[2:]
    runpy.run_module('lipjax.main', run_name='__main__', alter_sys=True)
""")


def free_port() -> int:
  """A TCP port on 127.0.0.1 that nothing listens on now."""
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def train_args(workdir, data_dir, *extra) -> list[str]:
  """`lipjax.train` arguments for configs/test.py on the synthetic data set."""
  return [
    '--config',
    'configs/test.py',
    '--workdir',
    str(workdir),
    f'--config.data_dir={data_dir}',
    *extra,
  ]


def start(args, log_path):
  """Starts `python args...` from the repo root, stdout and stderr into log_path."""
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env['PYTHONPATH'] = REPO
  with open(log_path, 'w') as log:
    return subprocess.Popen(
      [sys.executable] + args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def finish(processes, logs, timeout=420):
  """Waits for every process; on a timeout kills them all. Returns their exit codes."""
  deadline = time.monotonic() + timeout
  try:
    return [p.wait(max(deadline - time.monotonic(), 1)) for p in processes]
  except subprocess.TimeoutExpired:
    for p in processes:
      p.kill()
    raise AssertionError('timed out:\n' + '\n'.join(tail(log) for log in logs)) from None


def tail(log_path) -> str:
  """The end of a process's log, for a failure message."""
  with open(log_path) as f:
    return f'--- {log_path}\n' + f.read()[-2500:]


def two_processes(tmp_path, name, workdir, data_dir, program):
  """Starts processes 0 and 1 of a 2-process job running `program` (argv before the flags)."""
  address = f'127.0.0.1:{free_port()}'
  processes, logs = [], []
  for index in (0, 1):
    logs.append(tmp_path / f'{name}.{index}.log')
    flags = train_args(
      workdir,
      data_dir,
      '--config.cpu_devices=1',
      '--config.distributed=True',
      f'--config.coordinator_address={address}',
      '--config.num_processes=2',
      f'--config.process_id={index}',
    )
    processes.append(start(program(index) + flags, logs[-1]))
  return processes, logs


def without_timing(records):
  """metrics.jsonl records without the wall-clock figures."""
  return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def test_two_processes_train_like_one_process_with_two_devices_and_resume(dataset, tmp_path):
  data_dir, _ = dataset
  one = tmp_path / 'one_process'
  reference = start(
    ['-m', 'lipjax.train'] + train_args(one, data_dir, '--config.cpu_devices=2'),
    tmp_path / 'one.log',
  )

  two = tmp_path / 'two_processes'
  (tmp_path / 'park.py').write_text(PARK_AFTER_CHECKPOINT)
  parked = [tmp_path / f'parked.{index}' for index in (0, 1)]
  processes, logs = two_processes(
    tmp_path, 'killed', two, data_dir, lambda i: [str(tmp_path / 'park.py'), str(parked[i])]
  )
  deadline = time.monotonic() + 420  # generous: the test machine's cores are shared
  while not all(p.exists() for p in parked):
    assert all(p.poll() is None for p in processes), '\n'.join(tail(log) for log in logs)
    assert time.monotonic() < deadline, '\n'.join(tail(log) for log in logs)
    time.sleep(0.2)
  for p in processes:
    p.send_signal(signal.SIGKILL)  # both processes die mid-run, after the step-4 checkpoint
  assert finish(processes, logs) == [-signal.SIGKILL] * 2
  assert sorted(os.listdir(two / 'checkpoints' / 'latest')) == ['2', '4']
  assert [r['step'] for r in read_metrics(two)] == [3]

  # The same command again: both processes resume from step 4.
  processes, logs = two_processes(
    tmp_path, 'resumed', two, data_dir, lambda i: ['-m', 'lipjax.train']
  )
  assert finish(processes, logs) == [0, 0], '\n'.join(tail(log) for log in logs)
  assert finish([reference], [tmp_path / 'one.log']) == [0], tail(tmp_path / 'one.log')
  for log in logs:
    assert 'Resumed from step 4' in open(log).read(), tail(log)

  # The same trajectory (train and val metrics at steps 3 and 6) and the same parameters.
  assert without_timing(read_metrics(two)) == without_timing(read_metrics(one))
  assert [(r['step'], r['devices'], r['val_examples']) for r in read_metrics(two)] == [
    (3, 2, 13),
    (6, 2, 13),
  ]
  for step in (4, 6):
    for a, b in zip(checkpoint_params(one, 'latest', step), checkpoint_params(two, 'latest', step)):
      np.testing.assert_array_equal(a, b)
  # Process 0 alone wrote the workdir's files; the workdir says what was trained.
  assert json.loads((two / 'config.json').read_text())['num_processes'] == 2
  assert (two / 'training_curves.png').exists() and os.listdir(two / 'tensorboard')


def test_a_workdir_refused_on_process_0_stops_every_process_with_a_reason(dataset, tmp_path):
  data_dir, _ = dataset
  workdir = tmp_path / 'held'
  workdir.mkdir()
  # Another training holds the workdir: process 0 (the one that checks it) refuses.
  with open(workdir / '.lock', 'a+') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock.write('pid 4242')
    lock.flush()
    processes, logs = two_processes(
      tmp_path, 'refused', workdir, data_dir, lambda i: ['-m', 'lipjax.train']
    )
    # Process 1 must not wait for process 0 at a collective it never reaches.
    assert finish(processes, logs, timeout=240) == [2, 2], '\n'.join(tail(log) for log in logs)
  last = [open(log).read().strip().splitlines()[-1] for log in logs]
  assert last[0] == (
    f'lipjax.train: error: {workdir} is in use by a running training (pid 4242); wait for it '
    'to finish or use another --workdir'
  )
  assert last[1] == (
    f'lipjax.train: error: {workdir}: process 0 of this job refused the workdir (its log says '
    'why); nothing was trained'
  )
  assert sorted(os.listdir(workdir)) == ['.lock']  # no config.json, checkpoint or log
