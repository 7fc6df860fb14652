"""Orbax checkpoints of a workdir: the latest few for resuming, the best on val.

Best: by val accuracy for a word classifier, by lowest val CER for a sentence
reader (the metrics each best checkpoint is saved with say which: `best_score`).

Each checkpoint holds the host train state and a JSON progress record (the data
stream's position and early stopping's counters), so a resumed run continues
with the same batches. Evaluation restores parameters alone, without the
optimizer that trained them.
"""

from typing import Any

import orbax.checkpoint as ocp

from lipjax import workdir as workdir_lib

LATEST = 'latest'
BEST = 'best'


def best_score(metrics: dict) -> float:
  """What the best checkpoint maximises: val accuracy (words), or minus val CER (sentences)."""
  if 'val_accuracy' in metrics:
    return metrics['val_accuracy']
  return -metrics['val_cer']


def managers(workdir: str, keep: int) -> tuple[ocp.CheckpointManager, ocp.CheckpointManager]:
  """(latest, best): the last `keep` checkpoints for resuming, and the best on val (best_score)."""
  root = workdir_lib.absolute(workdir_lib.path(workdir, workdir_lib.CHECKPOINTS))
  latest = ocp.CheckpointManager(
    root / LATEST,
    options=ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=True, enable_async_checkpointing=False
    ),
  )
  best = ocp.CheckpointManager(
    root / BEST,
    options=ocp.CheckpointManagerOptions(
      max_to_keep=1,
      best_fn=best_score,
      best_mode='max',
      create=True,
      enable_async_checkpointing=False,
    ),
  )
  return latest, best


def save(
  manager: ocp.CheckpointManager, step: int, state, progress: dict, metrics: dict | None = None
) -> None:
  """Saves host train state and the JSON progress record (data position, early stopping)."""
  manager.save(
    step,
    args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(progress)
    ),
    metrics=metrics,
  )


def restore(manager: ocp.CheckpointManager, state, step: int | None = None):
  """Restores (state, progress) from a manager's step (default: latest) into `state`'s structure."""
  step = manager.latest_step() if step is None else step
  restored = manager.restore(
    step,
    args=ocp.args.Composite(state=ocp.args.StandardRestore(state), progress=ocp.args.JsonRestore()),
  )
  return restored.state, restored.progress


def restore_params(workdir: str) -> tuple[Any, int, str]:
  """The best checkpoint's parameters (else the latest's), as saved; no optimizer is needed.

  Returns (params, step, 'best' | 'latest').
  """
  latest, best = managers(workdir, keep=1)
  for which, manager, step in (
    (BEST, best, best.best_step()),
    (LATEST, latest, latest.latest_step()),
  ):
    if step is not None:
      restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
      return restored.state['params'], step, which
  raise FileNotFoundError(
    f'{workdir_lib.path(workdir, workdir_lib.CHECKPOINTS)}: no checkpoint to evaluate'
  )
