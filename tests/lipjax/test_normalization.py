"""Speaker normalisation: every config.model.centre mode on small clips with hand-known answers."""

import jax.numpy as jnp
import numpy as np
import pytest

from lipjax import augment
from lipjax import normalization


def test_masked_mean_by_hand():
  values = jnp.array([[[1.0], [3.0], [100.0]]])  # [1, 3, 1]
  mask = jnp.array([[1.0, 1.0, 0.0]])
  np.testing.assert_allclose(normalization.masked_mean(values, mask), [[2.0]])


def test_frames_outside_the_mask_do_not_move_pooled_features():
  rng = np.random.default_rng(0)
  values = rng.normal(size=(2, 6, 4)).astype(np.float32)
  mask = np.array([[0, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0]], np.float32)
  changed = values.copy()
  changed[mask == 0] += 50.0
  np.testing.assert_allclose(
    normalization.masked_mean(values, mask), normalization.masked_mean(changed, mask), rtol=1e-6
  )


def test_rest_mean_uses_frames_outside_speech_and_falls_back_to_all_real_frames():
  values = jnp.array([[1.0, 2.0, 10.0, 20.0, 3.0, 99.0], [4.0, 30.0, 40.0, 50.0, 99.0, 99.0]])
  frame_mask = jnp.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]], jnp.float32)
  speech_mask = jnp.array([[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 0, 0]], jnp.float32)
  # Clip 0 rests on frames 0, 1, 4; clip 1 has one rest frame only, so its real frames count.
  np.testing.assert_allclose(
    normalization.rest_mean(values, frame_mask, speech_mask)[:, 0], [2.0, 31.0], rtol=1e-6
  )


def test_centring_on_rest_removes_the_speakers_pose_and_articulation_strength():
  rng = np.random.default_rng(0)
  landmarks = rng.uniform(0.3, 0.7, size=(1, 8, 5, 3)).astype(np.float32)
  globals_ = rng.uniform(0.0, 1.0, size=(1, 8, 4)).astype(np.float32)
  frame_mask = np.array([[1, 1, 1, 1, 1, 1, 0, 0]], np.float32)
  speech_mask = np.array([[0, 0, 1, 1, 1, 0, 0, 0]], np.float32)
  # Another "speaker": a different static face shape, twice the movement, other feature scales.
  shape = rng.normal(0.0, 0.05, size=(1, 1, 5, 3)).astype(np.float32)
  rest = np.asarray(normalization.rest_mean(landmarks, frame_mask, speech_mask))
  other = rest + shape + 2.0 * (landmarks - rest)
  other_globals = 0.2 + 3.0 * globals_
  for mode, same_for_other in (('rest', False), ('rest_scaled', True)):
    moved, shifted = normalization.normalize(landmarks, globals_, frame_mask, speech_mask, mode)
    moved2, shifted2 = normalization.normalize(other, other_globals, frame_mask, speech_mask, mode)
    assert moved.shape == landmarks.shape and shifted.shape == globals_.shape
    np.testing.assert_array_equal(np.asarray(moved)[0, 6:], 0.0)  # padding stays zero
    if same_for_other:
      # Equal up to the small constants that keep the division finite.
      np.testing.assert_allclose(moved, moved2, rtol=0.02, atol=5e-3)
      np.testing.assert_allclose(shifted, shifted2, rtol=0.05, atol=1e-3)
    else:  # the pose is gone, the movement's size is not
      np.testing.assert_allclose(
        np.asarray(moved2 - 0.5)[:, :6], 2.0 * np.asarray(moved - 0.5)[:, :6], atol=1e-5
      )
  unchanged = normalization.normalize(landmarks, globals_, frame_mask, speech_mask, 'none')
  assert unchanged[0] is landmarks and unchanged[1] is globals_
  with pytest.raises(ValueError, match='model.centre'):
    normalization.normalize(landmarks, globals_, frame_mask, speech_mask, 'mean')


def test_window_centring_needs_no_silence():
  rng = np.random.default_rng(1)
  landmarks = rng.uniform(0.3, 0.7, size=(1, 8, 5, 3)).astype(np.float32)
  globals_ = rng.uniform(0.0, 1.0, size=(1, 8, 4)).astype(np.float32)
  frame_mask = np.array([[1, 1, 1, 1, 1, 1, 0, 0]], np.float32)
  no_speech = np.zeros_like(frame_mask)
  # In running speech the frames outside the word are other words, not rest.
  word = np.array([[0, 0, 1, 1, 1, 0, 0, 0]], np.float32)
  for window, rest in (('window', 'rest'), ('window_scaled', 'rest_scaled')):
    # The window's reference is every real frame, whatever the speech mask says ...
    a = normalization.normalize(landmarks, globals_, frame_mask, word, window)
    b = normalization.normalize(landmarks, globals_, frame_mask, no_speech, window)
    # ... which is what rest centring uses when nothing is marked as speech.
    c = normalization.normalize(landmarks, globals_, frame_mask, no_speech, rest)
    for x, y, z in zip(a, b, c):
      np.testing.assert_array_equal(x, y)
      np.testing.assert_array_equal(x, z)
    moved = np.asarray(a[0])
    np.testing.assert_allclose(moved[0, :6].mean(axis=0), 0.5, atol=1e-6)  # mean pose removed
    np.testing.assert_array_equal(moved[0, 6:], 0.0)  # padding stays zero


def clip_of_a_face(seed=0, frames=8, real=6, nodes=12):
  """A reference face [N, 3], and a clip of it moving its first nodes (landmarks [1, T, N, 3])."""
  rng = np.random.default_rng(seed)
  reference = rng.uniform(0.3, 0.7, size=(nodes, 3)).astype(np.float32)
  clip = np.repeat(reference[None], frames, axis=0)
  clip[:, :4, 1] += 0.03 * np.sin(np.arange(frames))[:, None]  # the mouth moves
  frame_mask = (np.arange(frames) < real).astype(np.float32)[None]
  return reference, clip[None] * frame_mask[..., None, None], frame_mask


def moved_by(landmarks, scale, rotvec, shift, frame_mask):
  """landmarks [1, T, N, 3] under a similarity transform about the origin, padding kept zero."""
  rotation = np.asarray(augment.rotation_matrices(jnp.asarray(rotvec, jnp.float32)))
  moved = (scale * landmarks @ rotation.T + np.asarray(shift, np.float32)) * frame_mask[
    ..., None, None
  ]
  return moved.astype(np.float32)


def test_clip_standardisation_keeps_the_shape_and_removes_position_and_size():
  _, landmarks, frame_mask = clip_of_a_face()
  globals_ = np.random.default_rng(1).random((1, 8, 4)).astype(np.float32)
  speech = np.zeros_like(frame_mask)
  out, _ = normalization.normalize(landmarks, globals_, frame_mask, speech, 'clip_standardised')
  out = np.asarray(out)
  real = out[0, :6] - 0.5
  np.testing.assert_allclose(real.mean(axis=(0, 1)), 0.0, atol=1e-5)  # the clip's mean point
  np.testing.assert_allclose(np.sqrt((real**2).mean()), 1.0, rtol=1e-3)  # one overall std
  assert not out[0, 6:].any()
  bigger = 0.1 + 2.0 * landmarks * frame_mask[..., None, None]
  again, _ = normalization.normalize(bigger, globals_, frame_mask, speech, 'clip_standardised')
  np.testing.assert_allclose(again, out, rtol=2e-3, atol=2e-3)  # but for the 1e-4 in the division


def test_similarity_transform_recovers_a_known_rotation_scale_and_shift():
  reference, _, _ = clip_of_a_face()
  rotation = np.asarray(augment.rotation_matrices(jnp.array([0.2, -0.4, 0.3])))
  source = 0.7 * reference @ rotation.T + np.array([0.1, -0.2, 0.05])
  scale, found, shift = normalization.similarity_transform(
    jnp.asarray(source), jnp.asarray(reference)
  )
  np.testing.assert_allclose(scale, 1 / 0.7, rtol=1e-4)
  np.testing.assert_allclose(found, rotation.T, atol=1e-4)
  np.testing.assert_allclose(
    float(scale) * source @ np.asarray(found).T + shift, reference, atol=1e-5
  )


@pytest.mark.parametrize('mode', ['procrustes', 'procrustes_frames'])
def test_procrustes_maps_a_turned_bigger_face_back_onto_the_reference(mode):
  reference, landmarks, frame_mask = clip_of_a_face()
  globals_ = np.zeros((1, 8, 4), np.float32)
  speech = np.zeros_like(frame_mask)
  plain, _ = normalization.normalize(landmarks, globals_, frame_mask, speech, mode, reference)
  turned = moved_by(landmarks, 1.3, [0.1, 0.5, -0.2], [0.05, 0.1, -0.1], frame_mask)
  aligned, _ = normalization.normalize(turned, globals_, frame_mask, speech, mode, reference)
  np.testing.assert_allclose(aligned, plain, atol=2e-4)  # pose and size gone
  assert not np.asarray(aligned)[0, 6:].any()
  if mode == 'procrustes':  # the clip is one rigid move: its own movement stays
    moved = np.asarray(plain)[0, :6, :4, 1]
    assert np.ptp(moved, axis=0).min() > 0.02


def test_aligning_each_frame_removes_head_motion_within_the_clip_and_aligning_the_clip_does_not():
  reference, landmarks, frame_mask = clip_of_a_face()
  globals_ = np.zeros((1, 8, 4), np.float32)
  speech = np.zeros_like(frame_mask)
  # The head turns further from frame to frame.
  nodding = np.stack(
    [
      moved_by(
        landmarks[:, t : t + 1],
        1.0,
        [0.05 * t, 0.0, 0.0],
        [0.0, 0.0, 0.0],
        frame_mask[:, t : t + 1],
      )[0, 0]
      for t in range(8)
    ]
  )[None]
  still = normalization.normalize(
    landmarks, globals_, frame_mask, speech, 'procrustes_frames', reference
  )[0]
  per_frame = normalization.normalize(
    nodding, globals_, frame_mask, speech, 'procrustes_frames', reference
  )[0]
  per_clip = normalization.normalize(
    nodding, globals_, frame_mask, speech, 'procrustes', reference
  )[0]
  np.testing.assert_allclose(per_frame, still, atol=2e-3)
  assert np.abs(np.asarray(per_clip) - np.asarray(still)).max() > 0.01


def test_procrustes_needs_a_reference():
  _, landmarks, frame_mask = clip_of_a_face()
  with pytest.raises(ValueError, match='needs a reference face'):
    normalization.normalize(
      landmarks, np.zeros((1, 8, 4), np.float32), frame_mask, frame_mask, 'procrustes'
    )


def test_scaling_per_axis_removes_how_much_a_speaker_moves_along_each_axis():
  rng = np.random.default_rng(4)
  landmarks = rng.uniform(0.3, 0.7, size=(1, 8, 5, 3)).astype(np.float32)
  globals_ = rng.random((1, 8, 4)).astype(np.float32)
  frame_mask = np.array([[1, 1, 1, 1, 1, 1, 0, 0]], np.float32)
  speech = np.array([[0, 0, 1, 1, 1, 0, 0, 0]], np.float32)
  no_speech = np.zeros_like(speech)
  for mode, marked in (('rest_scaled_axes', speech), ('window_scaled_axes', no_speech)):
    # Another speaker: twice the spread (x), the same opening (y), half the protrusion (z),
    # about the reference pose of the mode (the rest frames', or the whole window's).
    reference = np.asarray(normalization.rest_mean(landmarks, frame_mask, marked))
    gains = np.array([2.0, 1.0, 0.5], np.float32)
    other = (reference + (landmarks - reference) * gains) * frame_mask[..., None, None]
    a, _ = normalization.normalize(landmarks, globals_, frame_mask, speech, mode)
    b, _ = normalization.normalize(other, globals_, frame_mask, speech, mode)
    np.testing.assert_allclose(a, b, rtol=0.03, atol=5e-3)  # but for the 1e-3 in the division
    overall, _ = normalization.normalize(other, globals_, frame_mask, speech, mode[: -len('_axes')])
    assert np.abs(np.asarray(overall) - np.asarray(a)).max() > 0.1  # one scale cannot undo it
