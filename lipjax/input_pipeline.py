"""Shards -> tf.data -> numpy batches shaped [devices, per_device_batch, ...] for pmap.

Training batches: per-epoch shuffle seeded by (config.seed, epoch), full batches
only, augmentation on whole batches with stateless random numbers seeded by
(config.seed, step), so a run's data is a function of its seed and resumes at
any step. Two ways to the examples: `config.input.cache` holds every parsed
example in memory (small data sets; the demo's batches), otherwise they stream
from the shards (LRW scale): each epoch reads its host's shard files in an
order seeded by (config.seed, epoch), `config.input.cycle_length` files at a
time, through a shuffle buffer of serialised records, and decodes whole batches
after a resume's skipped batches, so host memory is the shuffle buffer's.
Evaluation batches: every example exactly once, the last batch padded and
flagged by `example_mask`.

Several hosts (processes; jax.distributed): config.batch_size and
config.eval_batch_size are global, and host i of n yields rows
[i * B / n, (i + 1) * B / n) of each global batch, which then fill its devices
in order: process-major, the order of the devices along pmap's axis.
- Cached mode: every host holds the whole split, draws the same global order
  and augments the same global batch (seeded by (config.seed, step)), then
  keeps its slice. The global batch at every step is therefore the same
  whatever the number of hosts, and one host gets exactly the batches it
  always had; the price is that each host repeats the augmentation of the
  whole batch, which is cheap at the sizes that fit in memory.
- Streaming mode: each host reads its own shard files (host_files), shuffles
  and augments only its share, seeded by (config.seed, step * n + i). The
  steps per epoch are the same as with one host, but the batches are not: a
  run on n hosts equals no run on another number of hosts.
- Evaluation: every host reads the whole split in file order and keeps its
  slice of each padded global batch (evaluation.evaluate_model gathers the
  slices back into file order), so metrics equal a one-host run's.
"""

import os
from typing import Iterator

from absl import logging
import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TF's C++ start-up chatter, not ours
import tensorflow as tf

from extraction import schema
from extraction import shards

# JAX owns the accelerators; tf.data only reads and augments on the host.
tf.config.set_visible_devices([], 'GPU')

# The numeric fields of a shard's example as the model reads them (the rest are strings).
MODEL_DTYPES = {
  **{key: np.float32 for key in schema.FRAME_KEYS},
  'length': np.int32,
  'label': np.int32,
}


def parse_example(example: dict) -> dict:
  """Keeps the numeric fields as float32 masks / int32 labels and adds `example_mask`."""
  parsed = {key: tf.cast(example[key], dtype) for key, dtype in MODEL_DTYPES.items()}
  parsed['example_mask'] = tf.constant(1.0, tf.float32)
  return parsed


def parse_numpy_example(example: dict) -> dict:
  """parse_example for one padded numpy example (schema.pad_example's): predict, stream."""
  parsed = {key: np.asarray(example[key], dtype) for key, dtype in MODEL_DTYPES.items()}
  return dict(parsed, example_mask=np.float32(1.0))


def flip_landmarks(landmarks, frame_mask, mirror_perm):
  """Horizontal flip: node k takes node mirror_perm[k]'s point with x -> 1 - x.  # [..., T, N, 3]

  Padding frames stay zero. Flipping twice is the identity (mirror_perm is an involution).
  """
  mirrored = tf.gather(landmarks, mirror_perm, axis=-2)
  mirrored = tf.concat([1.0 - mirrored[..., :1], mirrored[..., 1:]], axis=-1)
  return mirrored * frame_mask[..., None, None]


def resample(batch: dict, position, frame_mask) -> dict:
  """Reads each clip at source positions [B, T] (fractional frames) for its new frame_mask [B, T].

  Landmarks and AU/geometry are interpolated linearly, masks take the nearest frame;
  positions past a clip's last real frame read that frame.
  """
  length = tf.cast(batch['length'], tf.float32)  # [B]
  position = tf.clip_by_value(position, 0.0, tf.maximum(length[:, None] - 1.0, 0.0))
  lower = tf.cast(tf.floor(position), tf.int32)
  upper = tf.minimum(lower + 1, tf.maximum(tf.cast(length[:, None], tf.int32) - 1, 0))
  weight = position - tf.cast(lower, tf.float32)  # [B, T]
  nearest = tf.cast(tf.round(position), tf.int32)
  out = dict(batch)
  for key in ('landmarks', 'au', 'geometry'):
    x = batch[key]
    extra = [1] * (len(x.shape) - 2)
    w = tf.reshape(weight, weight.shape + extra)
    lerp = tf.gather(x, lower, batch_dims=1) * (1.0 - w) + tf.gather(x, upper, batch_dims=1) * w
    out[key] = lerp * tf.reshape(frame_mask, frame_mask.shape + extra)
  for key in ('face_mask', 'speech_mask'):
    out[key] = tf.gather(batch[key], nearest, batch_dims=1) * frame_mask
  out['frame_mask'] = frame_mask
  out['length'] = tf.cast(tf.reduce_sum(frame_mask, axis=1), tf.int32)
  return out


def speed_perturb(batch: dict, rate) -> dict:
  """Resamples each clip at rate [B] (> 1: faster, fewer frames) by linear interpolation."""
  steps = batch['frame_mask'].shape[1]
  length = tf.cast(batch['length'], tf.float32)  # [B]
  new_length = tf.clip_by_value(tf.round(length / rate), 1.0, float(steps))  # [B]
  t = tf.range(steps, dtype=tf.float32)[None, :]  # [1, T]
  frame_mask = tf.cast(t < new_length[:, None], tf.float32)
  return resample(batch, t * rate[:, None], frame_mask)


def time_warp(batch: dict, log_slopes) -> dict:
  """Stretches and squeezes parts of each clip: a monotone warp of its time, length kept.

  log_slopes [B, K] cut each clip's real frames into K equal parts of the output
  and give each part's playback rate (relative to the others) as exp(log_slope);
  the ends stay fixed. A uniform speed change (speed_perturb) keeps the ratios of
  sound durations within a word, which identify a single clip; this changes them.
  """
  steps, parts = batch['frame_mask'].shape[1], log_slopes.shape[1]
  slopes = tf.exp(tf.cast(log_slopes, tf.float32))  # [B, K]
  ends = tf.cumsum(slopes, axis=1) / tf.reduce_sum(slopes, axis=1, keepdims=True)  # [B, K]
  starts = tf.concat([tf.zeros_like(ends[:, :1]), ends[:, :-1]], axis=1)  # [B, K]
  last = tf.maximum(tf.cast(batch['length'], tf.float32) - 1.0, 1.0)[:, None]  # [B, 1]
  u = tf.range(steps, dtype=tf.float32)[None, :] / last * parts  # [B, T] in parts
  part = tf.clip_by_value(tf.cast(tf.floor(u), tf.int32), 0, parts - 1)
  within = u - tf.cast(part, tf.float32)
  warped = tf.gather(starts, part, batch_dims=1) + within * tf.gather(
    ends - starts, part, batch_dims=1
  )  # [B, T] in [0, 1]
  return resample(batch, warped * last, batch['frame_mask'])


def time_mask(batch: dict, start, width) -> dict:
  """Freezes frames [start, start + width) at the frame before and flags them in face_mask.

  That is what extraction does where FaceMesh loses the face, so the model
  learns to bridge such gaps.
  """
  steps = batch['frame_mask'].shape[1]
  t = tf.range(steps)[None, :]  # [1, T]
  inside = (t >= start[:, None]) & (t < (start + width)[:, None]) & (t < batch['length'][:, None])
  source = tf.where(inside, tf.maximum(start[:, None] - 1, 0), t)  # [B, T]
  out = dict(batch)
  for key in ('landmarks', 'au', 'geometry'):
    out[key] = tf.gather(batch[key], source, batch_dims=1)
  out['face_mask'] = batch['face_mask'] * (1.0 - tf.cast(inside, tf.float32))
  return out


def time_shift(batch: dict, shift) -> dict:
  """Moves each clip's frames shift [B] steps later (earlier if negative) within its real frames.

  The first and last real frames are held where the clip moves away from an end,
  masks move with the frames, and padding stays padding. Where the word sits in
  the clip then carries no information a model could memorise a clip by.
  """
  steps = batch['frame_mask'].shape[1]
  t = tf.range(steps)[None, :]  # [1, T]
  last = batch['length'][:, None] - 1  # [B, 1]
  source = tf.where(t <= last, tf.clip_by_value(t - shift[:, None], 0, tf.maximum(last, 0)), t)
  out = dict(batch)
  for key in ('landmarks', 'au', 'geometry', 'face_mask', 'speech_mask'):
    out[key] = tf.gather(batch[key], source, batch_dims=1)
  return out


def mix_clips(batch: dict, partner, weight) -> dict:
  """Mixup: clip i becomes weight[i] of itself plus 1 - weight[i] of clip partner[i].

  Landmarks and AU/geometry mix on the frames real in both clips (elsewhere the
  clip keeps its own); the speech mask is the union of both clips' speech, and
  `mix_label` / `mix_weight` tell the loss to aim at the same mixture of the two
  labels. A clip's own `label` stays the majority one (weight >= 0.5).
  """

  def partner_of(x):
    return tf.gather(x, partner)

  both = batch['frame_mask'] * partner_of(batch['frame_mask'])  # [B, T]
  out = dict(batch)
  for key in ('landmarks', 'au', 'geometry'):
    x = batch[key]
    extra = [1] * (len(x.shape) - 2)
    share = tf.reshape(both, tf.concat([tf.shape(both), extra], 0)) * tf.reshape(
      1.0 - weight, [-1, 1] + extra
    )
    out[key] = x + share * (partner_of(x) - x)
  out['speech_mask'] = tf.maximum(
    batch['speech_mask'], partner_of(batch['speech_mask']) * batch['frame_mask']
  )
  out['face_mask'] = batch['face_mask'] * tf.where(both > 0, partner_of(batch['face_mask']), 1.0)
  out['mix_label'] = partner_of(batch['label'])
  out['mix_weight'] = weight
  return out


def affine_landmarks(landmarks, frame_mask, angle, scale, shift):
  """Rotates xy by angle [B] and scales xyz by scale [B] about 0.5, then shifts xy by shift [B, 2]."""
  cos, sin = tf.cos(angle)[:, None, None], tf.sin(angle)[:, None, None]  # [B, 1, 1]
  x, y, z = landmarks[..., 0] - 0.5, landmarks[..., 1] - 0.5, landmarks[..., 2] - 0.5  # [B, T, N]
  s = scale[:, None, None]
  moved = tf.stack(
    [
      s * (cos * x - sin * y) + 0.5 + shift[:, 0, None, None],
      s * (sin * x + cos * y) + 0.5 + shift[:, 1, None, None],
      s * z + 0.5,
    ],
    axis=-1,
  )  # [B, T, N, 3]
  return moved * frame_mask[..., None, None]


def turn_head(landmarks, frame_mask, yaw, pitch):
  """Turns the 3-D landmarks about the face centre: yaw [B] about the vertical axis, then pitch [B].

  FaceMesh's z makes this a real out-of-plane head turn, which the per-frame face
  normalisation (it removes roll only) leaves in the data.  # [B, T, N, 3]
  """
  x, y, z = landmarks[..., 0] - 0.5, landmarks[..., 1] - 0.5, landmarks[..., 2] - 0.5  # [B, T, N]
  cos_yaw, sin_yaw = tf.cos(yaw)[:, None, None], tf.sin(yaw)[:, None, None]
  cos_pitch, sin_pitch = tf.cos(pitch)[:, None, None], tf.sin(pitch)[:, None, None]
  x, z = cos_yaw * x + sin_yaw * z, -sin_yaw * x + cos_yaw * z
  y, z = cos_pitch * y - sin_pitch * z, sin_pitch * y + cos_pitch * z
  return (tf.stack([x, y, z], axis=-1) + 0.5) * frame_mask[..., None, None]


def augment_batch(batch: dict, seed, augment, mirror_perm, jit_compile: bool = False) -> dict:
  """Applies the augmentations switched on in config.augment, independently per example.

  jit_compile runs the per-clip part through XLA: about twice as fast on CPU,
  the same augmentations with other roundings and random draws.
  """
  seeds = tf.random.experimental.stateless_split(seed, num=14)

  def per_clip(batch, seeds):  # a closure: tf.function traces only the tensors it is given
    return augment_clips(batch, seeds, augment, mirror_perm)

  if jit_compile:
    per_clip = tf.function(per_clip, jit_compile=True)
  return mix_batch(per_clip(batch, seeds), seeds, augment.mixup_alpha)


def augment_clips(batch: dict, seeds, augment, mirror_perm) -> dict:
  """Every augmentation but mixup, each clip on its own; seeds [14, 2] from augment_batch."""
  size = tf.shape(batch['length'])[0]
  uniform = lambda i, shape, lo, hi: tf.random.stateless_uniform(shape, seeds[i], lo, hi)
  if augment.time_shift > 0:
    batch = time_shift(
      batch,
      tf.random.stateless_uniform(
        [size], seeds[10], -augment.time_shift, augment.time_shift + 1, tf.int32
      ),
    )
  if augment.time_warp > 0:
    batch = time_warp(
      batch,
      tf.random.stateless_normal(
        [size, augment.time_warp_parts], seeds[13], stddev=augment.time_warp
      ),
    )
  if augment.speed > 0:
    batch = speed_perturb(batch, uniform(0, [size], 1.0 - augment.speed, 1.0 + augment.speed))
  if augment.time_mask_max > 0:
    width = tf.random.stateless_uniform([size], seeds[1], 0, augment.time_mask_max + 1, tf.int32)
    room = tf.maximum(batch['length'] - width, 0) + 1
    start = tf.cast(uniform(2, [size], 0.0, 1.0) * tf.cast(room, tf.float32), tf.int32)
    batch = time_mask(batch, start, width)
  if augment.flip:
    flipped = flip_landmarks(batch['landmarks'], batch['frame_mask'], mirror_perm)
    # AU and geometry stay as they are: most are left-right symmetric measures, and
    # the asymmetric ones (symmetry, corner_angle) are kept unflipped by design.
    do_flip = uniform(3, [size], 0.0, 1.0) < 0.5
    batch = dict(
      batch, landmarks=tf.where(do_flip[:, None, None, None], flipped, batch['landmarks'])
    )
  if augment.yaw_degrees > 0 or augment.pitch_degrees > 0:
    yaw, pitch = (augment.yaw_degrees * np.pi / 180.0, augment.pitch_degrees * np.pi / 180.0)
    batch = dict(
      batch,
      landmarks=turn_head(
        batch['landmarks'],
        batch['frame_mask'],
        yaw=uniform(8, [size], -yaw, yaw + 1e-9),
        pitch=uniform(9, [size], -pitch, pitch + 1e-9),
      ),
    )
  if augment.rotate_degrees > 0 or augment.scale > 0 or augment.translate > 0:
    radians = augment.rotate_degrees * np.pi / 180.0
    batch = dict(
      batch,
      landmarks=affine_landmarks(
        batch['landmarks'],
        batch['frame_mask'],
        angle=uniform(4, [size], -radians, radians + 1e-9),
        scale=uniform(5, [size], 1.0 - augment.scale, 1.0 + augment.scale + 1e-9),
        shift=uniform(6, [size, 2], -augment.translate, augment.translate + 1e-9),
      ),
    )
  if augment.jitter_std > 0:
    noise = tf.random.stateless_normal(
      tf.shape(batch['landmarks']), seeds[7], stddev=augment.jitter_std
    )
    batch = dict(batch, landmarks=batch['landmarks'] + noise * batch['frame_mask'][..., None, None])
  return batch


def mix_batch(batch: dict, seeds, alpha: float) -> dict:
  """Mixup with Beta(alpha, alpha) weights (alpha 0: none); outside XLA, which lacks gamma draws.

  Last, so that each clip is augmented on its own before two are mixed. Train
  batches always carry mix_label / mix_weight (weight 1: no mixing).
  """
  size = tf.shape(batch['length'])[0]
  uniform = lambda i, shape, lo, hi: tf.random.stateless_uniform(shape, seeds[i], lo, hi)
  if alpha > 0:
    partner = tf.argsort(uniform(11, [size], 0.0, 1.0))
    draws = tf.random.stateless_gamma([2, size], seeds[12], alpha=alpha)
    weight = draws[0] / (draws[0] + draws[1])  # Beta(alpha, alpha)
    batch = mix_clips(batch, partner, tf.maximum(weight, 1.0 - weight))
  else:
    batch = dict(batch, mix_label=batch['label'], mix_weight=tf.ones([size], tf.float32))
  return batch


def shard_for_devices(batch: dict, num_devices: int) -> dict:
  """Reshapes every [B, ...] tensor to [devices, B / devices, ...] for pmap."""
  return {
    key: tf.reshape(x, tf.concat([[num_devices, -1], tf.shape(x)[1:]], 0))
    for key, x in batch.items()
  }


def pad_batch(batch: dict, batch_size: int) -> dict:
  """Pads a short last batch with zero examples (example_mask 0) up to batch_size."""
  missing = batch_size - tf.shape(batch['label'])[0]
  return {
    key: tf.pad(x, [[0, missing]] + [[0, 0]] * (len(x.shape) - 1)) for key, x in batch.items()
  }


def steps_per_epoch(meta, batch_size: int, host_count: int = 1) -> int:
  """Full training batches in one pass over the train split (the same count on every host)."""
  examples = int(meta.split_sizes.get('train', 0))
  if examples < batch_size:
    raise ValueError(f'train split has {examples} examples, fewer than batch_size={batch_size}')
  if batch_size % host_count:
    raise ValueError(f'batch_size={batch_size} is not divisible by {host_count} hosts')
  return (examples // host_count) // (batch_size // host_count)


def load_examples(data_dir: str, split: str, cache: bool):
  """Parsed examples of a split, optionally held in memory after the first pass."""
  examples = shards.read_split(data_dir, split).map(parse_example, tf.data.AUTOTUNE)
  return examples.cache() if cache else examples


def host_files(
  data_dir: str, split: str, host_index: int, host_count: int, min_examples: int
) -> tuple[list[str], bool]:
  """(shard files this host reads, whether it must still keep only every host_count-th record).

  Hosts take whole files round-robin when every host's files then hold at
  least min_examples records; otherwise (fewer files than hosts, uneven
  shards) each reads all files and keeps its 1/host_count of the records.
  """
  import tensorflow_datasets as tfds

  info = tfds.builder_from_directory(data_dir).info.splits[split]
  paths = [os.fspath(path) for path in info.filepaths]
  lengths = list(info.shard_lengths)
  if host_count == 1:
    return paths, False
  if min(sum(lengths[host::host_count]) for host in range(host_count)) >= min_examples:
    return paths[host_index::host_count], False
  return paths, True


def decode_batch(records, max_frames: int) -> dict:
  """Serialised examples [B] -> the batch dict of parse_example, stacked (one parse per batch).

  Shards store arrays as raw little-endian bytes (tfds's BYTES encoding of
  schema.features); shapes and dtypes come from that feature spec.
  """
  spec = schema.features(max_frames, ['unused'])
  arrays = ('landmarks', 'au', 'geometry', 'frame_mask', 'face_mask', 'speech_mask')
  parsed = tf.io.parse_example(
    records,
    {
      **{key: tf.io.FixedLenFeature([], tf.string) for key in arrays},
      'length': tf.io.FixedLenFeature([], tf.int64),
      'label': tf.io.FixedLenFeature([], tf.int64),
    },
  )
  size = tf.shape(records)[0]
  batch = {
    key: tf.cast(
      tf.reshape(
        tf.io.decode_raw(parsed[key], spec[key].tf_dtype), tf.concat([[size], spec[key].shape], 0)
      ),
      tf.float32,
    )
    for key in arrays
  }
  batch['length'] = tf.cast(parsed['length'], tf.int32)
  batch['label'] = tf.cast(parsed['label'], tf.int32)
  batch['example_mask'] = tf.ones([size], tf.float32)
  return batch


def streamed_batches(
  config, meta, epoch, host_batch: int, per_epoch: int, host_index: int, host_count: int
):
  """One epoch's batches of serialised records [host_batch], read from the shards (no cache)."""
  files, keep_every = host_files(
    config.data_dir, 'train', host_index, host_count, per_epoch * host_batch
  )
  seed = tf.constant(config.seed, tf.int64) * 1_000_003 + epoch
  order = tf.data.Dataset.from_tensor_slices(files).shuffle(
    len(files), seed=seed, reshuffle_each_iteration=False
  )
  records = order.interleave(
    tf.data.TFRecordDataset,
    cycle_length=min(config.input.cycle_length, len(files)),
    block_length=1,
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=True,
  )
  if keep_every:
    records = records.shard(host_count, host_index)
  records = records.shuffle(config.input.shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
  return records.batch(host_batch, drop_remainder=True).take(per_epoch)


def host_slice(batch: dict, host_index: int, host_count: int) -> dict:
  """Rows [i * B / n, (i + 1) * B / n) of every [B, ...] tensor: host i's share of a global batch."""
  if host_count == 1:
    return batch
  size = tf.shape(batch['label'])[0] // host_count
  return {key: x[host_index * size : (host_index + 1) * size] for key, x in batch.items()}


def warn_if_sorted(config, meta) -> None:
  """Warns when a shuffle buffer smaller than the train split reads shards sorted by word.

  Extraction writes records mixed (shards.record_order) and says so in the
  metadata; data extracted before it did are sorted by word, and a buffer that
  holds a part of the split then fills batches with a few neighbouring words.
  """
  examples = int(meta.split_sizes.get('train', 0))
  if config.input.shuffle_buffer >= examples:
    return
  if meta.extraction.get('record_order') == shards.RECORD_ORDER:
    return
  logging.warning(
    '%s: shuffle_buffer=%d holds %.0f%% of the %d training clips, and the metadata does not '
    'say the shards are in mixed order (extracted before shards.record_order): if they are '
    'sorted by word, batches hold only neighbouring words. Run `python -m extraction` again '
    '(it rewrites the shards from its clip cache) or raise config.input.shuffle_buffer.',
    config.data_dir,
    config.input.shuffle_buffer,
    100 * config.input.shuffle_buffer / max(examples, 1),
    examples,
  )


def train_dataset(
  config, meta, start_step: int, num_devices: int, host_index: int = 0, host_count: int = 1
):
  """Endless augmented training batches from global step start_step on (deterministic).

  Epoch e is the train split shuffled with seed (config.seed, e) and cut into
  full batches; batch i of the stream is global step i, whose augmentation is
  seeded by (config.seed, i). Resuming at a step skips whole batches of the
  epoch it falls in, before any augmentation work. With several hosts each
  yields its share of every global batch, the same number of batches per epoch
  on every host (cached: a slice of the same global batch; streamed: batches of
  its own files; the module docstring says which equals what).
  """
  host_batch = config.batch_size // host_count
  per_epoch = steps_per_epoch(meta, config.batch_size, host_count)
  if host_batch % num_devices:
    raise ValueError(
      f'batch_size={config.batch_size} is not divisible by {host_count * num_devices} devices'
    )
  first_epoch, skip = divmod(start_step, per_epoch)
  seed = tf.constant(config.seed, tf.int64)
  warn_if_sorted(config, meta)
  if config.input.cache:
    examples = load_examples(config.data_dir, 'train', cache=True)  # the whole split, every host

  def epoch_batches(epoch):
    if not config.input.cache:
      batches = streamed_batches(config, meta, epoch, host_batch, per_epoch, host_index, host_count)
      return batches.enumerate(start=epoch * per_epoch)  # (global step, records)
    shuffled = examples.shuffle(
      config.input.shuffle_buffer, seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False
    )
    batches = shuffled.batch(config.batch_size, drop_remainder=True).take(per_epoch)
    return batches.enumerate(start=epoch * per_epoch)  # (global step, global batch)

  ds = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch_batches).skip(skip)
  if not config.input.cache:
    # Decoded after the skip: a resumed run does not decode the batches it passes over.
    ds = ds.map(
      lambda step, records: (step, decode_batch(records, meta.max_frames)), tf.data.AUTOTUNE
    )
  mirror_perm = tf.constant(meta.mirror_perm, tf.int32)

  def augment_seed(step):
    if config.input.cache:
      return tf.stack([seed, step])  # the global batch's, the same on every host
    return tf.stack([seed, step * host_count + host_index])  # this host's own batch

  ds = ds.map(
    lambda step, batch: augment_batch(
      batch,
      augment_seed(step),
      config.augment,
      mirror_perm,
      config.input.jit_augment,
    ),
    tf.data.AUTOTUNE,
  )
  if config.input.cache:
    ds = ds.map(lambda batch: host_slice(batch, host_index, host_count), tf.data.AUTOTUNE)
  ds = ds.map(lambda batch: shard_for_devices(batch, num_devices), tf.data.AUTOTUNE)
  options = tf.data.Options()
  if config.input.threads:
    options.threading.private_threadpool_size = config.input.threads
  return ds.prefetch(config.input.prefetch).with_options(options)


class ShardReadError(ValueError):
  """A data set whose shards cannot be read as its metadata describes."""


def checked_numpy_iterator(dataset, data_dir: str, split: str) -> Iterator[dict]:
  """Numpy batches of a dataset; a shard read failure becomes one ShardReadError naming the file."""
  try:
    yield from dataset.as_numpy_iterator()
  except tf.errors.OpError as e:
    bad = shards.find_bad_shard(data_dir, split)
    raise ShardReadError(
      bad or f'{data_dir} ({split} split): {e.message.splitlines()[0]}'
    ) from None


class CheckedDataset:
  """A tf.data.Dataset of a data set's split whose iteration names a bad shard on failure."""

  def __init__(self, dataset, data_dir: str, split: str):
    self.dataset, self.data_dir, self.split = dataset, data_dir, split

  def as_numpy_iterator(self) -> Iterator[dict]:
    return checked_numpy_iterator(self.dataset, self.data_dir, self.split)


def train_iterator(
  config, meta, start_step: int, num_devices: int, host_index: int = 0, host_count: int = 1
) -> Iterator[dict]:
  """Numpy batches of train_dataset."""
  return checked_numpy_iterator(
    train_dataset(config, meta, start_step, num_devices, host_index, host_count),
    config.data_dir,
    'train',
  )


def eval_dataset(config, split: str, num_devices: int, host_index: int = 0, host_count: int = 1):
  """Every example of a split once, in file order; the last batch padded (example_mask 0).

  With several hosts each keeps its slice of every global batch of
  config.eval_batch_size (all hosts yield the same number of batches);
  evaluation.evaluate_model puts the hosts' outputs back together.
  """
  if config.eval_batch_size % (host_count * num_devices):
    raise ValueError(
      f'eval_batch_size={config.eval_batch_size} is not divisible by '
      f'{host_count * num_devices} devices'
    )
  ds = load_examples(config.data_dir, split, config.input.cache)
  ds = ds.batch(config.eval_batch_size, drop_remainder=False)
  ds = ds.map(lambda batch: pad_batch(batch, config.eval_batch_size), tf.data.AUTOTUNE)
  ds = ds.map(lambda batch: host_slice(batch, host_index, host_count), tf.data.AUTOTUNE)
  ds = ds.map(lambda batch: shard_for_devices(batch, num_devices), tf.data.AUTOTUNE)
  return CheckedDataset(ds.prefetch(config.input.prefetch), config.data_dir, split)
