"""A training workdir: its layout, what it was trained on, and the lock that keeps one run in it.

Layout (the one home of these names): config.json (the resolved config),
dataset_meta.json (the data set's metadata: classes, edges, shapes),
checkpoints/{latest,best}/ (orbax, lipjax/checkpoints.py), tensorboard/,
metrics.jsonl (lipjax/metrics_log.py), PNG plots and eval_{split}.json.
Paths go through etils.epath, so a workdir may be a gs:// bucket.
"""

import contextlib
import errno
import fcntl
import json
import os
from typing import Any, Iterator

from etils import epath
import ml_collections

from extraction import schema

CONFIG = 'config.json'
DATASET_META = 'dataset_meta.json'
CHECKPOINTS = 'checkpoints'
TENSORBOARD = 'tensorboard'
METRICS = 'metrics.jsonl'
TRAINING_CURVES = 'training_curves.png'
LOCK = '.lock'


class WorkdirError(ValueError):
  """A workdir that cannot be used as asked (busy, or trained on something else)."""


def path(workdir: str | os.PathLike, name: str = '') -> epath.Path:
  """The path of one of the workdir's files (or the workdir itself)."""
  root = epath.Path(workdir)
  return root / name if name else root


def absolute(location: str | os.PathLike) -> epath.Path:
  """A path made absolute: a local one against the working directory, a gs:// one as it is.

  (epath's own absolute() prefixes the working directory to gs:// paths too.)
  """
  location = epath.Path(location)
  return location if '://' in os.fspath(location) else location.absolute()


def load(workdir: str) -> tuple[ml_collections.ConfigDict, schema.DatasetMeta]:
  """Reads the resolved config and data set metadata that training saved in a workdir."""
  for name in (CONFIG, DATASET_META):
    if not path(workdir, name).exists():
      raise FileNotFoundError(f'{workdir}: no {name}; is this a lipjax training workdir?')
  config = ml_collections.ConfigDict(json.loads(path(workdir, CONFIG).read_text()))
  return config, schema.DatasetMeta.from_dict(json.loads(path(workdir, DATASET_META).read_text()))


def write(workdir: str, config: ml_collections.ConfigDict, meta: schema.DatasetMeta) -> None:
  """Writes the resolved config and the data set metadata next to the checkpoints."""
  path(workdir).mkdir(parents=True, exist_ok=True)
  path(workdir, CONFIG).write_text(config.to_json_best_effort(indent=1))
  path(workdir, DATASET_META).write_text(json.dumps(meta.to_dict(), indent=1))


def identity(config: ml_collections.ConfigDict, meta: schema.DatasetMeta) -> dict[str, Any]:
  """What a workdir's parameters are tied to: the classes or tokens, shapes, edges and model config."""
  model = json.loads(ml_collections.ConfigDict(config.model).to_json_best_effort())
  return {
    'classes': list(meta.class_names),
    'token_set': list(meta.token_set),
    'max_frames': int(meta.max_frames),
    'nodes': int(meta.num_nodes),
    'au_names': list(meta.au_names),
    'geometry_names': list(meta.geometry_names),
    'edges': [list(map(int, meta.senders)), list(map(int, meta.receivers))],
    'model': model,
  }


def _describe(key: str, value: Any) -> str:
  """A short form of one identity field for an error line."""
  if key == 'classes':
    shown = ', '.join(value[:6]) + (', ...' if len(value) > 6 else '')
    return f'{len(value)} classes ({shown})'
  if key == 'token_set':
    return f'a token set of {len(value)}'
  if key == 'edges':
    return f'{len(value[0])} edges'
  text = json.dumps(value, sort_keys=True)
  return text if len(text) < 120 else text[:117] + '...'


def _kind(meta: schema.DatasetMeta) -> str:
  """What a workdir trained on a data set is, in words."""
  return 'sentence reader (CTC)' if meta.is_sentences else 'word classifier'


def require_words(workdir: str, meta: schema.DatasetMeta, program: str) -> None:
  """Refuses (WorkdirError) a sentence reader's workdir in a program that reads word classifiers."""
  if meta.is_sentences:
    raise WorkdirError(
      f'{workdir} holds a sentence reader (CTC); {program} reads word classifiers only '
      '(python -m lipjax.evaluate and lipjax.predict read sentences)'
    )


def check_compatible(
  workdir: str, config: ml_collections.ConfigDict, meta: schema.DatasetMeta
) -> None:
  """Refuses (WorkdirError) to resume a workdir trained on other classes, tokens, shapes or model."""
  if not path(workdir, CONFIG).exists() or not path(workdir, DATASET_META).exists():
    return
  old_config, old_meta = load(workdir)
  if old_meta.is_sentences != meta.is_sentences:
    raise WorkdirError(
      f"{workdir} holds a {_kind(old_meta)}, this run's data set {config.data_dir} is "
      f'a {"sentence" if meta.is_sentences else "word"} data set; use another --workdir'
    )
  old, new = identity(old_config, old_meta), identity(config, meta)
  for key in old:
    if key == 'model':
      changed = sorted(
        k for k in set(old[key]) | set(new[key]) if old[key].get(k) != new[key].get(k)
      )
      if changed:
        k = changed[0]
        raise WorkdirError(
          f'{workdir} was trained with model.{k}={_describe(k, old[key].get(k))}, this run '
          f'has model.{k}={_describe(k, new[key].get(k))}; resume with the same model or '
          'use another --workdir'
        )
    elif old[key] != new[key]:
      raise WorkdirError(
        f"{workdir} was trained on {_describe(key, old[key])} ({key}), this run's data set "
        f'{config.data_dir} has {_describe(key, new[key])}; use another --workdir'
      )


@contextlib.contextmanager
def exclusive(workdir: str) -> Iterator[None]:
  """Holds the workdir's lock for one run; a second run refuses (WorkdirError).

  An flock is released by the kernel when its process dies, so a killed run
  never leaves the workdir locked. Remote workdirs (gs://) have no such lock.
  """
  if '://' in os.fspath(workdir):
    yield
    return
  path(workdir).mkdir(parents=True, exist_ok=True)
  # flock needs a local file descriptor: the one plain open() of a workdir file.
  with open(path(workdir, LOCK), 'a+', encoding='utf-8') as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      lock.seek(0)
      holder = lock.read().strip() or 'another process'
      raise WorkdirError(
        f'{workdir} is in use by a running training ({holder}); wait for it '
        'to finish or use another --workdir'
      ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f'pid {os.getpid()}')
    lock.flush()
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
