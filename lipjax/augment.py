"""Training augmentation in JAX: one named function per augmentation, each with its own random stream.

Runs on the devices, inside the compiled training step (train.train_step), on
the raw batch the input pipeline delivers. Each clip's randomness is a function
of (config.seed, step, the clip's row in the global batch, the augmentation's
name): `stream(key, name)`. So the augmented global batch at a step is the same
on one device or many, in one process or several, and a resumed run draws what
an uninterrupted one drew; switching one augmentation on or off leaves the draws
of the others as they were.

A clip is the dict of one example (input_pipeline.MODEL_DTYPES): `landmarks`
[T, N, 3] in [0, 1], `au` [T, A], `geometry` [T, G], `frame_mask`, `face_mask`,
`speech_mask` [T] (float 0/1), `length`, `label` (int32 scalars). Per-clip
augmentations see one clip (vmapped over the batch); mixing ones see the whole
global batch (gathered over devices) to draw a partner from.
"""

import zlib

import jax
import jax.numpy as jnp
import numpy as np

FRAME_ARRAYS = ('landmarks', 'au', 'geometry')  # interpolated when time is resampled
FRAME_MASKS = ('face_mask', 'speech_mask')  # nearest frame when time is resampled


def stream(key, name: str):
  """The random stream called `name` under key: independent of every other name's."""
  return jax.random.fold_in(key, zlib.crc32(name.encode('utf-8')))


def _uniform(key, name: str, low, high, shape=()):
  return jax.random.uniform(stream(key, name), shape, jnp.float32, low, high)


def _frames(clip) -> jnp.ndarray:
  return jnp.arange(clip['frame_mask'].shape[0])  # [T]


def _masked_landmarks(clip, landmarks):
  """landmarks [T, N, 3] with padding frames back at zero."""
  return landmarks * clip['frame_mask'][:, None, None]


def resample(clip, position, frame_mask):
  """Reads the clip at source positions [T] (fractional frames) for its new frame_mask [T].

  Landmarks and AU/geometry are interpolated linearly, masks take the nearest
  frame; positions past the clip's last real frame read that frame.
  """
  last = jnp.maximum(clip['length'] - 1, 0)
  position = jnp.clip(position, 0.0, last.astype(jnp.float32))
  lower = jnp.floor(position).astype(jnp.int32)
  upper = jnp.minimum(lower + 1, last)
  weight = position - lower.astype(jnp.float32)  # [T]
  nearest = jnp.round(position).astype(jnp.int32)
  out = dict(clip)
  for key in FRAME_ARRAYS:
    x = clip[key]
    w = weight.reshape((-1,) + (1,) * (x.ndim - 1))
    mask = frame_mask.reshape(w.shape)
    out[key] = (x[lower] * (1.0 - w) + x[upper] * w) * mask
  for key in FRAME_MASKS:
    out[key] = clip[key][nearest] * frame_mask
  out['frame_mask'] = frame_mask
  out['length'] = jnp.sum(frame_mask).astype(jnp.int32)
  return out


def shift_time(clip, shift):
  """Moves the clip's frames `shift` steps later (earlier if negative) within its real frames.

  The first and last real frames are held where the clip moves away from an end;
  masks move with the frames, padding stays padding.
  """
  t, last = _frames(clip), clip['length'] - 1
  source = jnp.where(t <= last, jnp.clip(t - shift, 0, jnp.maximum(last, 0)), t)
  out = dict(clip)
  for name in FRAME_ARRAYS + FRAME_MASKS:
    out[name] = clip[name][source]
  return out


def time_shift(clip, key, max_shift: int):
  """Shifts the clip by up to max_shift frames: where the word sits then identifies no clip."""
  return shift_time(
    clip, jax.random.randint(stream(key, 'time_shift'), (), -max_shift, max_shift + 1)
  )


def warp_time(clip, log_slopes):
  """Stretches and squeezes parts of the clip: a monotone warp of its time, length kept.

  log_slopes [K] cut the real frames into K equal parts of the output and give
  each part's playback rate (relative to the others) as exp(log_slope); the ends
  stay fixed.
  """
  parts = log_slopes.shape[0]
  slopes = jnp.exp(log_slopes)
  ends = jnp.cumsum(slopes) / jnp.sum(slopes)  # [K]
  starts = jnp.concatenate([jnp.zeros(1), ends[:-1]])
  last = jnp.maximum(clip['length'] - 1, 1).astype(jnp.float32)
  u = _frames(clip).astype(jnp.float32) / last * parts  # [T] in parts
  part = jnp.clip(jnp.floor(u).astype(jnp.int32), 0, parts - 1)
  warped = starts[part] + (u - part) * (ends - starts)[part]  # [T] in [0, 1]
  return resample(clip, warped * last, clip['frame_mask'])


def time_warp(clip, key, std: float, parts: int):
  """Warps the clip's time with log-normal part rates (std): a uniform speed change keeps the
  ratios of sound durations within a word, which identify a single clip; this changes them.
  """
  return warp_time(clip, std * jax.random.normal(stream(key, 'time_warp'), (parts,)))


def change_speed(clip, rate):
  """Resamples the clip at `rate` (> 1: faster, fewer frames) by linear interpolation."""
  steps = clip['frame_mask'].shape[0]
  t = _frames(clip).astype(jnp.float32)
  new_length = jnp.clip(jnp.round(clip['length'] / rate), 1.0, float(steps))
  frame_mask = (t < new_length).astype(jnp.float32)
  return resample(clip, t * rate, frame_mask)


def speed(clip, key, amount: float):
  """Plays the clip at a rate in [1 - amount, 1 + amount]."""
  return change_speed(clip, _uniform(key, 'speed', 1.0 - amount, 1.0 + amount))


def freeze_frames(clip, start, width):
  """Holds frames [start, start + width) at the frame before them and flags them in face_mask.

  That is what extraction does where FaceMesh loses the face.
  """
  t = _frames(clip)
  inside = (t >= start) & (t < start + width) & (t < clip['length'])
  source = jnp.where(inside, jnp.maximum(start - 1, 0), t)
  out = dict(clip)
  for name in FRAME_ARRAYS:
    out[name] = clip[name][source]
  out['face_mask'] = clip['face_mask'] * (1.0 - inside)
  return out


def time_mask(clip, key, max_width: int):
  """Freezes up to max_width frames at a random place: the model learns to bridge lost faces."""
  width = jax.random.randint(stream(key, 'time_mask_width'), (), 0, max_width + 1)
  room = jnp.maximum(clip['length'] - width, 0) + 1
  start = jnp.floor(_uniform(key, 'time_mask_start', 0.0, 1.0) * room).astype(jnp.int32)
  return freeze_frames(clip, start, width)


def flip_landmarks(landmarks, frame_mask, mirror_perm):
  """Horizontal flip: node k takes node mirror_perm[k]'s point with x -> 1 - x.  # [..., T, N, 3]

  Padding frames stay zero. Flipping twice is the identity (mirror_perm is an involution).
  """
  mirrored = jnp.take(landmarks, jnp.asarray(mirror_perm), axis=-2)
  mirrored = jnp.concatenate([1.0 - mirrored[..., :1], mirrored[..., 1:]], axis=-1)
  return mirrored * frame_mask[..., None, None]


def flip(clip, key, mirror_perm):
  """Flips the clip horizontally with probability 1/2 (landmarks only).

  AU and geometry stay as they are: most are left-right symmetric measures, and
  the asymmetric ones (symmetry, corner_angle) are kept unflipped by design.
  """
  flipped = flip_landmarks(clip['landmarks'], clip['frame_mask'], mirror_perm)
  do_flip = _uniform(key, 'flip', 0.0, 1.0) < 0.5
  return dict(clip, landmarks=jnp.where(do_flip, flipped, clip['landmarks']))


def turn_head_landmarks(landmarks, frame_mask, yaw, pitch):
  """Turns 3-D landmarks [T, N, 3] about the face centre by yaw (vertical axis), then pitch."""
  x, y, z = (landmarks[..., i] - 0.5 for i in range(3))
  x, z = jnp.cos(yaw) * x + jnp.sin(yaw) * z, -jnp.sin(yaw) * x + jnp.cos(yaw) * z
  y, z = jnp.cos(pitch) * y - jnp.sin(pitch) * z, jnp.sin(pitch) * y + jnp.cos(pitch) * z
  return (jnp.stack([x, y, z], axis=-1) + 0.5) * frame_mask[..., None, None]


def turn_head(clip, key, yaw_degrees: float, pitch_degrees: float):
  """A 3-D head turn (FaceMesh's z): held-out people face the camera at other angles.

  The per-frame face normalisation removes roll only, so yaw and pitch stay in the data.
  """
  yaw = np.deg2rad(yaw_degrees) * _uniform(key, 'yaw', -1.0, 1.0)
  pitch = np.deg2rad(pitch_degrees) * _uniform(key, 'pitch', -1.0, 1.0)
  return dict(
    clip, landmarks=turn_head_landmarks(clip['landmarks'], clip['frame_mask'], yaw, pitch)
  )


def affine_landmarks(landmarks, frame_mask, angle, scale, shift):
  """Rotates xy by angle and scales xyz by scale about 0.5, then shifts xy by shift [2]."""
  x, y, z = (landmarks[..., i] - 0.5 for i in range(3))
  moved = jnp.stack(
    [
      scale * (jnp.cos(angle) * x - jnp.sin(angle) * y) + 0.5 + shift[0],
      scale * (jnp.sin(angle) * x + jnp.cos(angle) * y) + 0.5 + shift[1],
      scale * z + 0.5,
    ],
    axis=-1,
  )
  return moved * frame_mask[..., None, None]


def affine(clip, key, rotate_degrees: float, scale: float, translate: float):
  """An in-plane rotation, an overall scale and a shift of the whole clip."""
  return dict(
    clip,
    landmarks=affine_landmarks(
      clip['landmarks'],
      clip['frame_mask'],
      angle=np.deg2rad(rotate_degrees) * _uniform(key, 'rotate', -1.0, 1.0),
      scale=1.0 + scale * _uniform(key, 'scale', -1.0, 1.0),
      shift=translate * _uniform(key, 'translate', -1.0, 1.0, (2,)),
    ),
  )


def jitter(clip, key, std: float):
  """Independent Gaussian noise on every coordinate of every real frame (landmark detection noise)."""
  noise = std * jax.random.normal(stream(key, 'jitter'), clip['landmarks'].shape)
  return dict(clip, landmarks=clip['landmarks'] + _masked_landmarks(clip, noise))


def mix_clips(clip, partner, weight):
  """Mixup of two clips: weight of clip plus 1 - weight of partner, on the frames real in both.

  Elsewhere the clip keeps its own frames. The speech mask is the union of both
  clips' speech; `mix_label` / `mix_weight` tell the loss to aim at the same
  mixture of the two labels. `label` stays the clip's own (weight >= 0.5).
  """
  both = clip['frame_mask'] * partner['frame_mask']  # [T]
  out = dict(clip)
  for name in FRAME_ARRAYS:
    x = clip[name]
    share = (both * (1.0 - weight)).reshape((-1,) + (1,) * (x.ndim - 1))
    out[name] = x + share * (partner[name] - x)
  out['speech_mask'] = jnp.maximum(clip['speech_mask'], partner['speech_mask'] * clip['frame_mask'])
  out['face_mask'] = clip['face_mask'] * jnp.where(both > 0, partner['face_mask'], 1.0)
  out['mix_label'] = partner['label']
  out['mix_weight'] = weight
  return out


def augment_clip(clip, key, augment, mirror_perm):
  """Every per-clip augmentation switched on in config.augment, in a fixed order."""
  if augment.time_shift > 0:
    clip = time_shift(clip, key, augment.time_shift)
  if augment.time_warp > 0:
    clip = time_warp(clip, key, augment.time_warp, augment.time_warp_parts)
  if augment.speed > 0:
    clip = speed(clip, key, augment.speed)
  if augment.time_mask_max > 0:
    clip = time_mask(clip, key, augment.time_mask_max)
  if augment.flip:
    clip = flip(clip, key, mirror_perm)
  if augment.yaw_degrees > 0 or augment.pitch_degrees > 0:
    clip = turn_head(clip, key, augment.yaw_degrees, augment.pitch_degrees)
  if augment.rotate_degrees > 0 or augment.scale > 0 or augment.translate > 0:
    clip = affine(clip, key, augment.rotate_degrees, augment.scale, augment.translate)
  if augment.jitter_std > 0:
    clip = jitter(clip, key, augment.jitter_std)
  return clip


def mixup(clip, key, global_batch, step_key, alpha: float):
  """Mixes the clip with a partner from the global batch, weight max(w, 1 - w), w ~ Beta(alpha, alpha).

  Partners are a permutation of the global batch drawn once per step (step_key),
  so the pairing does not depend on how the batch is split over devices.
  """
  size = global_batch['label'].shape[0]
  partners = jax.random.permutation(stream(step_key, 'mixup_partner'), size)
  partner = jax.tree.map(lambda x: jnp.asarray(x)[partners[clip['row']]], global_batch)
  w = jax.random.beta(stream(key, 'mixup'), alpha, alpha)
  return mix_clips(clip, partner, jnp.maximum(w, 1.0 - w))


def augment_batch(batch, step_key, augment, mirror_perm, rows=None, gather=None):
  """The training augmentation of a batch [B, ...]; adds `mix_label` and `mix_weight`.

  step_key: this step's key (the run's augmentation key folded with the step).
  rows [B]: each example's row in the global batch (default 0 .. B - 1: the batch
  is the global one); gather: collects the per-clip augmented slices of every
  device into the global batch (parallel.all_gather; default: the batch itself).
  """
  size = batch['label'].shape[0]
  rows = jnp.arange(size) if rows is None else rows
  keys = jax.vmap(lambda row: jax.random.fold_in(step_key, row))(rows)  # one per clip
  batch = jax.vmap(lambda clip, key: augment_clip(clip, key, augment, mirror_perm))(batch, keys)
  batch = dict(batch, mix_label=batch['label'], mix_weight=jnp.ones(size, jnp.float32))
  if augment.mixup_alpha > 0:
    global_batch = batch if gather is None else gather(batch)
    batch = jax.vmap(
      lambda clip, key: mixup(clip, key, global_batch, step_key, augment.mixup_alpha)
    )(dict(batch, row=rows), keys)
    batch.pop('row')
  return batch
