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
`speech_mask` [T] (float 0/1), `length`, `label` (int32 scalars); a sentence's
clip has `tokens` [K] and `token_length` in place of `label`. Per-clip
augmentations see one clip (vmapped over the batch); mixing ones see the whole
global batch (gathered over devices) to draw a partner from.

Sentences (CTC): every token must stay in the clip, so on a clip with `tokens` the
time shift moves it only as far as the silence around its speech allows and the
speed change never plays its speech past the last frame nor leaves fewer frames
than CTC needs to spell its tokens; mixing two clips, which mixes their labels,
is refused (a sentence has no label to mix).
"""

import zlib

import jax
import jax.numpy as jnp
import numpy as np

FRAME_ARRAYS = ('landmarks', 'au', 'geometry')  # interpolated when time is resampled
FRAME_MASKS = ('face_mask', 'speech_mask')  # nearest frame when time is resampled
# Every switch of config.augment at its 'off' value (augment_clip and augment_batch read
# them); with all of them off a batch passes through unchanged. The other keys of
# config.augment (time_warp_parts, frame_block_size, frame_noise_std) shape a switch.
SWITCHES_OFF = {
  'flip': False,
  'yaw_degrees': 0.0,
  'pitch_degrees': 0.0,
  'rotate_degrees': 0.0,
  'scale': 0.0,
  'translate': 0.0,
  'jitter_std': 0.0,
  'time_mask_max': 0,
  'speed': 0.0,
  'time_shift': 0,
  'time_warp': 0.0,
  'mixup_alpha': 0.0,
  'axis_scale': 0.0,
  'shear': 0.0,
  'smooth_rotation_degrees': 0.0,
  'frame_block_mask': 0.0,
  'frame_noise': 0.0,
  'point_drop': 0.0,
  'motion_scale': 0.0,
  'time_cutmix': 0.0,
}


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


def speech_room(clip):
  """(frames before the first speech frame, frames after the last), within the real frames.

  A clip without speech frames has no room: all its frames may hold speech.
  """
  t = _frames(clip)
  speech = (clip['speech_mask'] > 0) & (t < clip['length'])  # [T]
  any_speech = jnp.any(speech)
  first = jnp.where(any_speech, jnp.argmax(speech), 0)
  last = jnp.where(any_speech, t.shape[0] - 1 - jnp.argmax(speech[::-1]), clip['length'] - 1)
  return first, clip['length'] - 1 - last


def time_shift(clip, key, max_shift: int, keep_speech: bool = False):
  """Shifts the clip by up to max_shift frames: where the word sits then identifies no clip.

  keep_speech: a shift pushes only silence out of the clip (speech_room), so a
  sentence keeps every token's frames.
  """
  shift = jax.random.randint(stream(key, 'time_shift'), (), -max_shift, max_shift + 1)
  if keep_speech:
    before, after = speech_room(clip)
    shift = jnp.clip(shift, -before, after)
  return shift_time(clip, shift)


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
  """Warps the clip's time with log-normal part rates of `std` (warp_time).

  A uniform speed change keeps the ratios of sound durations within a word,
  which identify a single clip; this changes them.
  """
  return warp_time(clip, std * jax.random.normal(stream(key, 'time_warp'), (parts,)))


def change_speed(clip, rate):
  """Resamples the clip at `rate` (> 1: faster, fewer frames) by linear interpolation."""
  steps = clip['frame_mask'].shape[0]
  t = _frames(clip).astype(jnp.float32)
  new_length = jnp.clip(jnp.round(clip['length'] / rate), 1.0, float(steps))
  frame_mask = (t < new_length).astype(jnp.float32)
  return resample(clip, t * rate, frame_mask)


def ctc_frames(tokens, token_length):
  """The fewest frames CTC needs to spell tokens [K]: one per token, a blank between repeats."""
  k = jnp.arange(tokens.shape[0] - 1)
  repeats = jnp.sum((tokens[1:] == tokens[:-1]) & (k + 1 < token_length))
  return token_length + repeats


def speed(clip, key, amount: float):
  """Plays the clip at a rate in [1 - amount, 1 + amount].

  A sentence's rate is kept where its speech still ends inside the clip (slower
  playback lengthens it past the last frame otherwise) and its frames still hold
  its tokens under CTC (faster playback leaves fewer frames).
  """
  rate = _uniform(key, 'speed', 1.0 - amount, 1.0 + amount)
  if 'tokens' in clip:
    steps = clip['frame_mask'].shape[0]
    _, after = speech_room(clip)
    last_speech = (clip['length'] - 1 - after).astype(jnp.float32)
    needed = jnp.maximum(ctc_frames(clip['tokens'], clip['token_length']), 1)
    slowest = last_speech / (steps - 1)
    fastest = clip['length'].astype(jnp.float32) / needed.astype(jnp.float32)
    rate = jnp.clip(rate, slowest, jnp.maximum(fastest, slowest))
  return change_speed(clip, rate)


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


def scale_axes(clip, factors):
  """Scales x, y and z about the face centre by factors [3]: another face's proportions."""
  return dict(clip, landmarks=_masked_landmarks(clip, (clip['landmarks'] - 0.5) * factors + 0.5))


def axis_scale(clip, key, amount: float):
  """Scales each axis by its own factor in [1 - amount, 1 + amount] (SyncVSR: 0.2)."""
  return scale_axes(clip, _uniform(key, 'axis_scale', 1.0 - amount, 1.0 + amount, (3,)))


def scale_motion(clip, factors):
  """Scales each node's movement away from its mean position over the clip, per axis by factors [3].

  The face's shape stays; how far the mouth moves along x (spread), y (opening,
  jaw) and z (protrusion) changes: another speaker's articulation.
  """
  real = clip['frame_mask'][:, None, None]  # [T, 1, 1]
  mean = jnp.sum(clip['landmarks'] * real, axis=0) / jnp.maximum(jnp.sum(real), 1.0)  # [N, 3]
  moved = mean + factors * (clip['landmarks'] - mean)
  return dict(clip, landmarks=_masked_landmarks(clip, moved))


def motion_scale(clip, key, amount: float):
  """Scales the movement along each axis by its own factor in [1 - amount, 1 + amount]."""
  return scale_motion(clip, _uniform(key, 'motion_scale', 1.0 - amount, 1.0 + amount, (3,)))


def shear_landmarks(clip, axis, coefficients):
  """Adds coefficients[j] x the `axis` coordinate to coordinate j (about the face centre).

  coefficients [3] with coefficients[axis] = 0: a shear along the other two axes.
  """
  centred = clip['landmarks'] - 0.5  # [T, N, 3]
  along = jnp.take(centred, axis, axis=-1)[..., None]  # [T, N, 1]
  return dict(clip, landmarks=_masked_landmarks(clip, centred + coefficients * along + 0.5))


def shear(clip, key, amount: float):
  """A shear along two axes by up to `amount` of the third (SyncVSR: 0.2)."""
  axis = jax.random.randint(stream(key, 'shear_axis'), (), 0, 3)
  coefficients = _uniform(key, 'shear', -amount, amount, (3,)) * (jnp.arange(3) != axis)
  return shear_landmarks(clip, axis, coefficients)


def rotation_matrices(rotvecs):
  """Rotation matrices [..., 3, 3] of rotation vectors [..., 3] (axis x angle; Rodrigues)."""
  angle = jnp.linalg.norm(rotvecs, axis=-1, keepdims=True)  # [..., 1]
  axis = rotvecs / jnp.maximum(angle, 1e-12)
  x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
  zero = jnp.zeros_like(x)
  cross = jnp.stack(
    [jnp.stack([zero, -z, y], -1), jnp.stack([z, zero, -x], -1), jnp.stack([-y, x, zero], -1)], -2
  )  # [..., 3, 3]
  sin, cos = jnp.sin(angle)[..., None], jnp.cos(angle)[..., None]
  return jnp.eye(3) + sin * cross + (1.0 - cos) * (cross @ cross)


def rotate_over_time(clip, start_rotvec, end_rotvec, start_centre, end_centre):
  """Rotates each frame about a centre, both moving linearly from start to end over the real frames.

  rotvecs [3] (radians) and centres [3] (in the landmarks' coordinates).
  """
  last = jnp.maximum(clip['length'] - 1, 1).astype(jnp.float32)
  u = jnp.clip(_frames(clip).astype(jnp.float32) / last, 0.0, 1.0)[:, None]  # [T, 1]
  rotations = rotation_matrices(start_rotvec + u * (end_rotvec - start_rotvec))  # [T, 3, 3]
  centres = (start_centre + u * (end_centre - start_centre))[:, None, :]  # [T, 1, 3]
  moved = jnp.einsum('tij,tnj->tni', rotations, clip['landmarks'] - centres) + centres
  return dict(clip, landmarks=_masked_landmarks(clip, moved))


SMOOTH_ROTATION_CENTRE_STD = 0.05  # of the face-normalised coordinates (a face spans ~0.8)


def smooth_rotation(clip, key, degrees: float):
  """A 3-D rotation of up to `degrees` per axis that changes smoothly over the clip (SyncVSR: 45).

  The rotation vector and the centre it turns about each move linearly from one
  random draw at the first frame to another at the last, as a head turns while speaking.
  """
  limit = np.deg2rad(degrees)
  rotvecs = _uniform(key, 'smooth_rotation', -limit, limit, (2, 3))
  centres = 0.5 + SMOOTH_ROTATION_CENTRE_STD * jax.random.normal(
    stream(key, 'smooth_rotation_centre'), (2, 3)
  )
  return rotate_over_time(clip, rotvecs[0], rotvecs[1], centres[0], centres[1])


def hold_frames(clip, masked):
  """Replaces the masked frames [T] by the last unmasked frame before them and flags face_mask.

  Masked frames at the start take the first unmasked frame; a clip with every
  frame masked is left as it is.
  """
  t = _frames(clip)
  kept = (~masked) & (t < clip['length'])
  previous = jax.lax.cummax(jnp.where(kept, t, -1))
  first = jnp.argmax(kept)
  source = jnp.where(previous >= 0, previous, first)
  source = jnp.where(jnp.any(kept) & (t < clip['length']), source, t)
  out = dict(clip)
  for name in FRAME_ARRAYS:
    out[name] = clip[name][source]
  out['face_mask'] = clip['face_mask'] * jnp.where(jnp.any(kept), 1.0 - masked, 1.0)
  return out


def frame_block_mask(clip, key, ratio: float, block: int):
  """Loses about `ratio` of the frames in blocks of `block`, held as extraction holds a lost face.

  Each real frame starts a block with probability ratio / block (SyncVSR: 0.1 in blocks of 3).
  """
  real = _frames(clip) < clip['length']
  starts = (_uniform(key, 'frame_block_mask', 0.0, 1.0, real.shape) < ratio / block) & real
  covered = jnp.convolve(starts.astype(jnp.float32), jnp.ones(block), mode='full')[: real.shape[0]]
  return hold_frames(clip, (covered > 0) & real)


def frame_noise(clip, key, ratio: float, std: float):
  """Replaces about `ratio` of the real frames by noise around the clip's mean point.

  Every point of a chosen frame is the clip's mean point plus Gaussian noise of
  `std` times the clip's spread (SyncVSR: 0.1 of the frames, std 0.3).
  """
  real = clip['frame_mask'] > 0
  chosen = (_uniform(key, 'frame_noise', 0.0, 1.0, real.shape) < ratio) & real  # [T]
  count = jnp.maximum(jnp.sum(clip['frame_mask']) * clip['landmarks'].shape[1], 1.0)
  mean = jnp.sum(clip['landmarks'], axis=(0, 1)) / count  # [3]
  spread = jnp.sqrt(jnp.sum(_masked_landmarks(clip, (clip['landmarks'] - mean) ** 2)) / (3 * count))
  noise = mean + std * spread * jax.random.normal(
    stream(key, 'frame_noise_values'), clip['landmarks'].shape
  )
  return dict(clip, landmarks=jnp.where(chosen[:, None, None], noise, clip['landmarks']))


def point_drop(clip, key, fraction: float):
  """Drops about `fraction` of the landmarks for the whole clip: they sit still at the face centre.

  A dropped node then carries neither shape nor motion (SyncVSR: 10%).
  """
  dropped = _uniform(key, 'point_drop', 0.0, 1.0, (clip['landmarks'].shape[1],)) < fraction  # [N]
  still = _masked_landmarks(clip, jnp.full_like(clip['landmarks'], 0.5))
  return dict(clip, landmarks=jnp.where(dropped[None, :, None], still, clip['landmarks']))


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


def paste_frames(clip, partner, start, width):
  """Time-axis CutMix: frames [start, start + width) of the clip become the partner's.

  Only frames real in both clips are pasted. `mix_label` / `mix_weight` name the
  partner and the share of the clip's pooled (speech) frames that are still its own.
  """
  t = _frames(clip)
  pasted = (
    (t >= start) & (t < start + width) & (clip['frame_mask'] > 0) & (partner['frame_mask'] > 0)
  )
  out = dict(clip)
  for name in FRAME_ARRAYS + FRAME_MASKS:
    inside = pasted.reshape((-1,) + (1,) * (clip[name].ndim - 1))
    out[name] = jnp.where(inside, partner[name], clip[name])
  speech = out['speech_mask'] * out['frame_mask']
  own = jnp.sum(speech * (1.0 - pasted)) / jnp.maximum(jnp.sum(speech), 1.0)
  out['mix_label'] = partner['label']
  out['mix_weight'] = jnp.where(jnp.sum(speech) > 0, own, 1.0)
  return out


def augment_clip(clip, key, augment, mirror_perm):
  """Every per-clip augmentation switched on in config.augment, in a fixed order."""
  if augment.time_shift > 0:
    clip = time_shift(clip, key, augment.time_shift, keep_speech='tokens' in clip)
  if augment.time_warp > 0:
    clip = time_warp(clip, key, augment.time_warp, augment.time_warp_parts)
  if augment.speed > 0:
    clip = speed(clip, key, augment.speed)
  if augment.time_mask_max > 0:
    clip = time_mask(clip, key, augment.time_mask_max)
  if augment.frame_block_mask > 0:
    clip = frame_block_mask(clip, key, augment.frame_block_mask, augment.frame_block_size)
  if augment.flip:
    clip = flip(clip, key, mirror_perm)
  if augment.yaw_degrees > 0 or augment.pitch_degrees > 0:
    clip = turn_head(clip, key, augment.yaw_degrees, augment.pitch_degrees)
  if augment.smooth_rotation_degrees > 0:
    clip = smooth_rotation(clip, key, augment.smooth_rotation_degrees)
  if augment.rotate_degrees > 0 or augment.scale > 0 or augment.translate > 0:
    clip = affine(clip, key, augment.rotate_degrees, augment.scale, augment.translate)
  if augment.motion_scale > 0:
    clip = motion_scale(clip, key, augment.motion_scale)
  if augment.axis_scale > 0:
    clip = axis_scale(clip, key, augment.axis_scale)
  if augment.shear > 0:
    clip = shear(clip, key, augment.shear)
  if augment.jitter_std > 0:
    clip = jitter(clip, key, augment.jitter_std)
  if augment.frame_noise > 0:
    clip = frame_noise(clip, key, augment.frame_noise, augment.frame_noise_std)
  if augment.point_drop > 0:
    clip = point_drop(clip, key, augment.point_drop)
  return clip


def mixup(clip, key, global_batch, step_key, alpha: float):
  """Mixes the clip with a partner from the global batch, weight max(w, 1 - w), w ~ Beta(alpha, alpha).

  Partners are a permutation of the global batch drawn once per step (step_key),
  so the pairing does not depend on how the batch is split over devices.
  """
  partner = _partner(clip, global_batch, step_key, 'mixup_partner')
  w = jax.random.beta(stream(key, 'mixup'), alpha, alpha)
  return mix_clips(clip, partner, jnp.maximum(w, 1.0 - w))


def _partner(clip, global_batch, step_key, name: str):
  """The clip's partner in the global batch: a permutation drawn once per step, by name."""
  size = global_batch['label'].shape[0]
  partners = jax.random.permutation(stream(step_key, name), size)
  return jax.tree.map(lambda x: jnp.asarray(x)[partners[clip['row']]], global_batch)


def time_cutmix(clip, key, global_batch, step_key, max_fraction: float):
  """Pastes a partner's block of up to max_fraction of the frames into the clip (time-axis CutMix)."""
  steps = clip['frame_mask'].shape[0]
  width = jax.random.randint(
    stream(key, 'time_cutmix_width'), (), 1, max(int(round(max_fraction * steps)), 1) + 1
  )
  start = jax.random.randint(stream(key, 'time_cutmix_start'), (), 0, steps - width + 1)
  return paste_frames(
    clip, _partner(clip, global_batch, step_key, 'time_cutmix_partner'), start, width
  )


def check_mixing(augment, sentences: bool) -> None:
  """Raises ValueError for mixing settings that cannot train: both at once, or any on sentences."""
  if augment.mixup_alpha > 0 and augment.time_cutmix > 0:
    raise ValueError(
      'config.augment: mixup_alpha and time_cutmix both mix two clips; switch one of them off'
    )
  if sentences:
    for name in ('mixup_alpha', 'time_cutmix'):
      if augment[name] > 0:
        raise ValueError(
          f'config.augment.{name}={augment[name]}: it mixes two clips and their labels, '
          f'which a sentence data set (CTC over tokens) cannot; set --config.augment.{name}=0'
        )


def augment_batch(batch, step_key, augment, mirror_perm, rows=None, gather=None):
  """The training augmentation of a batch [B, ...]; a word batch gains `mix_label` and `mix_weight`.

  step_key: this step's key (the run's augmentation key folded with the step).
  rows [B]: each example's row in the global batch (default 0 .. B - 1: the batch
  is the global one); gather: collects the per-clip augmented slices of every
  device into the global batch (parallel.all_gather; default: the batch itself).
  A sentence batch (with `tokens`) passes through the per-clip augmentations only.
  """
  sentences = 'tokens' in batch
  check_mixing(augment, sentences)
  size = batch['length'].shape[0]
  rows = jnp.arange(size) if rows is None else rows
  keys = jax.vmap(lambda row: jax.random.fold_in(step_key, row))(rows)  # one per clip
  batch = jax.vmap(lambda clip, key: augment_clip(clip, key, augment, mirror_perm))(batch, keys)
  if sentences:
    return batch
  batch = dict(batch, mix_label=batch['label'], mix_weight=jnp.ones(size, jnp.float32))
  if augment.mixup_alpha > 0 or augment.time_cutmix > 0:
    global_batch = batch if gather is None else gather(batch)
    if augment.mixup_alpha > 0:
      mix = lambda clip, key: mixup(clip, key, global_batch, step_key, augment.mixup_alpha)
    else:
      mix = lambda clip, key: time_cutmix(clip, key, global_batch, step_key, augment.time_cutmix)
    batch = jax.vmap(mix)(dict(batch, row=rows), keys)
    batch.pop('row')
  return batch
