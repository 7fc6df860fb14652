"""A run's scalars as TensorBoard event files (tensorboardX: no TensorFlow) and as log lines.

The event files are TensorBoard's own format (`events.out.tfevents.*` under the
workdir's tensorboard/ folder); `tensorboard --logdir WORKDIR/tensorboard` shows
them. Chosen over clu's metric writers, which import TensorFlow.
"""

from typing import Mapping

from absl import logging


class MetricWriter:
  """Writes scalars per step to TensorBoard (when `events`) and to the absl log.

  A resumed run passes its start step as `resume_step`: TensorBoard then drops
  the events an interrupted run wrote after it, which the resumed run writes again.
  """

  def __init__(self, logdir: str, events: bool = True, resume_step: int = 0):
    self._writer = None
    if events:
      import tensorboardX

      self._writer = tensorboardX.SummaryWriter(
        logdir=str(logdir), purge_step=resume_step + 1 if resume_step else None, flush_secs=30
      )

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    """One value per tag at a step."""
    logging.info('[%d] %s', step, ', '.join(f'{k}={float(v):.6g}' for k, v in scalars.items()))
    if self._writer is not None:
      for tag, value in scalars.items():
        self._writer.add_scalar(tag, float(value), step)

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
