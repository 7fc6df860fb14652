"""metrics.jsonl, the workdir's record of evaluations: its one writer and its one reader.

One JSON object per line, one line per evaluation during training, ordered by
step: `step`, `epoch`, `train_loss`, `train_accuracy`, `val_loss`,
`val_accuracy`, `val_macro_f1`, `val_top5`, `val_examples`, `learning_rate`,
`steps_per_sec`, `examples_per_sec`, `devices` (over all processes); a sentence
reader's records have `val_wer` and `val_cer` (greedy decoding) in place of the
accuracies, F1 and top-5. Training, diagnose, the plots,
the notebook and the experiments read it through `read`; training writes
it through `append` (TensorBoard gets the same values through tensorboard.MetricWriter).
"""

import json
from typing import Any, Mapping

from lipjax import workdir as workdir_lib

REQUIRED_KEYS = ('step', 'epoch', 'train_loss', 'train_accuracy', 'val_loss', 'val_accuracy')
# A sentence reader's record: one with `val_cer`.
SENTENCE_KEYS = ('step', 'epoch', 'train_loss', 'val_loss', 'val_wer', 'val_cer')


def append(workdir: str, record: Mapping[str, Any]) -> None:
  """Appends one evaluation record as a line of metrics.jsonl."""
  with workdir_lib.path(workdir, workdir_lib.METRICS).open('a') as f:
    f.write(json.dumps({k: _plain(v) for k, v in record.items()}) + '\n')


def _plain(value):
  """A JSON-ready Python number from a numpy or JAX scalar."""
  return value.item() if hasattr(value, 'item') else value


def parse(lines: list[str], source: str) -> list[dict[str, Any]]:
  """Evaluation records from metrics.jsonl lines, ordered by step; errors name file and line."""
  records = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f'{source}:{number}: not a JSON line ({e.msg})') from None
    required = SENTENCE_KEYS if 'val_cer' in record else REQUIRED_KEYS
    missing = [k for k in required if k not in record]
    if missing:
      raise ValueError(f'{source}:{number}: evaluation record lacks {missing}')
    records.append(record)
  return sorted(records, key=lambda r: r['step'])


def read(workdir: str, required: bool = True) -> list[dict[str, Any]]:
  """The workdir's evaluation records; [] or FileNotFoundError (required) when there is no file."""
  path = workdir_lib.path(workdir, workdir_lib.METRICS)
  if not path.exists():
    if required:
      raise FileNotFoundError(
        f'{path} does not exist; has this workdir been trained to its first evaluation?'
      )
    return []
  return parse(path.read_text().splitlines(), str(path))


def last(workdir: str) -> dict[str, Any]:
  """The last evaluation record ({} if there is none)."""
  records = read(workdir, required=False)
  return records[-1] if records else {}


def truncate(workdir: str, last_step: int) -> None:
  """Drops records after the step a run resumes from (they will be written again)."""
  path = workdir_lib.path(workdir, workdir_lib.METRICS)
  if not path.exists():
    return
  kept = [
    line + '\n'
    for line in path.read_text().splitlines()
    if line.strip() and json.loads(line)['step'] <= last_step
  ]
  path.write_text(''.join(kept))
