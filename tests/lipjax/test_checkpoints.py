"""Checkpoints survive kill -9 anywhere: during a checkpoint write and between steps."""

import os
import random
import subprocess
import sys
import textwrap

from checkpoint_files import latest
from checkpoint_files import read_metrics
import numpy as np
import pytest

from lipjax import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Trains configs/test.py for 8 steps (checkpoints every 2) and SIGKILLs itself at one point:
# 'write:S' inside the orbax write of the latest checkpoint of step S (its files half
# written, not yet committed), or 'step:S' just before training step S.
KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from configs import test
    from lipjax import input_pipeline, train
    from orbax.checkpoint._src.handlers import json_checkpoint_handler as json_handler

    kind, at = sys.argv[3].split(':')
    at = int(at)
    if kind == 'write':
      real_save_fn = json_handler.JsonCheckpointHandler._save_fn

      async def save_then_die(self, x, directory):
        await real_save_fn(self, x, directory)
        if f'latest/{at}.orbax-checkpoint-tmp' in str(directory):
          os.kill(os.getpid(), signal.SIGKILL)

      json_handler.JsonCheckpointHandler._save_fn = save_then_die
    else:
      real_iterator = input_pipeline.train_iterator

      def die_before_step(config, meta, start_step, *args):
        for step, batch in enumerate(real_iterator(config, meta, start_step, *args),
                                     start_step + 1):
          if step == at:
            os.kill(os.getpid(), signal.SIGKILL)
          yield batch

      input_pipeline.train_iterator = die_before_step
    config = test.get_config()
    config.data_dir, config.num_train_steps, config.eval_every_steps = sys.argv[1], 8, 4
    train.train_and_evaluate(config, sys.argv[2])
""")


@pytest.mark.slow
def test_kills_during_a_write_and_at_random_steps_resume_to_the_same_params(test_config, tmp_path):
  test_config.num_train_steps, test_config.eval_every_steps = 8, 4
  straight = str(tmp_path / 'straight')
  train.train_and_evaluate(test_config, straight)

  workdir = str(tmp_path / 'interrupted')
  script = tmp_path / 'killed_run.py'
  script.write_text(KILLED_RUN)
  rng = random.Random(17)
  kill_points = ['write:4', f'step:{rng.randint(5, 6)}', f'step:{rng.randint(7, 8)}']
  committed = []
  for point in kill_points:
    result = subprocess.run(
      [sys.executable, str(script), test_config.data_dir, workdir, point],
      cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO),
      capture_output=True,
      text=True,
      timeout=240,
      check=False,
    )
    assert result.returncode == -9, (point, result.stderr[-3000:])
    committed.append(
      sorted(
        int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints', 'latest')) if s.isdigit()
      )
    )
  # The write killed at step 4 left step 2 as the newest complete checkpoint; each later
  # run resumed from the newest one and got further.
  assert committed[0] == [2]
  assert committed[1][-1] >= 4 and committed[2][-1] >= committed[1][-1]
  train.train_and_evaluate(test_config, workdir)

  straight_params, straight_progress = latest(straight)
  resumed_params, resumed_progress = latest(workdir)
  assert resumed_progress == straight_progress
  for a, b in zip(straight_params, resumed_params, strict=True):
    np.testing.assert_array_equal(a, b)
  assert [m['step'] for m in read_metrics(workdir)] == [4, 8]
