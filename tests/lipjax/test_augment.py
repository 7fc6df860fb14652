"""Augmentation in JAX: the math on hand-computed clips, the named streams, device invariance."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import small
from extraction import roi
from lipjax import augment


def test_flip_maps_node_k_to_its_mirror_with_x_mirrored():
  rng = np.random.default_rng(0)
  landmarks = rng.random((3, 88, 3)).astype(np.float32)  # [T, N, 3]
  frame_mask = np.array([1, 1, 0], np.float32)
  perm = roi.mirror_perm()
  flipped = np.asarray(augment.flip_landmarks(landmarks, frame_mask, perm))
  for k in range(88):
    np.testing.assert_allclose(flipped[:2, perm[k], 0], 1.0 - landmarks[:2, k, 0], rtol=1e-6)
    np.testing.assert_allclose(flipped[:2, perm[k], 1:], landmarks[:2, k, 1:], rtol=1e-6)
  assert np.all(flipped[2] == 0)  # padding stays zero


def test_flip_twice_is_identity():
  landmarks = np.random.default_rng(1).random((4, 88, 3)).astype(np.float32)
  frame_mask = np.ones(4, np.float32)
  perm = roi.mirror_perm()
  twice = augment.flip_landmarks(
    augment.flip_landmarks(landmarks, frame_mask, perm), frame_mask, perm
  )
  np.testing.assert_allclose(twice, landmarks, atol=1e-6)


def toy_batch():
  """Two clips, lengths 4 and 6 of T = 6, whose values are their frame index + 1."""
  t = np.arange(6, dtype=np.float32) + 1
  frame_mask = np.array([[1, 1, 1, 1, 0, 0], [1] * 6], np.float32)
  ramp = t[None] * frame_mask  # [2, 6]
  return {
    'landmarks': np.broadcast_to(ramp[..., None, None], (2, 6, 88, 3)).copy(),
    'au': np.broadcast_to(ramp[..., None], (2, 6, 18)).copy(),
    'geometry': np.broadcast_to(ramp[..., None], (2, 6, 10)).copy(),
    'frame_mask': frame_mask,
    'face_mask': frame_mask.copy(),
    'speech_mask': frame_mask.copy(),
    'length': np.array([4, 6], np.int32),
    'label': np.array([0, 1], np.int32),
    'example_mask': np.ones(2, np.float32),
  }


def per_clip(fn, batch, *args):
  """fn(clip, *per-clip args) over the clips of a batch, as numpy."""
  args = [a if isinstance(a, dict) else jnp.asarray(a) for a in args]
  return jax.tree.map(np.asarray, jax.vmap(fn)(batch, *args))


def test_change_speed_resamples_and_updates_masks():
  batch = toy_batch()
  same = per_clip(augment.change_speed, batch, [1.0, 1.0])
  np.testing.assert_allclose(same['landmarks'], batch['landmarks'])
  fast = per_clip(augment.change_speed, batch, [2.0, 2.0])
  np.testing.assert_array_equal(fast['length'], [2, 3])
  np.testing.assert_allclose(fast['au'][1, :, 0], [1, 3, 5, 0, 0, 0])
  np.testing.assert_array_equal(fast['frame_mask'][0], [1, 1, 0, 0, 0, 0])
  slow = per_clip(augment.change_speed, batch, [0.5, 0.5])
  np.testing.assert_array_equal(slow['length'], [6, 6])
  np.testing.assert_allclose(slow['au'][0, :, 0], [1, 1.5, 2, 2.5, 3, 3.5])


def test_warp_time_stretches_parts_keeping_ends_length_and_masks():
  batch = toy_batch()
  batch['speech_mask'] = np.array([[0, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 0]], np.float32)
  same = per_clip(augment.warp_time, batch, np.zeros((2, 4), np.float32))
  np.testing.assert_allclose(same['landmarks'], batch['landmarks'], atol=1e-6)
  np.testing.assert_array_equal(same['speech_mask'], batch['speech_mask'])
  # Two parts; the first plays 3x as fast as the second. Clip 0 (4 frames, 3 steps):
  # the output's first half (t = 0 .. 1.5) covers 3/4 of the clip, source times
  # 0, 1.5, 2.5, 3 -> values 1, 2.5, 3.5, 4. Clip 1 gets the mirror image.
  warped = per_clip(augment.warp_time, batch, np.log([[3.0, 1.0], [1.0, 3.0]]).astype(np.float32))
  np.testing.assert_allclose(warped['au'][0, :, 0], [1, 2.5, 3.5, 4, 0, 0], rtol=1e-6)
  np.testing.assert_allclose(warped['au'][1, :, 0], [1, 1.5, 2, 3, 4.5, 6], rtol=1e-6)
  np.testing.assert_array_equal(warped['length'], [4, 6])
  np.testing.assert_array_equal(warped['frame_mask'], batch['frame_mask'])
  # Masks take the nearest source frame: clip 1 reads frames 0, 0/1, 1, 2, 3/4, 5.
  np.testing.assert_array_equal(warped['speech_mask'][1], [0, 0, 0, 1, 1, 0])


def test_freeze_frames_holds_the_previous_frame_and_flags_face_mask():
  masked = per_clip(augment.freeze_frames, toy_batch(), [1, 0], [2, 0])
  np.testing.assert_allclose(masked['au'][0, :, 0], [1, 1, 1, 4, 0, 0])
  np.testing.assert_array_equal(masked['face_mask'][0], [1, 0, 0, 1, 0, 0])
  np.testing.assert_allclose(masked['au'][1], toy_batch()['au'][1])


def test_shift_time_moves_frames_and_masks_holding_the_end_frames():
  batch = toy_batch()
  batch['speech_mask'] = np.array([[0, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 0]], np.float32)
  shifted = per_clip(augment.shift_time, batch, [1, -2])
  np.testing.assert_allclose(shifted['au'][0, :, 0], [1, 1, 2, 3, 0, 0])  # padding stays padding
  np.testing.assert_allclose(shifted['landmarks'][1, :, 0, 0], [3, 4, 5, 6, 6, 6])
  np.testing.assert_array_equal(shifted['speech_mask'], [[0, 0, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]])
  np.testing.assert_array_equal(shifted['frame_mask'], batch['frame_mask'])
  same = per_clip(augment.shift_time, batch, [0, 0])
  np.testing.assert_allclose(same['geometry'], batch['geometry'])


def test_mix_clips_mixes_real_frames_unions_speech_and_names_both_labels():
  batch = toy_batch()
  batch['au'] = batch['au'] * np.array([1.0, 10.0], np.float32)[:, None, None]
  batch['speech_mask'] = np.array([[0, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0]], np.float32)
  partners = jax.tree.map(lambda x: x[::-1], batch)
  mixed = per_clip(augment.mix_clips, batch, partners, [0.75, 1.0])
  # Clip 0 is 3/4 itself + 1/4 clip 1 on its 4 real frames; its padding stays zero.
  np.testing.assert_allclose(mixed['au'][0, :, 0], [3.25, 6.5, 9.75, 13, 0, 0], rtol=1e-6)
  np.testing.assert_allclose(mixed['au'][1], batch['au'][1])  # weight 1: unchanged
  np.testing.assert_array_equal(mixed['speech_mask'], [[0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0]])
  np.testing.assert_array_equal(mixed['mix_label'], [1, 0])
  np.testing.assert_array_equal(mixed['label'], batch['label'])
  np.testing.assert_allclose(mixed['mix_weight'], [0.75, 1.0])


def test_affine_keeps_padding_zero_and_identity_parameters_change_nothing():
  batch = toy_batch()
  landmarks, mask = batch['landmarks'][0] / 10.0, batch['frame_mask'][0]
  same = augment.affine_landmarks(landmarks, mask, 0.0, 1.0, jnp.zeros(2))
  np.testing.assert_allclose(same, landmarks, atol=1e-6)
  moved = np.asarray(augment.affine_landmarks(landmarks, mask, 0.1, 1.1, jnp.full(2, 0.02)))
  assert np.all(moved[4:] == 0) and not np.allclose(moved, landmarks)


def test_turn_head_is_a_rotation_about_the_face_centre():
  rng = np.random.default_rng(3)
  landmarks = rng.uniform(0.2, 0.8, (5, 7, 3)).astype(np.float32)
  mask = np.ones(5, np.float32)
  turned = np.asarray(augment.turn_head_landmarks(landmarks, mask, 0.4, 0.2))
  # Distances to the centre and between nodes are kept; the points did move.
  np.testing.assert_allclose(
    np.linalg.norm(turned - 0.5, axis=-1), np.linalg.norm(landmarks - 0.5, axis=-1), rtol=1e-5
  )
  np.testing.assert_allclose(
    np.linalg.norm(turned[:, 0] - turned[:, 1], axis=-1),
    np.linalg.norm(landmarks[:, 0] - landmarks[:, 1], axis=-1),
    rtol=1e-5,
  )
  assert np.abs(turned - landmarks).max() > 0.05
  # A pure yaw keeps heights; turning back undoes it.
  yawed = augment.turn_head_landmarks(landmarks, mask, 0.4, 0.0)
  np.testing.assert_allclose(np.asarray(yawed)[..., 1], landmarks[..., 1], atol=1e-6)
  back = augment.turn_head_landmarks(yawed, mask, -0.4, 0.0)
  np.testing.assert_allclose(back, landmarks, atol=1e-5)
  mask[3:] = 0  # padding stays zero
  assert not np.asarray(augment.turn_head_landmarks(landmarks, mask, 0.4, 0.2))[3:].any()


# small.py's augmentation with every switch off: a switch small.py has and
# augment.SWITCHES_OFF lacks fails the pass-through test below.
NO_AUGMENTATION = ml_collections.ConfigDict(
  dict(small.get_config().augment.to_dict(), **augment.SWITCHES_OFF)
)


def only(**switches):
  """An augment config with everything off but the given settings."""
  return ml_collections.ConfigDict(dict(NO_AUGMENTATION.to_dict(), **switches))


def random_batch(size=8, seed=0):
  """A batch of random clips, lengths 5-10 of T = 10, labels 0..size-1."""
  rng = np.random.default_rng(seed)
  lengths = rng.integers(5, 11, size).astype(np.int32)
  frame_mask = (np.arange(10)[None] < lengths[:, None]).astype(np.float32)
  speech = frame_mask * (rng.random((size, 10)) < 0.7)
  return {
    'landmarks': rng.uniform(0.3, 0.7, (size, 10, 88, 3)).astype(np.float32)
    * frame_mask[..., None, None],
    'au': rng.random((size, 10, 18)).astype(np.float32) * frame_mask[..., None],
    'geometry': rng.random((size, 10, 10)).astype(np.float32) * frame_mask[..., None],
    'frame_mask': frame_mask,
    'face_mask': frame_mask.copy(),
    'speech_mask': speech.astype(np.float32),
    'length': lengths,
    'label': np.arange(size, dtype=np.int32),
    'example_mask': np.ones(size, np.float32),
  }


def augmented(batch, config, step=0, rows=None, gather=None):
  """augment_batch compiled as train_step compiles it (eager vmaps cost seconds)."""
  key = jax.random.fold_in(jax.random.PRNGKey(0), step)
  perm = roi.mirror_perm()
  run = jax.jit(lambda b, k, r: augment.augment_batch(b, k, config, perm, rows=r, gather=gather))
  return jax.tree.map(np.asarray, run(batch, key, rows))


def test_switched_off_augmentation_returns_the_batch_with_unit_mix_weights():
  batch = random_batch()
  out = augmented(batch, NO_AUGMENTATION)
  for key, value in batch.items():
    np.testing.assert_array_equal(out[key], value, err_msg=key)
  np.testing.assert_array_equal(out['mix_label'], batch['label'])
  assert np.all(out['mix_weight'] == 1.0)


def test_flip_mirrors_about_half_the_clips_and_each_step_draws_its_own():
  batch = random_batch(size=32)
  perm = roi.mirror_perm()
  kinds = []
  for step in (0, 1):
    out = augmented(batch, only(flip=True), step=step)
    for i in range(32):
      mirrored = np.asarray(
        augment.flip_landmarks(batch['landmarks'][i], batch['frame_mask'][i], perm)
      )
      same = np.array_equal(out['landmarks'][i], batch['landmarks'][i])
      assert same != np.allclose(out['landmarks'][i], mirrored, atol=1e-6)
      kinds.append(not same)
  assert 20 <= sum(kinds) <= 44  # of 64, p = 0.5 each (fixed seed)
  assert kinds[:32] != kinds[32:]


def test_each_augmentation_draws_from_its_own_stream():
  # Switching jitter on leaves the flips and speeds drawn as they were.
  batch = random_batch(size=16)
  without = augmented(batch, only(flip=True, speed=0.3))
  with_jitter = augmented(batch, only(flip=True, speed=0.3, jitter_std=0.01))
  np.testing.assert_array_equal(without['length'], with_jitter['length'])
  # The same flips: the landmarks differ by the noise alone (a flip moves points ~0.2).
  difference = np.abs(without['landmarks'] - with_jitter['landmarks'])
  assert 0.0 < difference.max() < 0.06


def test_each_clip_draws_from_the_stream_named_after_the_augmentation_under_its_global_row():
  # The contract resumption, devices and ablations rely on, stated exactly for two of them.
  batch = random_batch(size=6)
  step_key = jax.random.fold_in(jax.random.PRNGKey(0), 5)
  out = augmented(batch, only(jitter_std=0.01), step=5)
  for row in range(6):
    key = augment.stream(jax.random.fold_in(step_key, row), 'jitter')
    noise = 0.01 * np.asarray(jax.random.normal(key, batch['landmarks'][row].shape))
    expected = batch['landmarks'][row] + noise * batch['frame_mask'][row][:, None, None]
    np.testing.assert_allclose(out['landmarks'][row], expected, rtol=1e-6, atol=1e-7)
  out = augmented(batch, only(speed=0.3), step=5)
  for row in range(6):
    key = augment.stream(jax.random.fold_in(step_key, row), 'speed')
    rate = float(jax.random.uniform(key, (), jnp.float32, 0.7, 1.3))
    assert out['length'][row] == np.clip(np.round(batch['length'][row] / rate), 1, 10)


def test_mixup_keeps_each_clips_own_label_the_majority_and_mixes_with_the_batch():
  batch = random_batch(size=16)
  out = augmented(batch, only(mixup_alpha=0.4))
  assert np.all((out['mix_weight'] >= 0.5) & (out['mix_weight'] <= 1.0))
  assert np.any(out['mix_weight'] < 0.9)
  np.testing.assert_array_equal(out['label'], batch['label'])
  for i, (partner, weight) in enumerate(zip(out['mix_label'], out['mix_weight'])):
    both = batch['frame_mask'][i] * batch['frame_mask'][partner]
    expected = weight * batch['au'][i] + (1 - weight) * batch['au'][partner]
    real = both > 0
    np.testing.assert_allclose(out['au'][i][real], expected[real], rtol=1e-5, atol=1e-6)


def test_a_batch_split_over_devices_is_augmented_as_the_whole():
  # Two halves with their global rows and a gather of both give the whole batch's result:
  # what train_step computes on two devices equals one device.
  batch = random_batch(size=8)
  config = only(
    flip=True, speed=0.2, time_shift=2, time_mask_max=2, jitter_std=0.01, mixup_alpha=0.4
  )
  check_split_over_devices(batch, config)
  config = only(
    axis_scale=0.2,
    shear=0.2,
    smooth_rotation_degrees=45.0,
    frame_block_mask=0.1,
    frame_noise=0.1,
    point_drop=0.1,
    time_cutmix=0.5,
  )
  check_split_over_devices(batch, config)


def check_split_over_devices(batch, config):
  """augment_batch of two halves with their global rows equals that of the whole batch."""
  whole = augmented(batch, config, step=3)
  halves = [jax.tree.map(lambda x, i=i: x[4 * i : 4 * (i + 1)], batch) for i in (0, 1)]

  def gather(_):  # the per-clip augmented global batch, as all_gather would deliver it
    key = jax.random.fold_in(jax.random.PRNGKey(0), 3)
    keys = jax.vmap(lambda row: jax.random.fold_in(key, row))(jnp.arange(8))
    clips = jax.vmap(lambda clip, k: augment.augment_clip(clip, k, config, roi.mirror_perm()))(
      batch, keys
    )
    return dict(clips, mix_label=clips['label'], mix_weight=jnp.ones(8))

  parts = [
    augmented(half, config, step=3, rows=jnp.arange(4) + 4 * i, gather=gather)
    for i, half in enumerate(halves)
  ]
  for key in whole:
    np.testing.assert_allclose(
      np.concatenate([p[key] for p in parts]), whole[key], rtol=1e-6, atol=1e-7, err_msg=key
    )


def test_scale_axes_and_shear_move_points_about_the_face_centre():
  batch = toy_batch()
  clip = jax.tree.map(lambda x: x[0], batch)
  clip['landmarks'] = clip['landmarks'] / 10.0  # values 0.1 .. 0.4 on real frames
  scaled = jax.tree.map(np.asarray, augment.scale_axes(clip, jnp.array([2.0, 1.0, 0.5])))
  x = clip['landmarks'][:4, 0]  # [4 real frames, 3]
  np.testing.assert_allclose(scaled['landmarks'][:4, 0, 0], (x[:, 0] - 0.5) * 2 + 0.5, rtol=1e-6)
  np.testing.assert_allclose(scaled['landmarks'][:4, 0, 1], x[:, 1], rtol=1e-6)
  np.testing.assert_allclose(scaled['landmarks'][:4, 0, 2], (x[:, 2] - 0.5) * 0.5 + 0.5, rtol=1e-6)
  assert not scaled['landmarks'][4:].any()  # padding stays zero
  sheared = augment.shear_landmarks(clip, 0, jnp.array([0.0, 0.5, -1.0]))
  sheared = np.asarray(sheared['landmarks'])[:4, 0]
  np.testing.assert_allclose(sheared[:, 0], x[:, 0], rtol=1e-6)
  np.testing.assert_allclose(sheared[:, 1], x[:, 1] + 0.5 * (x[:, 0] - 0.5), rtol=1e-6)
  np.testing.assert_allclose(sheared[:, 2], x[:, 2] - 1.0 * (x[:, 0] - 0.5), rtol=1e-6)


def test_rotation_matrices_are_rodrigues_rotations():
  quarter = np.asarray(augment.rotation_matrices(jnp.array([0.0, 0.0, np.pi / 2])))
  np.testing.assert_allclose(quarter @ np.array([1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(augment.rotation_matrices(jnp.zeros(3)), np.eye(3), atol=1e-7)
  rotvecs = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
  matrices = np.asarray(augment.rotation_matrices(jnp.asarray(rotvecs)))
  np.testing.assert_allclose(
    matrices @ matrices.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-5
  )
  np.testing.assert_allclose(np.linalg.det(matrices), 1.0, rtol=1e-5)


def test_rotate_over_time_moves_from_its_start_to_its_end_rotation_keeping_each_frames_shape():
  clip = jax.tree.map(lambda x: x[0], random_batch(size=1))
  length = int(clip['length'])
  centre = jnp.full(3, 0.5)
  end = jnp.array([0.0, 0.0, 0.4])
  turned = np.asarray(
    augment.rotate_over_time(clip, jnp.zeros(3), end, centre, centre)['landmarks']
  )
  np.testing.assert_allclose(turned[0], clip['landmarks'][0], atol=1e-6)  # no turn at the start
  last = np.asarray(augment.rotation_matrices(end))
  expected = (clip['landmarks'][length - 1] - 0.5) @ last.T + 0.5
  np.testing.assert_allclose(turned[length - 1], expected, atol=1e-5)  # the whole turn at the end
  pairwise = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)
  for t in range(length):  # a rigid motion of each frame
    np.testing.assert_allclose(pairwise(turned[t]), pairwise(clip['landmarks'][t]), atol=1e-5)
  assert not turned[length:].any()


def test_hold_frames_holds_the_last_unmasked_frame_and_flags_the_face_mask():
  clip = jax.tree.map(lambda x: x[1], toy_batch())  # 6 real frames, values 1..6
  masked = jnp.array([True, False, True, True, False, False])
  held = jax.tree.map(np.asarray, augment.hold_frames(clip, masked))
  np.testing.assert_allclose(held['au'][:, 0], [2, 2, 2, 2, 5, 6])  # the start takes frame 1
  np.testing.assert_array_equal(held['face_mask'], [0, 1, 0, 0, 1, 1])
  np.testing.assert_array_equal(held['frame_mask'], clip['frame_mask'])


def test_paste_frames_pastes_the_partners_frames_real_in_both_and_weights_the_labels():
  batch = toy_batch()
  batch['au'] = batch['au'] * np.array([1.0, 10.0], np.float32)[:, None, None]
  clip, partner = (jax.tree.map(lambda x, i=i: x[i], batch) for i in (0, 1))
  out = jax.tree.map(np.asarray, augment.paste_frames(clip, partner, 2, 3))
  # Clip 0 has 4 real frames: frames 2 and 3 are pasted (frame 4 is padding in clip 0).
  np.testing.assert_allclose(out['au'][:, 0], [1, 2, 30, 40, 0, 0])
  assert out['mix_label'] == 1 and out['mix_weight'] == 0.5  # 2 of its 4 speech frames are its own


def test_the_new_augmentations_change_what_they_name_in_about_their_share():
  batch = random_batch(size=64)
  real = batch['frame_mask'] > 0
  out = augmented(batch, only(frame_block_mask=0.2, frame_block_size=3))
  lost = (out['face_mask'] == 0) & real
  assert 0.1 < lost.sum() / real.sum() < 0.3
  changed = np.any(out['landmarks'] != batch['landmarks'], axis=(2, 3))
  np.testing.assert_array_equal(changed & ~lost, np.zeros_like(changed))  # only lost frames move
  out = augmented(batch, only(frame_noise=0.2))
  noisy = np.any(out['landmarks'] != batch['landmarks'], axis=(2, 3))
  assert 0.1 < noisy[real].mean() < 0.3 and not noisy[~real].any()
  out = augmented(batch, only(point_drop=0.1))
  still = np.all(np.where(real[..., None, None], out['landmarks'] == 0.5, True), axis=(1, 3))
  assert 0.05 < still.mean() < 0.15  # [clips, nodes] held at the centre
  untouched = np.all(out['landmarks'] == batch['landmarks'], axis=(1, 3))
  np.testing.assert_array_equal(still | untouched, np.ones_like(still))
  for switch in (
    dict(axis_scale=0.2),
    dict(shear=0.2),
    dict(smooth_rotation_degrees=45.0),
    dict(motion_scale=0.5),
  ):
    out = augmented(batch, only(**switch))
    assert not np.allclose(out['landmarks'], batch['landmarks']), switch
    assert not out['landmarks'][~real].any(), switch  # padding stays zero


def test_time_cutmix_takes_its_partner_from_the_batch_and_cannot_go_with_mixup():
  batch = random_batch(size=16)
  out = augmented(batch, only(time_cutmix=0.5))
  assert np.all((out['mix_weight'] >= 0.0) & (out['mix_weight'] <= 1.0))
  assert np.any(out['mix_weight'] < 1.0)
  for i, partner in enumerate(out['mix_label']):
    pasted = np.any(out['au'][i] != batch['au'][i], axis=-1)  # [T]
    np.testing.assert_allclose(out['au'][i][pasted], batch['au'][partner][pasted])
  with pytest.raises(ValueError, match='mixup_alpha and time_cutmix'):
    augmented(batch, only(time_cutmix=0.5, mixup_alpha=0.4))


def test_scale_motion_scales_each_axis_of_the_movement_about_the_clip_mean_and_keeps_the_shape():
  clip = jax.tree.map(lambda x: x[0], random_batch(size=1))
  real = clip['frame_mask'] > 0
  factors = jnp.array([2.0, 1.0, 0.0])
  out = np.asarray(augment.scale_motion(clip, factors)['landmarks'])
  mean = clip['landmarks'][real].mean(axis=0)  # [N, 3]
  np.testing.assert_allclose(out[real].mean(axis=0), mean, atol=1e-5)  # the shape stays
  np.testing.assert_allclose(
    out[real] - mean, (clip['landmarks'][real] - mean) * [2, 1, 0], atol=1e-5
  )
  assert not out[~real].any()


def sentence_batch(size=16, seed=0):
  """Random clips as a sentence data set's: T = 10, speech in frames 2..7, 5 tokens (one repeat)."""
  batch = random_batch(size, seed)
  batch.pop('label')
  t = np.arange(10, dtype=np.float32)
  batch['length'] = np.full(size, 10, np.int32)
  batch['frame_mask'] = np.ones((size, 10), np.float32)
  batch['face_mask'] = np.ones((size, 10), np.float32)
  batch['speech_mask'] = np.broadcast_to(((t >= 2) & (t <= 7)).astype(np.float32), (size, 10))
  # Each frame's values are its index + 1, so a frame's presence shows in the output.
  batch['au'] = np.broadcast_to((t + 1)[None, :, None], (size, 10, 18)).astype(np.float32)
  batch['tokens'] = np.broadcast_to(np.array([3, 3, 1, 4, 5, 0], np.int32), (size, 6)).copy()
  batch['token_length'] = np.full(size, 5, np.int32)
  return batch


def test_ctc_frames_counts_a_blank_between_repeats_within_the_length():
  tokens = jnp.array([3, 3, 1, 4, 4, 0])
  assert int(augment.ctc_frames(tokens, 5)) == 7  # 'bb', 'cc': two blanks between repeats
  assert int(augment.ctc_frames(tokens, 4)) == 5  # the second repeat lies past the length
  assert int(augment.ctc_frames(tokens, 0)) == 0


def test_time_shift_of_a_sentence_keeps_every_speech_frame():
  batch = sentence_batch(size=64)
  out = augmented(batch, only(time_shift=6))
  shifts = set()
  for clip in range(64):
    values = out['au'][clip, :, 0]
    shifted = values[out['speech_mask'][clip] > 0]
    np.testing.assert_array_equal(shifted, np.arange(3, 9))  # frames 2..7 (values 3..8), all there
    shifts.add(int(np.argmax(out['speech_mask'][clip])) - 2)
  # Room: 2 still frames before the speech, 2 after: every shift in [-2, 2], clipped, occurs.
  assert shifts == {-2, -1, 0, 1, 2}


def test_speed_of_a_sentence_keeps_its_speech_and_frames_for_its_tokens():
  batch = sentence_batch(size=64)
  out = augmented(batch, only(speed=0.6))
  # 5 tokens with one repeat need 6 frames: at most 10 / 6 faster; speech ends at frame 7 of 10:
  # at most 9 / 7 slower, or the last speech frame would be played past the last frame.
  assert out['length'].min() == 6
  assert len(set(out['length'].tolist())) > 2  # the rate was drawn, not pinned
  for clip in range(64):
    last_read = out['au'][clip, out['length'][clip] - 1, 0]
    assert last_read >= 8 - 1e-5  # the last speech frame (value 8) is still read
  words = augmented(dict(random_batch(size=64)), only(speed=0.6))
  assert words['length'].min() < 6  # a word clip keeps the full range: the bounds are sentences'


@pytest.mark.parametrize('switch', [{'mixup_alpha': 0.4}, {'time_cutmix': 0.3}])
def test_mixing_a_sentence_batch_is_refused(switch):
  with pytest.raises(
    ValueError, match=r'config.augment.\w+=0.\d: it mixes two clips and their labels'
  ):
    augmented(sentence_batch(), only(**switch))


def test_a_sentence_batch_passes_through_switched_off_augmentation_without_mix_labels():
  batch = sentence_batch()
  out = augmented(batch, NO_AUGMENTATION)
  assert set(out) == set(batch)
  for key, value in batch.items():
    np.testing.assert_array_equal(out[key], value, err_msg=key)


def test_every_augmentation_draws_from_a_stream_of_its_own():
  """The module's contract: each named draw (`stream(key, name)`) is independent of the others."""
  import inspect
  import re

  names = sorted(
    set(re.findall(r"(?:stream|_uniform)\(\s*key,\s*'(\w+)'", inspect.getsource(augment)))
  )
  assert len(names) >= 10, names  # every augmentation's draws, found in the module's source
  key = jax.random.key(0)
  draws = {name: np.asarray(jax.random.uniform(augment.stream(key, name), (8,))) for name in names}
  for i, a in enumerate(names):
    for b in names[i + 1 :]:
      assert not np.array_equal(draws[a], draws[b]), (a, b)  # two names, two streams
  again = np.asarray(jax.random.uniform(augment.stream(key, names[0]), (8,)))
  np.testing.assert_array_equal(again, draws[names[0]])  # a name's stream is reproducible
  other = np.asarray(jax.random.uniform(augment.stream(jax.random.key(1), names[0]), (8,)))
  assert not np.array_equal(other, draws[names[0]])  # and follows the step's key
