"""Training loop: data, model, optimizer, state, checkpoint restore, loop with periodic hooks.

`train_and_evaluate(config, workdir)` is the one entry point (tests call it
with configs/test.py); `python -m lipjax.train --config configs/small.py` runs it
from the command line (lipjax/main.py). The workdir's layout is in workdir.py,
its checkpoints in checkpoints.py, its metrics record in metrics_log.py.

The data set decides what is trained: a word classifier (cross-entropy; the best
checkpoint and early stopping by val accuracy) or, for a sentence data set, a
sentence reader (CTC over extraction/tokens.py's characters; by the lowest val
CER of greedy decoding, WER reported beside it). One loop runs both.
"""

import contextlib
import functools
import runpy
import time
from typing import Any

from absl import logging
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from extraction import schema
from extraction import tokens as tokens_lib
from lipjax import augment
from lipjax import checkpoints
from lipjax import evaluation
from lipjax import input_pipeline
from lipjax import metrics_log
from lipjax import models
from lipjax import parallel
from lipjax import plots
from lipjax import sentences
from lipjax import tensorboard
from lipjax import workdir as workdir_lib


def load_dataset_meta(data_dir: str) -> schema.DatasetMeta:
  """The metadata of the data set to train on, or a FileNotFoundError saying how to make one."""
  if not data_dir:
    raise ValueError('config.data_dir is empty; pass --config.data_dir=DIR or set LIPJAX_DATA_DIR')
  if not workdir_lib.path(data_dir).exists():
    raise FileNotFoundError(
      f'data set {data_dir} does not exist; write one with `python -m extraction '
      '--input ... --out DIR` and pass --config.data_dir=DIR'
    )
  return schema.DatasetMeta.load(data_dir)


def validate(
  config: ml_collections.ConfigDict, meta: schema.DatasetMeta, num_devices: int, host_count: int
) -> None:
  """Raises ValueError for a config that cannot train on this data set and these devices."""
  if config.num_train_steps <= 0:
    raise ValueError(f'config.num_train_steps={config.num_train_steps}; it must be positive')
  if meta.is_sentences:
    validate_sentences(config, meta)
  elif meta.num_classes < 2:
    raise ValueError(
      f'data set {config.data_dir} has {meta.num_classes} class(es) '
      f'({meta.class_names}); a classifier needs at least 2'
    )
  augment.check_mixing(config.augment, meta.is_sentences)
  input_pipeline.steps_per_epoch(meta, config.batch_size, host_count)
  if (config.batch_size // host_count) % num_devices:
    raise ValueError(
      f'batch_size={config.batch_size} is not divisible by {host_count * num_devices} devices'
    )
  if config.eval_batch_size % (host_count * num_devices):
    raise ValueError(
      f'eval_batch_size={config.eval_batch_size} is not divisible by '
      f'{host_count * num_devices} devices'
    )


def validate_sentences(config: ml_collections.ConfigDict, meta: schema.DatasetMeta) -> None:
  """Raises ValueError for a sentence data set or config the sentence reader cannot train on."""
  if tuple(meta.token_set) != tokens_lib.TOKENS:
    raise ValueError(
      f'data set {config.data_dir} spells its sentences in {len(meta.token_set)} tokens '
      f'{meta.token_set[:6]}..., not the {tokens_lib.NUM_TOKENS} of extraction/tokens.py '
      'that decoding reads; extract it again with this version'
    )
  if config.model.temporal == 'seed_fusion':
    raise ValueError(
      "config.model.temporal='seed_fusion' pools over time inside itself; a sentence data set "
      "needs an output per frame: use 'bilstm' or 'transformer'"
    )


def create_learning_rate_fn(config: ml_collections.ConfigDict):
  """Linear warmup to config.learning_rate, then cosine decay to zero at num_train_steps."""
  return optax.warmup_cosine_decay_schedule(
    init_value=0.0,
    peak_value=config.learning_rate,
    warmup_steps=config.warmup_steps,
    decay_steps=max(config.num_train_steps, config.warmup_steps + 1),
    end_value=0.0,
  )


def create_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW with global-norm clipping; biases and layer-norm scales are not decayed."""
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
  return optax.chain(
    optax.clip_by_global_norm(config.grad_clip),
    optax.adamw(create_learning_rate_fn(config), weight_decay=config.weight_decay, mask=decay_mask),
  )


def init_params(model: models.LipReader, meta: schema.DatasetMeta, rng):
  """Initial parameters of a model for a data set's shapes."""
  return jax.jit(functools.partial(model.init, train=False))(
    {'params': rng}, models.dummy_batch(meta)
  )['params']


def create_train_state(config, meta, model, rng) -> train_state.TrainState:
  """Initialises parameters and optimizer state on the host."""
  return train_state.TrainState.create(
    apply_fn=model.apply, params=init_params(model, meta, rng), tx=create_optimizer(config)
  )


def parameter_summary(params) -> str:
  """Parameter counts per top-level module, one per line, then the total."""
  rows = models.parameter_counts(params, depth=1)
  lines = [f'  {name:<24} {count:>12,}' for name, count in rows]
  lines.append(f'  {"total":<24} {sum(count for _, count in rows):>12,}')
  return '\n'.join(lines)


def cross_entropy(logits, labels, label_smoothing: float):
  """Per-example cross-entropy against label-smoothed one-hot targets.  # [B]"""
  targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def mixed_cross_entropy(logits, batch, label_smoothing: float):
  """Cross-entropy against mix_weight of `label` plus 1 - mix_weight of `mix_label` (mixup).  # [B]"""
  weight = batch['mix_weight']
  return weight * cross_entropy(logits, batch['label'], label_smoothing) + (
    1.0 - weight
  ) * cross_entropy(logits, batch['mix_label'], label_smoothing)


def record_best(progress: dict, val: dict) -> bool:
  """Updates progress's best val figure with an evaluation; True if it improved (ties do not).

  Words: the highest val accuracy; sentences (an evaluation with 'cer'): the lowest val CER.
  """
  if 'cer' in val:
    improved = progress['best_val_cer'] is None or val['cer'] < progress['best_val_cer']
    if improved:
      progress['best_val_cer'] = val['cer']
    return improved
  improved = val['accuracy'] > progress['best_val_accuracy']
  progress['best_val_accuracy'] = max(val['accuracy'], progress['best_val_accuracy'])
  return improved


def best_figure(progress: dict) -> str:
  """The best val figure so far, in words, for log lines."""
  if 'best_val_cer' in progress:
    best = progress['best_val_cer']
    return 'val CER ' + ('-' if best is None else f'{best:.4f}')
  return f'val accuracy {progress["best_val_accuracy"]:.4f}'


def run_keys(seed: int):
  """(init key, {'dropout': key, 'augment': key}) of a run: everything random is a function of seed.

  Each step folds its number into the dropout and augmentation keys; dropout then
  its device, augmentation each clip's row in the global batch.
  """
  init_rng, dropout_root = jax.random.split(jax.random.PRNGKey(seed))
  return init_rng, {
    'dropout': dropout_root,
    'augment': augment.stream(jax.random.PRNGKey(seed), 'augment'),
  }


def train_step(state, batch, roots, label_smoothing: float, augment_config, mirror_perm):
  """One optimizer step on a device's slice: augmentation, loss, gradients averaged over devices.

  roots: {'dropout': key, 'augment': key}. Augmentation is keyed by (seed, step,
  global row), dropout by (seed, step, device), so a resumed run draws the same.
  A sentence batch (with `tokens`) trains the CTC head: its metrics are the loss
  alone; a word batch's are the loss and accuracy.
  """
  sentence_batch = 'tokens' in batch
  batch = augment.augment_batch(
    batch,
    jax.random.fold_in(roots['augment'], state.step),
    augment_config,
    mirror_perm,
    rows=parallel.global_rows(batch['length'].shape[0]),
    gather=parallel.all_gather,
  )
  dropout_rng = jax.random.fold_in(
    jax.random.fold_in(roots['dropout'], state.step), parallel.device_index()
  )

  def loss_fn(params):
    logits = state.apply_fn({'params': params}, batch, train=True, rngs={'dropout': dropout_rng})
    if sentence_batch:
      losses = sentences.ctc_loss(  # [B]
        logits, batch['frame_mask'], batch['tokens'], batch['token_length']
      )
      return jnp.mean(losses), logits
    return jnp.mean(mixed_cross_entropy(logits, batch, label_smoothing)), logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=parallel.pmean(grads))
  if sentence_batch:
    return state, parallel.pmean({'loss': loss})
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch['label'])
  return state, parallel.pmean({'loss': loss, 'accuracy': accuracy})


def step_function(config, meta: schema.DatasetMeta):
  """train_step for a config and data set, not yet compiled: (state, batch, roots) -> (state, metrics)."""
  return functools.partial(
    train_step,
    label_smoothing=config.label_smoothing,
    augment_config=config.augment,
    mirror_perm=np.asarray(meta.mirror_perm, np.int32),
  )


def data_position(step: int, per_epoch: int) -> dict[str, int]:
  """Where the training data stream stands after `step` steps."""
  return {'step': step, 'epoch': step // per_epoch, 'step_in_epoch': step % per_epoch}


def eval_line(record: dict) -> str:
  """One readable line summarising an evaluation (a word classifier's or a sentence reader's)."""
  if 'val_cer' in record:
    return (
      f'step {record["step"]}: train loss {record["train_loss"]:.3f} | val loss '
      f'{record["val_loss"]:.3f} WER {record["val_wer"]:.3f} CER {record["val_cer"]:.3f} '
      f'(greedy) | {record["steps_per_sec"]:.2f} steps/s {record["examples_per_sec"]:.0f} ex/s'
    )
  return (
    f'step {record["step"]}: train loss {record["train_loss"]:.3f} '
    f'acc {record["train_accuracy"]:.3f} | val loss {record["val_loss"]:.3f} '
    f'acc {record["val_accuracy"]:.3f} F1 {record["val_macro_f1"]:.3f} '
    f'top5 {record["val_top5"]:.3f} | {record["steps_per_sec"]:.2f} steps/s '
    f'{record["examples_per_sec"]:.0f} ex/s'
  )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains with periodic evaluation, checkpointing and early stopping; returns the last metrics.

  Checks the config, the data set and the workdir (its lock, and that it was
  trained on the same classes, shapes and model) before writing anything. With
  config.distributed every process of the job calls it with the same config and
  workdir (a str or epath.Path; gs:// works); it returns the same on each.
  """
  parallel.initialize(config)
  meta = load_dataset_meta(config.data_dir)
  validate(config, meta, parallel.num_devices(), parallel.process_count())
  # Every process trains and calls checkpoint saves (orbax coordinates them: process 0
  # writes, all wait at its barriers); only process 0 writes the workdir's other files.
  is_primary = parallel.is_primary()
  with contextlib.ExitStack() as held:
    refusal = None
    if is_primary:
      try:
        held.enter_context(workdir_lib.exclusive(workdir))
        workdir_lib.check_compatible(workdir, config, meta)
        workdir_lib.write(workdir, config, meta)
      except Exception as error:  # noqa: BLE001 (re-raised below, once the others know)
        refusal = error
    # Every process hears process 0's verdict: a refusal there must not leave the
    # others waiting for it at their first collective.
    if parallel.primary_flag(refusal is not None):
      if refusal is not None:
        raise refusal
      raise workdir_lib.WorkdirError(
        f'{workdir}: process 0 of this job refused the workdir (its log says why); '
        'nothing was trained'
      )
    return _train(config, meta, workdir, is_primary)


def _train(config, meta: schema.DatasetMeta, workdir: str, is_primary: bool) -> dict[str, Any]:
  """The loop of train_and_evaluate, once the workdir is checked and held."""
  num_devices = parallel.num_devices()
  host_index, host_count = parallel.process_index(), parallel.process_count()
  per_epoch = input_pipeline.steps_per_epoch(meta, config.batch_size, host_count)
  model = models.create_model(config, meta)
  init_rng, keys = run_keys(config.seed)
  state = create_train_state(config, meta, model, init_rng)
  sentence_reader = meta.is_sentences
  logging.info(
    'Parameters by module (%s, %s):\n%s',
    config.model.temporal,
    f'CTC over {model.num_classes} tokens' if sentence_reader else f'{meta.num_classes} classes',
    parameter_summary(state.params),
  )

  latest, best = checkpoints.managers(workdir, config.keep_checkpoints)
  # The best val figure so far (record_best): none yet for a sentence reader's CER.
  best_so_far = {'best_val_cer': None} if sentence_reader else {'best_val_accuracy': -1.0}
  progress = {'step': 0, **best_so_far, 'evals_since_best': 0, 'stopped_early': False}
  if latest.latest_step() is not None:
    state, progress = checkpoints.restore(latest, state)
    logging.info(
      'Resumed from step %d (epoch %d, batch %d of the epoch)',
      progress['step'],
      progress['epoch'],
      progress['step_in_epoch'],
    )
  start_step = int(progress['step'])
  for step in best.all_steps():
    if step > start_step:  # evaluated after the checkpoint we resume from; it will be redone
      best.delete(step)
  if is_primary:
    metrics_log.truncate(workdir, start_step)
  if progress['stopped_early'] or start_step >= config.num_train_steps:
    logging.info('Training already finished at step %d', start_step)
    return metrics_log.last(workdir)

  p_train_step = parallel.data_parallel(step_function(config, meta), donate_argnums=(0,))
  p_evaluate_step = evaluation.parallel_evaluate_step(model.apply, sentence_reader)
  train_batches = parallel.prefetch(
    input_pipeline.train_iterator(config, meta, start_step, num_devices, host_index, host_count)
  )
  val_examples = input_pipeline.load_split(config, 'val')
  replicated = parallel.replicate(state)
  roots = parallel.replicate(keys)
  learning_rate_fn = create_learning_rate_fn(config)

  writer = tensorboard.MetricWriter(
    workdir_lib.path(workdir, workdir_lib.TENSORBOARD), events=is_primary, resume_step=start_step
  )
  train_history, record = [], {}
  window_start, window_steps = time.perf_counter(), 0
  with tqdm.tqdm(
    total=config.num_train_steps, initial=start_step, unit='step', dynamic_ncols=True, disable=None
  ) as bar:
    for step in range(start_step + 1, config.num_train_steps + 1):
      replicated, step_metrics = p_train_step(replicated, next(train_batches), roots)
      train_history.append(step_metrics)
      window_steps += 1
      bar.update(1)
      is_last = step == config.num_train_steps
      is_eval = step % config.eval_every_steps == 0 or is_last

      if step % config.log_every_steps == 0 or is_eval:
        train = jax.tree.map(lambda *x: float(np.mean([v[0] for v in x])), *train_history)
        examples_per_sec = window_steps * config.batch_size / (time.perf_counter() - window_start)
        bar.set_postfix(
          **{('acc' if k == 'accuracy' else k): f'{v:.3f}' for k, v in train.items()},
          ex_s=f'{examples_per_sec:.0f}',
        )
        writer.write_scalars(
          step,
          {
            **{f'train/{k}': v for k, v in train.items()},
            'train/examples_per_sec': examples_per_sec,
          },
        )

      if is_eval:
        val_batches = input_pipeline.eval_iterator(
          config, 'val', num_devices, host_index, host_count, val_examples
        )
        if sentence_reader:
          val = evaluation.evaluate_sentences(p_evaluate_step, replicated.params, val_batches)
          val_scalars = {k: val[k] for k in ('loss', 'wer', 'cer')}
        else:
          val = evaluation.evaluate_model(
            p_evaluate_step, replicated.params, val_batches, meta.num_classes
          )
          val_scalars = {k: val[k] for k in ('loss', 'accuracy', 'macro_f1', 'top5')}
        improved = record_best(progress, val)
        progress['evals_since_best'] = 0 if improved else progress['evals_since_best'] + 1
        progress['stopped_early'] = (
          progress['evals_since_best'] >= config.patience and step >= config.min_train_steps
        )
        record = {
          'step': step,
          'epoch': step / per_epoch,
          **{f'train_{k}': v for k, v in train.items()},
          **{f'val_{k}': v for k, v in val_scalars.items()},
          'val_examples': val['count'],
          'learning_rate': float(learning_rate_fn(step)),
          'steps_per_sec': examples_per_sec / config.batch_size,
          'devices': parallel.total_devices(),
          'examples_per_sec': examples_per_sec,
        }
        if is_primary:
          metrics_log.append(workdir, record)
        writer.write_scalars(step, {f'val/{k}': v for k, v in val_scalars.items()})
        writer.flush()
        bar.write(eval_line(record))
        if improved:  # ties keep the earlier checkpoint, the step early stopping counts from
          checkpoints.save(
            best,
            step,
            parallel.unreplicate(replicated),
            dict(progress, **data_position(step, per_epoch)),
            # checkpoints.best_score reads whichever of the two it is given.
            metrics={'val_cer': val['cer']}
            if sentence_reader
            else {'val_accuracy': val['accuracy']},
          )

      if step % config.checkpoint_every_steps == 0 or is_last or progress['stopped_early']:
        progress.update(data_position(step, per_epoch))
        checkpoints.save(latest, step, parallel.unreplicate(replicated), dict(progress))
      if step % config.log_every_steps == 0 or is_eval:
        # Evaluation and checkpoint time stay out of the throughput figures.
        train_history, window_start, window_steps = [], time.perf_counter(), 0
      if progress['stopped_early']:
        bar.write(
          f'Early stop at step {step}: no better val figure for {progress["evals_since_best"]} '
          f'evaluations (best {best_figure(progress)})'
        )
        break

  latest.wait_until_finished()
  best.wait_until_finished()
  writer.close()
  if is_primary:
    plots.learning_curves(
      metrics_log.read(workdir), workdir_lib.path(workdir, workdir_lib.TRAINING_CURVES)
    )
  logging.info('Finished at step %d; best %s; workdir %s', step, best_figure(progress), workdir)
  return record


if __name__ == '__main__':
  # The command line lives in lipjax/main.py; this module only trains.
  runpy.run_module('lipjax.main', run_name='__main__', alter_sys=True)
