"""A workdir's orbax checkpoints and metrics.jsonl read from disk alone, for tests.

Read with orbax and json directly rather than through lipjax.checkpoints, so a
test of the training loop does not rely on the code it checks.
"""

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp


def read_metrics(workdir):
  """The records of metrics.jsonl, in file order."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def checkpoint_dir(workdir, which, step):
  """checkpoints/{which}/{step} of a workdir."""
  return os.path.join(os.path.abspath(workdir), 'checkpoints', which, str(step))


def checkpoint_params(workdir, which, step):
  """The parameter leaves of checkpoints/{which}/{step}."""
  state = ocp.StandardCheckpointer().restore(
    os.path.join(checkpoint_dir(workdir, which, step), 'state')
  )
  return [np.asarray(x) for x in jax.tree.leaves(state['params'])]


def checkpoint_progress(workdir, which, step):
  """The JSON progress record saved beside a checkpoint's state."""
  with open(os.path.join(checkpoint_dir(workdir, which, step), 'progress', 'metadata')) as f:
    return json.load(f)


def latest(workdir):
  """(parameter leaves, progress record) of the newest checkpoint in checkpoints/latest."""
  step = max(
    int(name)
    for name in os.listdir(os.path.join(workdir, 'checkpoints', 'latest'))
    if name.isdigit()
  )
  return checkpoint_params(workdir, 'latest', step), checkpoint_progress(workdir, 'latest', step)
