"""Speaker normalisation inside the model: each clip's landmarks and features against a reference.

Pure functions of a batch (landmarks [B, T, N, 3] in [0, 1], globals [B, T, G] =
AU ++ geometry, frame_mask and speech_mask [B, T]); `normalize(..., mode)` is
what the model calls with config.model.centre. The modes:
- 'none': as extracted (face-normalised per frame by extraction).
- 'rest' / 'rest_scaled': movement away from the clip's mean rest pose (frames
  outside speech); '_scaled' also divides by the clip's RMS movement (one scale
  for the landmarks, one per feature). Need silence in the clip.
- 'window' / 'window_scaled': the same against the mean of every real frame of
  the window, which needs no silence (words cut from running speech).
- 'rest_scaled_axes' / 'window_scaled_axes': as '_scaled', with one RMS per axis
  (x, y, z) instead of one overall: a speaker who spreads the lips less (x) but
  opens the jaw more (y) than another moves alike after it.
- 'clip_standardised' (SyncVSR): landmarks minus the clip's mean point (over
  frames and nodes), divided by one overall standard deviation: the face's shape
  is kept, its position and size are not.
- 'procrustes': the similarity transform (rotation, scale, shift) that best maps
  the clip's mean shape onto a reference face (the train split's mean shape, in
  the data set's metadata), applied to every frame: head pose and face size go,
  the speaker's proportions and movement stay.
- 'procrustes_frames': each frame mapped onto the reference on its own, which
  also removes head motion within the clip.
Every mode but 'none' and the two 'rest' ones scales the AU/geometry globals as
'window_scaled' does. Outputs keep the input shapes, padding zero, and the
landmarks sit around 0.5 (node features subtract 0.5).
"""

import jax
import jax.numpy as jnp

CENTRE_MODES = (
  'none',
  'rest',
  'rest_scaled',
  'rest_scaled_axes',
  'window',
  'window_scaled',
  'window_scaled_axes',
  'clip_standardised',
  'procrustes',
  'procrustes_frames',
)


def masked_mean(values, mask):
  """Mean of values [B, T, D] over the steps where mask [B, T] is 1.  # [B, D]"""
  weights = mask[..., None].astype(values.dtype)
  return jnp.sum(values * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)


def rest_mean(values, frame_mask, speech_mask):
  """Per-clip mean of values [B, T, ...] over rest frames (real, outside speech).  # [B, 1, ...]

  Falls back to every real frame where a clip has fewer than two rest frames.
  """
  rest = frame_mask * (1 - speech_mask)  # [B, T]
  enough = jnp.sum(rest, axis=1, keepdims=True) >= 2  # [B, 1]
  b, t = values.shape[:2]
  mean = masked_mean(values.reshape(b, t, -1), jnp.where(enough, rest, frame_mask))  # [B, D]
  return mean.reshape((b, 1) + values.shape[2:])


def _real(landmarks, frame_mask):
  return frame_mask.astype(landmarks.dtype)  # [B, T]


def centre_on_rest(landmarks, globals_, frame_mask, speech_mask, scaled: str):
  """Landmarks and globals as movement away from the clip's mean over frames outside speech_mask.

  scaled 'overall' / 'axes': divided by the clip's RMS movement (one scale for the
  landmarks, or one per axis; one per feature), so a speaker who articulates less
  looks like one who articulates more; '' leaves the size of the movement.
  """
  real = _real(landmarks, frame_mask)
  moved = (landmarks - rest_mean(landmarks, frame_mask, speech_mask)) * real[..., None, None]
  shifted = scale_globals(globals_, frame_mask, speech_mask, bool(scaled))
  if scaled:
    count = jnp.maximum(jnp.sum(real, axis=1), 1.0)[:, None]  # [B, 1]
    squares = jnp.sum(moved**2, axis=(1, 2)) / (count * moved.shape[2])  # [B, 3]
    if scaled == 'overall':
      squares = jnp.broadcast_to(jnp.mean(squares, axis=-1, keepdims=True), squares.shape)
    moved = moved / (jnp.sqrt(squares)[:, None, None, :] + 1e-3)
  return moved + 0.5 * real[..., None, None], shifted


def scale_globals(globals_, frame_mask, speech_mask, scaled: bool):
  """Globals [B, T, G] minus their rest mean, divided by their RMS when scaled (per feature)."""
  real = _real(globals_, frame_mask)
  shifted = (globals_ - rest_mean(globals_, frame_mask, speech_mask)) * real[..., None]
  if not scaled:
    return shifted
  count = jnp.maximum(jnp.sum(real, axis=1), 1.0)  # [B]
  feature_rms = jnp.sqrt(jnp.sum(shifted**2, axis=1) / count[:, None])  # [B, G]
  return shifted / (feature_rms[:, None] + 1e-2)


def standardise_clip(landmarks, frame_mask):
  """Landmarks minus the clip's mean point, over one overall standard deviation (+ 0.5).  # [B, T, N, 3]"""
  real = _real(landmarks, frame_mask)[..., None, None]  # [B, T, 1, 1]
  count = jnp.maximum(jnp.sum(real, axis=(1, 2, 3)) * landmarks.shape[2], 1.0)  # [B]
  mean = jnp.sum(landmarks * real, axis=(1, 2)) / count[:, None]  # [B, 3]
  centred = (landmarks - mean[:, None, None, :]) * real
  std = jnp.sqrt(jnp.sum(centred**2, axis=(1, 2, 3)) / (3 * count))  # [B]
  return centred / (std[:, None, None, None] + 1e-4) + 0.5 * real


def similarity_transform(source, target):
  """(scale, rotation [3, 3], shift [3]) mapping points source [N, 3] best onto target [N, 3].

  Least squares over the points (Umeyama 1991): rotation from the SVD of the
  cross-covariance, reflections excluded.
  """
  source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
  x, y = source - source_mean, target - target_mean
  u, singular, vt = jnp.linalg.svd(y.T @ x / x.shape[0])
  sign = jnp.sign(jnp.linalg.det(u @ vt))
  correction = jnp.array([1.0, 1.0, 0.0]) + jnp.array([0.0, 0.0, 1.0]) * sign
  rotation = (u * correction) @ vt
  variance = jnp.sum(x**2) / x.shape[0]
  scale = jnp.sum(singular * correction) / jnp.maximum(variance, 1e-12)
  return scale, rotation, target_mean - scale * rotation @ source_mean


def _apply(points, scale, rotation, shift):
  return scale * points @ rotation.T + shift


def align_clip(landmarks, frame_mask, reference):
  """Every frame moved by the similarity transform of the clip's mean shape onto reference [N, 3]."""
  real = _real(landmarks, frame_mask)

  def one(clip, mask):  # [T, N, 3], [T]
    mean_shape = jnp.sum(clip * mask[:, None, None], axis=0) / jnp.maximum(jnp.sum(mask), 1.0)
    scale, rotation, shift = similarity_transform(mean_shape, reference)
    return _apply(clip, scale, rotation, shift) * mask[:, None, None]

  return jax.vmap(one)(landmarks, real)


def align_frames(landmarks, frame_mask, reference):
  """Each real frame moved by its own similarity transform onto reference [N, 3]."""
  real = _real(landmarks, frame_mask)

  def one(frame, mask):  # [N, 3], []
    scale, rotation, shift = similarity_transform(frame, reference)
    return _apply(frame, scale, rotation, shift) * mask

  return jax.vmap(jax.vmap(one))(landmarks, real)


def normalize(landmarks, globals_, frame_mask, speech_mask, mode: str, reference=None):
  """(landmarks, globals) normalised by mode (module docstring); reference [N, 3] for procrustes."""
  if mode not in CENTRE_MODES:
    raise ValueError(f'config model.centre={mode!r}; expected one of {CENTRE_MODES}')
  if mode == 'none':
    return landmarks, globals_
  scaled = 'axes' if mode.endswith('_axes') else 'overall' if mode.endswith('_scaled') else ''
  if mode.startswith('rest'):
    return centre_on_rest(landmarks, globals_, frame_mask, speech_mask, scaled)
  window = jnp.zeros_like(speech_mask)  # every real frame is a reference frame
  if mode.startswith('window'):
    return centre_on_rest(landmarks, globals_, frame_mask, window, scaled)
  globals_ = scale_globals(globals_, frame_mask, window, scaled=True)
  if mode == 'clip_standardised':
    return standardise_clip(landmarks, frame_mask), globals_
  if reference is None:
    raise ValueError(f'config model.centre={mode!r} needs a reference face (the metadata mean)')
  reference = jnp.asarray(reference, landmarks.dtype)
  if mode == 'procrustes':
    return align_clip(landmarks, frame_mask, reference), globals_
  return align_frames(landmarks, frame_mask, reference), globals_
