"""The transformer over frames: rotary positions, masked attention, drop-path, the model option."""

import jax
import jax.numpy as jnp
import numpy as np

from lipjax import input_pipeline
from lipjax import models
from lipjax import transformer


def test_rotary_positions_make_attention_depend_on_the_distance_between_frames_only():
  rng = np.random.default_rng(0)
  query = jnp.asarray(rng.normal(size=(1, 1, 1, 8)), jnp.float32)
  key = jnp.asarray(rng.normal(size=(1, 1, 1, 8)), jnp.float32)

  def score(t_query, t_key):
    q = transformer.rotary_embedding(query, jnp.array([t_query]))
    k = transformer.rotary_embedding(key, jnp.array([t_key]))
    return float(jnp.sum(q * k))

  assert abs(score(2, 5) - score(10, 13)) < 1e-4
  assert abs(score(2, 5) - score(2, 9)) > 1e-3
  np.testing.assert_allclose(  # a rotation: norms kept
    jnp.linalg.norm(transformer.rotary_embedding(query, jnp.array([7]))),
    jnp.linalg.norm(query),
    rtol=1e-6,
  )


def encoder(drop_path_rate=0.0):
  return transformer.TransformerEncoder(
    width=16, layers=2, heads=4, mlp_ratio=2, dropout_rate=0.0, drop_path_rate=drop_path_rate
  )


def test_padding_frames_neither_attend_nor_are_attended_to():
  rng = np.random.default_rng(1)
  frames = jnp.asarray(rng.normal(size=(2, 7, 5)), jnp.float32)
  frame_mask = jnp.array([[1, 1, 1, 1, 0, 0, 0], [1] * 7], jnp.float32)
  module = encoder()
  params = module.init(jax.random.PRNGKey(0), frames, frame_mask, False)
  out = module.apply(params, frames, frame_mask, False)
  changed = frames.at[0, 4:].set(100.0)  # other content in clip 0's padding
  again = module.apply(params, changed, frame_mask, False)
  np.testing.assert_allclose(out, again, atol=1e-5)
  assert not np.asarray(out)[0, 4:].any()
  moved = frames.at[0, 1].add(1.0)  # a real frame changes every real frame's output
  assert (
    np.abs(np.asarray(module.apply(params, moved, frame_mask, False))[0, 3] - out[0, 3]).max()
    > 1e-3
  )


def test_drop_path_drops_whole_branches_only_in_training():
  branch = jnp.ones((64, 4, 3))
  drop = transformer.DropPath(0.5)
  np.testing.assert_array_equal(drop.apply({}, branch, False), branch)
  kept = np.asarray(drop.apply({}, branch, True, rngs={'dropout': jax.random.PRNGKey(1)}))
  per_example = kept.reshape(64, -1)
  assert set(np.unique(per_example)) == {0.0, 2.0}  # whole examples, rescaled by 1 / keep
  assert np.all(per_example.min(axis=1) == per_example.max(axis=1))
  assert 16 < (per_example[:, 0] == 0).sum() < 48


def test_the_model_trains_its_transformer_and_pools_the_speech_frames(test_config, dataset):
  _, meta = dataset
  test_config.model.temporal = 'transformer'
  test_config.model.transformer_width = 16
  test_config.model.transformer_layers = 2
  test_config.model.transformer_heads = 2
  model = models.create_model(test_config, meta)
  batch = {
    k: v[0, :2] for k, v in next(input_pipeline.eval_iterator(test_config, 'val', 1)).items()
  }
  params = model.init(jax.random.PRNGKey(0), batch)['params']
  assert 'transformer' in params and not any('BiLSTM' in k for k in params)
  logits = model.apply({'params': params}, batch)
  assert logits.shape == (2, meta.num_classes) and np.isfinite(np.asarray(logits)).all()
  speech = np.zeros_like(batch['speech_mask'])
  speech[:, :3] = 1  # pooling over fewer frames gives other logits
  other = model.apply({'params': params}, dict(batch, speech_mask=speech))
  assert np.abs(np.asarray(other) - np.asarray(logits)).max() > 1e-5
