"""Runs a model exported by `python -m lipjax.export` with TensorFlow alone (no JAX, no checkpoint).

An export folder holds (names below, the one home of the layout):
  saved_model/       TensorFlow SavedModel, signature `serving_default`: the batch
                     dict (the model's input keys, any batch size) -> `logits` [B, C]
  model.tflite       the same function for TFLite at batch size 1, when it converted
                     (export.json says whether, and the converter's error if not)
  dataset_meta.json  the data set's metadata (schema.DatasetMeta: classes, max_frames,
                     edges, extraction settings), the file a training workdir keeps
  export.json        where it came from (workdir, checkpoint, versions) and what was written

    model = exported.load('export/')              # or backend='tflite'
    logits = model.logits(batch)                  # dict of [B, ...] arrays -> [B, C]

Loading an export imports TensorFlow with JAX kept out (see import_tensorflow), so a
process that scores with an export never pays for, or depends on, JAX; importing this
module imports neither.
"""

import json
import os
import sys
from typing import Any
import warnings

import numpy as np

from extraction import native_stderr
from extraction import schema
from lipjax import workdir as workdir_lib

SAVED_MODEL = 'saved_model'
TFLITE_MODEL = 'model.tflite'
EXPORT_INFO = 'export.json'
DATASET_META = workdir_lib.DATASET_META
SIGNATURE = 'serving_default'
OUTPUT = 'logits'
SAVEDMODEL = 'savedmodel'
TFLITE = 'tflite'
BACKENDS = (SAVEDMODEL, TFLITE)


def import_tensorflow():
  """Imports TensorFlow without letting it import JAX.

  tf.lite's util module runs `from jax import jit` whenever JAX is installed (for
  its JAX converter), which costs seconds and half a gigabyte; an ImportError
  there is expected and handled by TensorFlow. A JAX already imported is left alone.
  """
  if 'tensorflow' in sys.modules:
    return sys.modules['tensorflow']
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TF's C++ start-up chatter
  block = 'jax' not in sys.modules
  if block:
    sys.modules['jax'] = None  # makes `import jax` raise ImportError
  try:
    import tensorflow as tf
  finally:
    if block:
      del sys.modules['jax']
  return tf


class _SavedModelRunner:
  """The SavedModel's serving signature; any batch size."""

  batch_size = None
  _started = False

  def __init__(self, path: str):
    self._tf = import_tensorflow()
    self._loaded = self._tf.saved_model.load(path)  # keeps the variables alive
    self._function = self._loaded.signatures[SIGNATURE]
    _, specs = self._function.structured_input_signature
    self.inputs = {
      name: (spec.dtype.as_numpy_dtype, tuple(spec.shape[1:])) for name, spec in specs.items()
    }

  def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
    tensors = {k: self._tf.constant(v) for k, v in inputs.items()}
    if self._started:
      return self._function(**tensors)[OUTPUT].numpy()
    # The first call starts TF's XLA, which writes its start-up lines straight to stderr.
    with native_stderr.silenced():
      logits = self._function(**tensors)[OUTPUT].numpy()
    self._started = True
    return logits


class _TFLiteRunner:
  """The TFLite model's signature through tf.lite.Interpreter; its fixed batch size."""

  def __init__(self, path: str, num_threads: int | None):
    tf = import_tensorflow()
    with warnings.catch_warnings():
      # 'tf.lite.Interpreter is deprecated ... use ai_edge_litert': same runtime, one less package.
      warnings.simplefilter('ignore', UserWarning)
      self._interpreter = tf.lite.Interpreter(model_path=path, num_threads=num_threads)
    self._runner = self._interpreter.get_signature_runner(SIGNATURE)
    details = self._runner.get_input_details()
    self.inputs = {
      name: (np.dtype(d['dtype']), tuple(int(n) for n in d['shape'][1:]))
      for name, d in details.items()
    }
    (self.batch_size,) = {int(d['shape'][0]) for d in details.values()}

  def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return self._runner(**inputs)[OUTPUT]


class ExportedModel:
  """An exported model: `.logits(batch)`, the data set's `.meta`, and where it came from.

  Attributes: meta (schema.DatasetMeta), info (export.json), backend ('savedmodel' or
  'tflite'), checkpoint ('best' or 'latest') and step of the exported checkpoint,
  inputs ({key: (dtype, per-example shape)}), batch_size (None: any; TFLite: fixed).
  """

  def __init__(self, model_dir: str, backend: str, meta: schema.DatasetMeta, info: dict, runner):
    self.model_dir = model_dir
    self.backend = backend
    self.meta = meta
    self.info = info
    self.checkpoint: str = info['checkpoint']['which']
    self.step: int = int(info['checkpoint']['step'])
    self._runner = runner
    self.inputs: dict[str, tuple[np.dtype, tuple[int, ...]]] = runner.inputs
    self.batch_size: int | None = runner.batch_size

  @property
  def num_classes(self) -> int:
    return self.meta.num_classes

  def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
    """Logits [B, C] float32 of a batch dict of [B, ...] arrays (extra keys are ignored).

    Arrays are cast to the model's input dtypes (uint8 masks of a raw example are fine);
    a missing key or a wrong per-example shape is a ValueError naming it.
    """
    missing = sorted(set(self.inputs) - set(batch))
    if missing:
      raise ValueError(f'{self.model_dir}: batch lacks the model input(s) {missing}')
    inputs = {}
    for key, (dtype, shape) in self.inputs.items():
      value = np.asarray(batch[key], dtype)
      if value.shape[1:] != shape:
        raise ValueError(
          f'{self.model_dir}: input {key} has shape {value.shape}, expected [B, {", ".join(map(str, shape))}]'
        )
      inputs[key] = value
    sizes = {key: v.shape[0] for key, v in inputs.items()}
    if len(set(sizes.values())) != 1:
      raise ValueError(f'{self.model_dir}: inputs differ in batch size: {sizes}')
    size = next(iter(sizes.values()))
    if size == 0:
      return np.zeros((0, self.num_classes), np.float32)
    step = self.batch_size or size
    # A fixed-batch model (TFLite) runs the batch in slices, the last padded with its first row.
    out = []
    for start in range(0, size, step):
      chunk = {k: v[start : start + step] for k, v in inputs.items()}
      short = step - len(next(iter(chunk.values())))
      if short:
        chunk = {k: np.concatenate([v, np.repeat(v[:1], short, axis=0)]) for k, v in chunk.items()}
      out.append(np.asarray(self._runner(chunk), np.float32)[: step - short])
    return np.concatenate(out)


def read_info(model_dir: str) -> dict[str, Any]:
  """An export's export.json (FileNotFoundError if the folder is not an export)."""
  path = os.path.join(model_dir, EXPORT_INFO)
  if not os.path.isfile(path):
    what = 'does not exist' if not os.path.exists(model_dir) else f'has no {EXPORT_INFO}'
    raise FileNotFoundError(
      f'{model_dir} {what}; an exported model is the --out folder of python -m lipjax.export'
    )
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def load(
  model_dir: str, backend: str = SAVEDMODEL, num_threads: int | None = None
) -> ExportedModel:
  """Loads an export folder for one backend ('savedmodel': any batch size; 'tflite': batch 1).

  num_threads: TFLite's interpreter threads (None: its default); the SavedModel uses TF's pools.
  """
  if backend not in BACKENDS:
    raise ValueError(f'backend {backend!r}; expected one of {BACKENDS}')
  info = read_info(model_dir)
  with open(os.path.join(model_dir, DATASET_META), encoding='utf-8') as f:
    meta = schema.DatasetMeta.from_dict(json.load(f))
  if backend == SAVEDMODEL:
    runner = _SavedModelRunner(os.path.join(model_dir, SAVED_MODEL))
  else:
    tflite = info['formats']['tflite']
    if tflite['status'] != 'ok':
      raise ValueError(
        f'{model_dir} has no TFLite model ({tflite["summary"]}); use the savedmodel backend'
      )
    runner = _TFLiteRunner(os.path.join(model_dir, tflite['path']), num_threads)
  return ExportedModel(model_dir, backend, meta, info, runner)
