"""Training and evaluation loop: data, model, optimizer, state, checkpoint restore, loop.

`train_and_evaluate(config, workdir)` is the one entry point (tests call it
with configs/test.py); `python -m lipjax.train --config configs/small.py` runs it
from the command line (lipjax/main.py).

Workdir: config.json, dataset_meta.json, checkpoints/{latest,best}/ (orbax),
tensorboard/, metrics.jsonl (one line per evaluation), training_curves.png.
"""

import functools
import json
import os
import time
from typing import Any

from absl import logging
import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm

from extraction import schema
from lipjax import graphs
from lipjax import input_pipeline
from lipjax import metrics as metrics_lib
from lipjax import models
from lipjax import parallel
from lipjax import plots

DEMO_DATA_DIR = os.path.expanduser('~/.cache/lipjax/demo')


def ensure_data(data_dir: str) -> schema.DatasetMeta:
  """Returns the data set's metadata, building the demo data set first if that is what is missing."""
  if not data_dir:
    raise ValueError('config.data_dir is empty; pass --config.data_dir=DIR or set LIPJAX_DATA_DIR')
  if not os.path.exists(data_dir):
    if os.path.abspath(os.path.expanduser(data_dir)) != DEMO_DATA_DIR:
      raise FileNotFoundError(
          f'data set {data_dir} does not exist; write one with `python -m extraction '
          '--input ... --out DIR` and pass --config.data_dir=DIR')
    try:
      from extraction import demo  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise FileNotFoundError(
          f'demo data set {data_dir} is missing and extraction.demo cannot build it ({e})') from e
    logging.info('Building the demo data set in %s', data_dir)
    demo.build_demo_dataset(data_dir)
  return schema.DatasetMeta.load(data_dir)


def create_model(config: ml_collections.ConfigDict, meta: schema.DatasetMeta) -> models.LipReader:
  """Builds the network; classes and graph edges come from the data set's metadata."""
  senders, receivers = graphs.edges_for(meta, config.model.edges, config.model.knn_k)
  fields = {key: tuple(value) if isinstance(value, list) else value
            for key, value in config.model.items() if key not in ('edges', 'knn_k')}
  return models.LipReader(num_classes=meta.num_classes, senders=tuple(map(int, senders)),
                          receivers=tuple(map(int, receivers)), **fields)


def create_learning_rate_fn(config: ml_collections.ConfigDict):
  """Linear warmup to config.learning_rate, then cosine decay to zero at num_train_steps."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=config.learning_rate, warmup_steps=config.warmup_steps,
      decay_steps=max(config.num_train_steps, config.warmup_steps + 1), end_value=0.0)


def create_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW with global-norm clipping; biases and layer-norm scales are not decayed."""
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
  return optax.chain(
      optax.clip_by_global_norm(config.grad_clip),
      optax.adamw(create_learning_rate_fn(config), weight_decay=config.weight_decay,
                  mask=decay_mask))


def dummy_batch(meta: schema.DatasetMeta, batch_size: int = 1) -> dict[str, np.ndarray]:
  """A zero batch with the data set's shapes, for initialisation."""
  t, n = meta.max_frames, meta.num_nodes
  return {
      'landmarks': np.zeros((batch_size, t, n, 3), np.float32),
      'au': np.zeros((batch_size, t, len(meta.au_names)), np.float32),
      'geometry': np.zeros((batch_size, t, len(meta.geometry_names)), np.float32),
      'frame_mask': np.ones((batch_size, t), np.float32),
      'face_mask': np.ones((batch_size, t), np.float32),
      'speech_mask': np.ones((batch_size, t), np.float32),
      'length': np.full((batch_size,), t, np.int32),
      'label': np.zeros((batch_size,), np.int32),
  }


def create_train_state(config, meta, model, rng) -> train_state.TrainState:
  """Initialises parameters and optimizer state on the host."""
  params = jax.jit(functools.partial(model.init, train=False))(
      {'params': rng}, dummy_batch(meta))['params']
  return train_state.TrainState.create(apply_fn=model.apply, params=params,
                                       tx=create_optimizer(config))


def parameter_summary(params) -> str:
  """Parameter counts per top-level module, one per line, then the total."""
  counts = {name: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(sub))
            for name, sub in params.items()}
  lines = [f'  {name:<24} {count:>12,}' for name, count in counts.items()]
  lines.append(f'  {"total":<24} {sum(counts.values()):>12,}')
  return '\n'.join(lines)


def cross_entropy(logits, labels, label_smoothing: float):
  """Per-example cross-entropy against label-smoothed one-hot targets.  # [B]"""
  targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def mixed_cross_entropy(logits, batch, label_smoothing: float):
  """Cross-entropy against mix_weight of `label` plus 1 - mix_weight of `mix_label` (mixup).  # [B]"""
  weight = batch['mix_weight']
  return (weight * cross_entropy(logits, batch['label'], label_smoothing)
          + (1.0 - weight) * cross_entropy(logits, batch['mix_label'], label_smoothing))


def train_step(state, batch, dropout_root, label_smoothing: float):
  """One optimizer step on a device's slice; gradients are averaged over devices."""
  # Dropout depends only on (seed, step, device), so a resumed run draws the same masks.
  dropout_rng = jax.random.fold_in(jax.random.fold_in(dropout_root, state.step),
                                   parallel.device_index())

  def loss_fn(params):
    logits = state.apply_fn({'params': params}, batch, train=True, rngs={'dropout': dropout_rng})
    return jnp.mean(mixed_cross_entropy(logits, batch, label_smoothing)), logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=parallel.pmean(grads))
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch['label'])
  return state, parallel.pmean({'loss': loss, 'accuracy': accuracy})


def evaluate_step(state, batch):
  """Per-example loss, prediction and top-5 classes of a device's slice of an eval batch."""
  logits = state.apply_fn({'params': state.params}, batch, train=False)  # [B, C]
  _, top5 = jax.lax.top_k(logits, min(5, logits.shape[-1]))  # [B, 5]
  return {'loss': cross_entropy(logits, batch['label'], 0.0),
          'prediction': jnp.argmax(logits, -1), 'top5': top5,
          'label': batch['label'], 'example_mask': batch['example_mask']}


def evaluate_model(p_evaluate_step, state, dataset, num_classes: int) -> dict[str, Any]:
  """Runs a whole split once; returns loss, accuracy, macro-F1, top-5 and the confusion matrix."""
  outputs = [parallel.to_host(p_evaluate_step(state, batch))
             for batch in dataset.as_numpy_iterator()]
  out = {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}
  mask = out['example_mask']
  confusion = metrics_lib.confusion_matrix(out['label'], out['prediction'], num_classes, mask)
  top5_hits = np.any(out['top5'] == out['label'][:, None], axis=-1)
  count = float(mask.sum())
  return {
      'loss': float((out['loss'] * mask).sum() / max(count, 1.0)),
      'accuracy': metrics_lib.masked_accuracy(out['label'], out['prediction'], mask),
      'macro_f1': metrics_lib.macro_f1(confusion),
      'top5': float((top5_hits * mask).sum() / max(count, 1.0)),
      'count': int(count),
      'confusion': confusion,
  }


def checkpoint_managers(workdir: str, config) -> tuple[ocp.CheckpointManager, ocp.CheckpointManager]:
  """(latest, best): the last few checkpoints for resuming, and the best by val accuracy."""
  root = os.path.join(os.path.abspath(workdir), 'checkpoints')
  latest = ocp.CheckpointManager(
      os.path.join(root, 'latest'),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=config.keep_checkpoints, create=True, enable_async_checkpointing=False))
  best = ocp.CheckpointManager(
      os.path.join(root, 'best'),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=1, best_fn=lambda m: m['val_accuracy'], best_mode='max', create=True,
          enable_async_checkpointing=False))
  return latest, best


def save_checkpoint(manager, step: int, state, progress: dict, metrics=None) -> None:
  """Saves host train state and the JSON progress record (data position, config, early stopping)."""
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(progress)), metrics=metrics)


def restore_checkpoint(manager, state, step: int | None = None):
  """Restores (state, progress) from a manager's step (default: latest)."""
  step = manager.latest_step() if step is None else step
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(state), progress=ocp.args.JsonRestore()))
  return restored.state, restored.progress


def write_workdir_files(workdir: str, config, meta: schema.DatasetMeta) -> None:
  """Writes the resolved config and the data set metadata next to the checkpoints."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=1))
  meta.save_json(os.path.join(workdir, 'dataset_meta.json'))


def truncate_metrics_log(path: str, last_step: int) -> None:
  """Drops metrics lines after the step a run resumes from (they will be written again)."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = [line for line in f if line.strip() and json.loads(line)['step'] <= last_step]
  with open(path, 'w') as f:
    f.writelines(lines)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains with periodic evaluation, checkpointing and early stopping; returns the last metrics."""
  parallel.initialize(config.distributed)
  meta = ensure_data(config.data_dir)
  # Every host trains and checkpoints (orbax coordinates); only the first writes files.
  is_primary = jax.process_index() == 0
  if is_primary:
    write_workdir_files(workdir, config, meta)
  num_devices = parallel.num_devices()
  per_epoch = input_pipeline.steps_per_epoch(meta, config.batch_size, jax.process_count())

  model = create_model(config, meta)
  init_rng, dropout_root = jax.random.split(jax.random.PRNGKey(config.seed))
  state = create_train_state(config, meta, model, init_rng)
  logging.info('Parameters by module (%s, %d classes):\n%s', config.model.temporal,
               meta.num_classes, parameter_summary(state.params))

  latest, best = checkpoint_managers(workdir, config)
  progress = {'step': 0, 'best_val_accuracy': -1.0, 'evals_since_best': 0, 'stopped_early': False}
  if latest.latest_step() is not None:
    state, progress = restore_checkpoint(latest, state)
    logging.info('Resumed from step %d (epoch %d, batch %d of the epoch)', progress['step'],
                 progress['epoch'], progress['step_in_epoch'])
  start_step = int(progress['step'])
  for step in best.all_steps():
    if step > start_step:  # evaluated after the checkpoint we resume from; it will be redone
      best.delete(step)
  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  if is_primary:
    truncate_metrics_log(metrics_path, start_step)
  if progress['stopped_early'] or start_step >= config.num_train_steps:
    logging.info('Training already finished at step %d', start_step)
    return last_eval_record(metrics_path)

  p_train_step = parallel.data_parallel(
      functools.partial(train_step, label_smoothing=config.label_smoothing), donate_argnums=(0,))
  p_evaluate_step = parallel.data_parallel(evaluate_step)
  train_batches = flax.jax_utils.prefetch_to_device(
      input_pipeline.train_iterator(config, meta, start_step, num_devices,
                                    jax.process_index(), jax.process_count()), 2)
  val_dataset = input_pipeline.eval_dataset(config, 'val', num_devices)
  replicated = parallel.replicate(state)
  dropout_roots = parallel.replicate(dropout_root)

  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  writer = (tf.summary.create_file_writer(os.path.join(workdir, 'tensorboard')) if is_primary
            else tf.summary.create_noop_writer())
  train_history, record = [], {}
  window_start, window_steps = time.perf_counter(), 0
  with tqdm.tqdm(total=config.num_train_steps, initial=start_step, unit='step',
                 dynamic_ncols=True, disable=None) as bar:
    for step in range(start_step + 1, config.num_train_steps + 1):
      replicated, step_metrics = p_train_step(replicated, next(train_batches), dropout_roots)
      train_history.append(step_metrics)
      window_steps += 1
      bar.update(1)
      is_last = step == config.num_train_steps
      is_eval = step % config.eval_every_steps == 0 or is_last

      if step % config.log_every_steps == 0 or is_eval:
        train = jax.tree.map(lambda *x: float(np.mean([v[0] for v in x])), *train_history)
        examples_per_sec = window_steps * config.batch_size / (time.perf_counter() - window_start)
        bar.set_postfix(loss=f'{train["loss"]:.3f}', acc=f'{train["accuracy"]:.3f}',
                        ex_s=f'{examples_per_sec:.0f}')
        with writer.as_default(step=step):
          tf.summary.scalar('train/loss', train['loss'])
          tf.summary.scalar('train/accuracy', train['accuracy'])
          tf.summary.scalar('train/examples_per_sec', examples_per_sec)

      if is_eval:
        val = evaluate_model(p_evaluate_step, replicated, val_dataset, meta.num_classes)
        improved = val['accuracy'] > progress['best_val_accuracy']
        progress['best_val_accuracy'] = max(val['accuracy'], progress['best_val_accuracy'])
        progress['evals_since_best'] = 0 if improved else progress['evals_since_best'] + 1
        progress['stopped_early'] = progress['evals_since_best'] >= config.patience
        record = {
            'step': step, 'epoch': step / per_epoch, 'train_loss': train['loss'],
            'train_accuracy': train['accuracy'], 'val_loss': val['loss'],
            'val_accuracy': val['accuracy'], 'val_macro_f1': val['macro_f1'],
            'val_top5': val['top5'], 'val_examples': val['count'],
            'learning_rate': float(create_learning_rate_fn(config)(step)),
            'steps_per_sec': examples_per_sec / config.batch_size, 'devices': num_devices,
            'examples_per_sec': examples_per_sec}
        if is_primary:
          write_eval_record(metrics_path, writer, record)
        bar.write(eval_line(record))
        if improved:  # ties keep the earlier checkpoint, the step early stopping counts from
          save_checkpoint(best, step, parallel.unreplicate(replicated),
                          dict(progress, **data_position(step, per_epoch), config=config.to_dict()),
                          metrics={'val_accuracy': val['accuracy']})

      if step % config.checkpoint_every_steps == 0 or is_last or progress['stopped_early']:
        progress.update(data_position(step, per_epoch))
        save_checkpoint(latest, step, parallel.unreplicate(replicated),
                        dict(progress, config=config.to_dict()))
      if step % config.log_every_steps == 0 or is_eval:
        # Evaluation and checkpoint time stay out of the throughput figures.
        train_history, window_start, window_steps = [], time.perf_counter(), 0
      if progress['stopped_early']:
        bar.write(f'Early stop at step {step}: val accuracy has not improved for '
                  f'{config.patience} evaluations (best {progress["best_val_accuracy"]:.4f})')
        break

  latest.wait_until_finished()
  best.wait_until_finished()
  writer.close()
  if is_primary:
    plots.training_curves(metrics_path, os.path.join(workdir, 'training_curves.png'))
  logging.info('Finished at step %d; best val accuracy %.4f; workdir %s', step,
               progress['best_val_accuracy'], workdir)
  return record


def last_eval_record(path: str) -> dict[str, Any]:
  """The last line of metrics.jsonl ({} if there is none)."""
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    lines = [line for line in f if line.strip()]
  return json.loads(lines[-1]) if lines else {}


def data_position(step: int, per_epoch: int) -> dict[str, int]:
  """Where the training data stream stands after `step` steps."""
  return {'step': step, 'epoch': step // per_epoch, 'step_in_epoch': step % per_epoch}


def write_eval_record(path: str, writer, record: dict) -> None:
  """Appends one evaluation to metrics.jsonl and to TensorBoard."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with open(path, 'a') as f:
    f.write(json.dumps(record) + '\n')
  with writer.as_default(step=record['step']):
    for key in ('val_loss', 'val_accuracy', 'val_macro_f1', 'val_top5'):
      tf.summary.scalar(key.replace('_', '/', 1), record[key])
  writer.flush()


def eval_line(record: dict) -> str:
  """One readable line summarising an evaluation."""
  return (f'step {record["step"]}: train loss {record["train_loss"]:.3f} '
          f'acc {record["train_accuracy"]:.3f} | val loss {record["val_loss"]:.3f} '
          f'acc {record["val_accuracy"]:.3f} F1 {record["val_macro_f1"]:.3f} '
          f'top5 {record["val_top5"]:.3f} | {record["steps_per_sec"]:.2f} steps/s '
          f'{record["examples_per_sec"]:.0f} ex/s')


if __name__ == '__main__':
  from absl import app  # pylint: disable=g-import-not-at-top
  from lipjax import main as main_lib  # pylint: disable=g-import-not-at-top
  app.run(main_lib.main, flags_parser=main_lib.parse_flags)
