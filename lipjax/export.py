"""Ships a workdir's best checkpoint as TensorFlow models: `python -m lipjax.export --workdir W --out DIR`.

Writes into DIR (layout and loader: lipjax/exported.py, which needs TensorFlow only):
  saved_model/       SavedModel, signature `serving_default`: the batch dict (keys and
                     dtypes of data_source.MODEL_DTYPES but `label`, leading dimension
                     None: any batch size) -> `logits` [B, C]; parameters as variables
  model.tflite       the same function at batch size 1, if TFLite converts it (below)
  dataset_meta.json  the data set's metadata, as the workdir keeps it (classes, max_frames,
                     edges, extraction settings: what prediction needs besides the model)
  export.json        source workdir, checkpoint (which, step), jax/flax/tf versions, the
                     formats written, each one's check against JAX, the TFLite attempts

How: jax2tf converts `model.apply(..., train=False)` to TensorFlow ops (graph
serialization, native_serialization=False, deprecated by JAX but what works here:
native serialization embeds StableHLO in an XlaCallModule op, and TF 2.19's op
cannot read the StableHLO of jax 0.7 ("Cannot deserialize computation" when run,
even at calling convention 9)). The batch dimension is symbolic, so one SavedModel
serves any batch size; the BiLSTM's lax.scan becomes a tf.while_loop.

TFLite is tried at batch size 1 from a second conversion with enable_xla=False (plain
TF ops: TFLite has no XLA ops, not even tf.XlaDotV2 for a matmul), with TFLITE_BUILTINS
and then with SELECT_TF_OPS, and kept only if tf.lite.Interpreter runs it and matches
JAX both with and without the XNNPACK delegate. The BiLSTM's scan becomes TFLite's WHILE
op. lipjax's model converts with TFLITE_BUILTINS alone: its GCN adjacency is a numpy
constant of the edge list (graphs.normalized_adjacency) and its in-length reversal a
one-hot matmul (lstm.reverse_within_length), since jax2tf without XLA ops has no form
for a scatter or a batched gather. Where a conversion fails (a model changed since),
export.json records each attempt's error and the SavedModel is written regardless.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from typing import Any
import warnings

from absl import app
from absl import flags
import numpy as np

from extraction import native_stderr
from lipjax import cli
from lipjax import data_source
from lipjax import exported

FLAGS = flags.FLAGS
PROGRAM = 'lipjax.export'
# TensorFlow before JAX, so that tf.lite's optional JAX import is skipped (exported.py).
tf = exported.import_tensorflow()

# The batch keys the model reads: every numeric example field but the target.
INPUT_KEYS = tuple(key for key in data_source.MODEL_DTYPES if key != 'label')
TFLITE_BATCH_SIZE = 1
TFLITE_OPS = (('TFLITE_BUILTINS',), ('TFLITE_BUILTINS', 'SELECT_TF_OPS'))
# An export must reproduce JAX's logits to this (float32 rounding differs between backends).
TOLERANCE = 1e-4


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('workdir', None, 'Training workdir whose best checkpoint is exported.')
  flags.DEFINE_string('out', None, 'Folder to write (must not exist or be empty).')
  flags.DEFINE_bool('overwrite', False, 'Replace an earlier export (a folder with export.json).')
  flags.DEFINE_bool(
    'tflite',
    True,
    'Also write TFLite (batch size 1; TFLITE_BUILTINS, then SELECT_TF_OPS if needed). If it '
    'does not convert, export.json records why and only the SavedModel is written.',
  )


def input_specs(meta) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
  """{key: (dtype, per-example shape)} of the model's inputs for a data set."""
  from lipjax import models

  shapes = models.dummy_batch(meta, 1)
  return {
    key: (np.dtype(data_source.MODEL_DTYPES[key]), shapes[key].shape[1:]) for key in INPUT_KEYS
  }


def sample_batch(meta, size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """A random but well-formed batch (real frames, speech inside them) to check an export with."""
  rng = np.random.default_rng(seed)
  t = meta.max_frames
  length = rng.integers(max(t // 2, 1), t + 1, size).astype(np.int32)  # [B]
  frames = (np.arange(t)[None] < length[:, None]).astype(np.float32)  # [B, T]
  speech = frames * (np.arange(t)[None] >= 1) * (np.arange(t)[None] < length[:, None] - 1)
  batch = {'length': length, 'frame_mask': frames, 'face_mask': frames, 'speech_mask': speech}
  for key, (dtype, shape) in input_specs(meta).items():
    if key not in batch:
      values = rng.random((size,) + shape).astype(dtype)
      batch[key] = values * frames.reshape((size, t) + (1,) * (len(shape) - 1))
  return batch


def tf_module(model, params, meta, batch_size: int | None, enable_xla: bool):
  """A tf.Module holding the parameters as variables and `serve(batch) -> {'logits': [B, C]}`.

  batch_size None: a symbolic batch dimension (jax2tf shape polymorphism).
  """
  from jax.experimental import jax2tf

  specs = input_specs(meta)
  polymorphic = None if batch_size else [None, {key: 'b, ...' for key in specs}]
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)  # native_serialization=False: see above
    logits_tf = jax2tf.convert(
      lambda params, batch: model.apply({'params': params}, batch, train=False),
      polymorphic_shapes=polymorphic,
      native_serialization=False,
      enable_xla=enable_xla,
      with_gradient=False,
    )
  module = tf.Module()
  module.params = tf.nest.map_structure(
    lambda p: tf.Variable(np.asarray(p), trainable=False), params
  )
  signature = {
    key: tf.TensorSpec((batch_size,) + shape, tf.as_dtype(dtype), name=key)
    for key, (dtype, shape) in specs.items()
  }

  # With XLA ops, the whole function compiles as one XLA program when served (per batch
  # size), instead of TF running each op on its own: about JAX's speed, not several times slower.
  @tf.function(input_signature=[signature], autograph=False, jit_compile=enable_xla)
  def serve(batch):
    return {exported.OUTPUT: logits_tf(module.params, batch)}

  module.serve = serve
  return module


def save_module(module, path: str) -> None:
  """Writes a tf_module as a SavedModel with its `serve` as the serving signature."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)
    tf.saved_model.save(module, path, signatures={exported.SIGNATURE: module.serve})


def error_summary(error: BaseException) -> str:
  """One readable line of a jax2tf or TFLite converter failure: what failed, and where.

  The converter's message is pages of MLIR; its `error:` lines, without their MLIR
  locations, and the model scope in those locations are what a user can act on. A
  jax2tf error names the lipjax line it stopped at.
  """
  text = str(error)
  found = []
  for line in text.splitlines():
    if 'error: ' not in line or 'failed while converting' in line:
      continue
    message = line.split('error: ', 1)[1].strip()
    if message.startswith('loc('):
      message = message.rsplit('): ', 1)[-1]
    scope = re.search(r'jax2tf_[^/"]*/([^"@]+)/[^/"@]+@', line)
    message += f' (in {scope.group(1)})' if scope else ''
    if message not in found:
      found.append(message)
  if not found:
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    found.append(first.split(' - See source code')[0])
    frames = [
      f
      for f in traceback.extract_tb(error.__traceback__)
      if f'{os.sep}lipjax{os.sep}' in f.filename
    ]
    if frames:
      where = frames[-1]
      found[0] += f' (at lipjax/{os.path.basename(where.filename)}:{where.lineno} {where.name})'
  summary = f'{type(error).__name__}: ' + '; '.join(found[:3])
  return summary if len(summary) <= 600 else summary[:597] + '...'


def convert_tflite(model, params, meta, reference: dict) -> tuple[bytes | None, dict[str, Any]]:
  """Tries TFLite at batch size 1; returns (flatbuffer or None, the export.json record).

  reference: {'batch': one example's batch, 'logits': JAX's logits of it}; a model counts
  only if tf.lite.Interpreter runs it and agrees within TOLERANCE.
  """
  attempts = []
  with tempfile.TemporaryDirectory() as scratch:
    try:
      save_module(tf_module(model, params, meta, TFLITE_BATCH_SIZE, enable_xla=False), scratch)
    except Exception as error:  # noqa: BLE001 -- any jax2tf failure is a recorded outcome
      attempts.append({'step': 'jax2tf enable_xla=False', 'error': error_summary(error)})
    else:
      for ops in TFLITE_OPS:
        attempt = {'step': 'TFLiteConverter ' + '+'.join(ops)}
        attempts.append(attempt)
        try:
          converter = tf.lite.TFLiteConverter.from_saved_model(scratch)
          converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, o) for o in ops]
          with native_stderr.silenced():  # the converter's own pages of MLIR diagnostics
            flatbuffer = converter.convert()
        except Exception as error:  # noqa: BLE001 -- the converter's ConverterError and kin
          attempt['error'] = error_summary(error)
          continue
        try:
          difference = check_tflite(flatbuffer, reference)
        except Exception as error:  # noqa: BLE001 -- converted, but the interpreter refuses it
          attempt['error'] = 'converted, but tf.lite.Interpreter cannot run it: ' + error_summary(
            error
          )
          continue
        attempt['max_abs_diff_vs_jax'] = difference
        if difference > TOLERANCE:
          attempt['error'] = f'logits differ from JAX by {difference:.2g} > {TOLERANCE}'
          continue
        return flatbuffer, {
          'status': 'ok',
          'path': exported.TFLITE_MODEL,
          'batch_size': TFLITE_BATCH_SIZE,
          'ops': '+'.join(ops),
          'max_abs_diff_vs_jax': difference,
          'summary': f'{"+".join(ops)}, batch size {TFLITE_BATCH_SIZE}',
          'attempts': attempts,
        }
  return None, {
    'status': 'failed',
    'path': None,
    'batch_size': TFLITE_BATCH_SIZE,
    'summary': ' | '.join(f'{a["step"]}: {a["error"]}' for a in attempts),
    'attempts': attempts,
  }


def tflite_runs(flatbuffer: bytes, inputs: dict) -> dict[str, dict]:
  """The flatbuffer's serving signature on `inputs`, once per TFLite CPU runtime.

  'xnnpack': TFLite's default runtime, which hands most ops to the XNNPACK delegate (what
  a phone runs); 'builtin': TFLite's own kernels only. They can disagree (lipjax/lstm.py's
  reversal once came out wrong under XNNPACK alone). Returns {runtime: {output: array}}.
  """
  resolvers = tf.lite.experimental.OpResolverType
  runs = {}
  for name, resolver in (
    ('xnnpack', resolvers.AUTO),
    ('builtin', resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES),
  ):
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', UserWarning)  # deprecation notice; see lipjax/exported.py
      interpreter = tf.lite.Interpreter(
        model_content=flatbuffer, experimental_op_resolver_type=resolver
      )
    runs[name] = interpreter.get_signature_runner(exported.SIGNATURE)(**inputs)
  return runs


def check_tflite(flatbuffer: bytes, reference: dict) -> float:
  """Max |TFLite logits - JAX logits| on the reference batch (batch size 1), over tflite_runs."""
  runs = tflite_runs(flatbuffer, reference['batch'])
  return max(float(np.abs(r[exported.OUTPUT] - reference['logits']).max()) for r in runs.values())


def check_out(out: str, overwrite: bool) -> None:
  """Refuses (ValueError) an --out that holds anything but, with --overwrite, an earlier export."""
  if not os.path.exists(out):
    return
  if not os.path.isdir(out):
    raise ValueError(f'--out {out} is a file; give a folder to create')
  if not os.listdir(out):
    return
  if not overwrite:
    raise ValueError(f'--out {out} exists and is not empty; pass --overwrite or another --out')
  if not os.path.isfile(os.path.join(out, exported.EXPORT_INFO)):
    raise ValueError(
      f'--out {out} is not an earlier export (no {exported.EXPORT_INFO}); --overwrite only '
      'replaces exports, so give another --out'
    )


def versions() -> dict[str, str]:
  """The versions that made the export (the SavedModel needs a TF that reads its ops)."""
  import flax
  import jax
  import jaxlib

  return {
    'jax': jax.__version__,
    'jaxlib': jaxlib.__version__,
    'flax': flax.__version__,
    'tensorflow': tf.__version__,
    'python': sys.version.split()[0],
  }


def export_workdir(workdir: str, out: str, overwrite: bool = False, tflite: bool = True) -> dict:
  """Exports a workdir's best checkpoint into `out`; returns what export.json records.

  Everything is written into a temporary sibling folder first and moved into place
  at the end, so a failed export leaves no partial --out behind.
  """
  from lipjax import evaluate
  from lipjax import workdir as workdir_lib

  started = time.perf_counter()
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f'--workdir {workdir} does not exist')
  check_out(out, overwrite)
  config, meta, model, params, step, which = evaluate.restore_model(workdir)
  workdir_lib.require_words(workdir, meta, 'lipjax.export')
  reference_batch = sample_batch(meta, 3)
  reference = np.asarray(model.apply({'params': params}, reference_batch, train=False))  # [3, C]

  parent = os.path.dirname(os.path.abspath(out))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f'.{os.path.basename(os.path.abspath(out))}.', dir=parent)
  try:
    save_module(
      tf_module(model, params, meta, batch_size=None, enable_xla=True),
      os.path.join(staging, exported.SAVED_MODEL),
    )
    loaded = tf.saved_model.load(os.path.join(staging, exported.SAVED_MODEL))
    served = loaded.signatures[exported.SIGNATURE](
      **{k: tf.constant(v) for k, v in reference_batch.items()}
    )[exported.OUTPUT].numpy()
    saved_model_difference = float(np.abs(served - reference).max())
    if saved_model_difference > TOLERANCE:
      raise ValueError(
        f'the SavedModel disagrees with JAX by {saved_model_difference:.2g} (> {TOLERANCE})'
      )
    formats = {
      'saved_model': {
        'status': 'ok',
        'path': exported.SAVED_MODEL,
        'batch_size': None,
        'serialization': 'jax2tf graph serialization (native_serialization=False, enable_xla=True)',
        'max_abs_diff_vs_jax': saved_model_difference,
      }
    }
    if tflite:
      one = {key: value[:1] for key, value in reference_batch.items()}
      flatbuffer, formats['tflite'] = convert_tflite(
        model, params, meta, {'batch': one, 'logits': reference[:1]}
      )
      if flatbuffer is not None:
        with open(os.path.join(staging, exported.TFLITE_MODEL), 'wb') as f:
          f.write(flatbuffer)
    else:
      formats['tflite'] = {
        'status': 'skipped',
        'path': None,
        'summary': 'not tried (--notflite)',
        'attempts': [],
      }
    with open(os.path.join(staging, exported.DATASET_META), 'w', encoding='utf-8') as f:
      json.dump(meta.to_dict(), f, indent=1)
    info = {
      'source_workdir': os.path.abspath(workdir),
      'checkpoint': {'which': which, 'step': int(step)},
      'num_classes': meta.num_classes,
      'inputs': {
        key: {'dtype': dtype.name, 'shape': [None, *shape]}
        for key, (dtype, shape) in input_specs(meta).items()
      },
      'output': {'name': exported.OUTPUT, 'dtype': 'float32', 'shape': [None, meta.num_classes]},
      'model_config': json.loads(config.model.to_json_best_effort()),
      'versions': versions(),
      'formats': formats,
      'written': sorted(
        [exported.SAVED_MODEL, exported.DATASET_META, exported.EXPORT_INFO]
        + ([exported.TFLITE_MODEL] if formats['tflite']['status'] == 'ok' else [])
      ),
      'export_seconds': round(time.perf_counter() - started, 1),
    }
    with open(os.path.join(staging, exported.EXPORT_INFO), 'w', encoding='utf-8') as f:
      json.dump(info, f, indent=1)
    if os.path.exists(out):
      shutil.rmtree(out)  # check_out allowed it: empty, or an earlier export with --overwrite
    os.replace(staging, out)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return info


def main(argv):
  """Prints one summary line; a user error becomes one line on stderr and exit status 2."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS.workdir or not FLAGS.out:
    raise app.UsageError('--workdir and --out are required')
  cli.quiet_third_party_logs()
  info = export_workdir(FLAGS.workdir, FLAGS.out, FLAGS.overwrite, FLAGS.tflite)
  tflite = info['formats']['tflite']
  print(
    f'exported the {info["checkpoint"]["which"]} checkpoint (step {info["checkpoint"]["step"]}) '
    f'of {FLAGS.workdir} to {FLAGS.out} in {info["export_seconds"]:.0f} s: saved_model/ (any '
    f'batch size; logits within {info["formats"]["saved_model"]["max_abs_diff_vs_jax"]:.1g} of '
    f'JAX), TFLite {tflite["status"]} ({tflite["summary"]})'
  )


if __name__ == '__main__':
  cli.run(main, PROGRAM, define_flags)
