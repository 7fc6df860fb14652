"""Model parts: masked pooling, speech mask, edges from metadata, LSTM lengths."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lipjax import input_pipeline
from lipjax import lstm
from lipjax import models


def test_pooling_mask_modes():
  frame_mask = jnp.array([[1, 1, 1, 0], [1, 1, 0, 0]], jnp.float32)
  speech_mask = jnp.array([[0, 1, 1, 1], [0, 0, 0, 0]], jnp.float32)
  # Speech inside real frames; the second clip has no speech and falls back to its frames.
  np.testing.assert_array_equal(
    models.pooling_mask(frame_mask, speech_mask, 'speech'), [[0, 1, 1, 0], [1, 1, 0, 0]]
  )
  np.testing.assert_array_equal(models.pooling_mask(frame_mask, speech_mask, 'frames'), frame_mask)
  np.testing.assert_array_equal(models.pooling_mask(frame_mask, speech_mask, 'none'), 1)


def test_node_features_velocity_is_zero_at_start_and_in_padding():
  landmarks = jnp.stack([jnp.full((2, 3), v) for v in (0.5, 0.6, 0.8, 0.0)])[None]  # [1, 4, 2, 3]
  frame_mask = jnp.array([[1.0, 1.0, 1.0, 0.0]])
  features = models.node_features(landmarks, frame_mask, velocities=True, velocity_scale=10.0)
  np.testing.assert_allclose(features[0, :, 0, 3], [0.0, 1.0, 2.0, 0.0], atol=1e-5)
  np.testing.assert_allclose(features[0, :, 0, 0], [0.0, 0.1, 0.3, 0.0], atol=1e-6)


def real_batch(config, size=4):
  """The first eval batch of the synthetic data set, without the device axis."""
  batch = next(input_pipeline.eval_iterator(config, 'val', 1))
  return {key: value[0, :size] for key, value in batch.items()}


def model_output(config, meta, batch, params=None):
  """Logits of the test model (deterministic), initialising params if not given."""
  model = models.create_model(config, meta)
  if params is None:
    params = model.init(jax.random.PRNGKey(0), batch)['params']
  return np.asarray(model.apply({'params': params}, batch)), params


def test_speech_mask_changes_the_output_only_when_pooling_reads_it(test_config, dataset):
  _, meta = dataset
  batch = real_batch(test_config)
  narrowed = dict(batch, speech_mask=batch['speech_mask'] * (np.arange(12) < 4))
  # Rest centring reads the speech mask too (its rest frames): off, so only pooling can.
  test_config.model.centre = 'none'
  logits, params = model_output(test_config, meta, batch)
  narrowed_logits, _ = model_output(test_config, meta, narrowed, params)
  assert np.abs(logits - narrowed_logits).max() > 1e-4
  test_config.model.mask_mode = 'frames'
  logits, params = model_output(test_config, meta, batch)
  narrowed_logits, _ = model_output(test_config, meta, narrowed, params)
  np.testing.assert_allclose(logits, narrowed_logits, rtol=1e-6)


def test_without_depth_the_model_reads_x_and_y_only(test_config, dataset):
  _, meta = dataset
  batch = real_batch(test_config)
  z = np.random.default_rng(0).normal(0.5, 0.1, batch['landmarks'].shape[:-1])
  moved = dict(batch, landmarks=batch['landmarks'].copy())
  moved['landmarks'][..., 2] = z  # another depth estimate, the same x and y
  test_config.model.centre = 'none'  # a scaled centring's one scale counts z's movement too
  logits, params = model_output(test_config, meta, batch)
  moved_logits, _ = model_output(test_config, meta, moved, params)
  assert np.abs(logits - moved_logits).max() > 1e-4
  test_config.model.depth = False
  logits, params = model_output(test_config, meta, batch)
  moved_logits, _ = model_output(test_config, meta, moved, params)
  np.testing.assert_allclose(logits, moved_logits, rtol=1e-6)


def test_boundary_input_feeds_the_speech_mask_to_the_temporal_model(test_config, dataset):
  _, meta = dataset
  batch = real_batch(test_config)
  narrowed = dict(batch, speech_mask=batch['speech_mask'] * (np.arange(12) < 4))
  # Neither pooling nor centring reads the speech mask: only the input channel can.
  test_config.model.centre = 'none'
  test_config.model.mask_mode = 'frames'
  test_config.model.boundary_input = True
  logits, params = model_output(test_config, meta, batch)
  narrowed_logits, _ = model_output(test_config, meta, narrowed, params)
  assert np.abs(logits - narrowed_logits).max() > 1e-4
  plain = models.create_model(with_model(test_config, boundary_input=False), meta)
  plain_params = plain.init(jax.random.PRNGKey(0), batch)['params']
  # One more input row of the LSTM's input kernel: the boundary channel.
  with_channel = params['BiLSTM_0']['input_kernel'].shape[0]
  assert with_channel == plain_params['BiLSTM_0']['input_kernel'].shape[0] + 1


def with_model(config, **model_fields):
  """A copy of config with some model fields changed."""
  copy = config.copy_and_resolve_references()
  for key, value in model_fields.items():
    copy.model[key] = value
  return copy


def test_speech_pooling_averages_the_lstm_outputs_of_the_speech_frames(test_config, dataset):
  _, meta = dataset
  batch = real_batch(test_config)
  test_config.model.centre = 'none'
  test_config.model.head_hidden = ()  # logits = classifier(pooled): linear in the pooled vector
  model = models.create_model(test_config, meta)
  params = model.init(jax.random.PRNGKey(0), batch)['params']
  logits, state = model.apply(
    {'params': params},
    batch,
    mutable=['intermediates'],
    capture_intermediates=lambda m, _: isinstance(m, lstm.BiLSTM),
  )
  (sequence,) = state['intermediates']['BiLSTM_0']['__call__']  # [B, T, 2H]
  speech = batch['speech_mask'] * batch['frame_mask']  # [B, T]
  assert np.all(speech.sum(1) > 0) and np.any(speech != batch['frame_mask'])
  pooled = (sequence * speech[..., None]).sum(1) / speech.sum(1, keepdims=True)  # [B, 2H]
  kernel, bias = params['classifier']['kernel'], params['classifier']['bias']
  np.testing.assert_allclose(logits, pooled @ kernel + bias, rtol=1e-4, atol=1e-5)


def test_model_reads_the_edges_in_the_metadata(test_config, dataset):
  _, meta = dataset
  batch = real_batch(test_config)
  logits, params = model_output(test_config, meta, batch)
  model = models.create_model(test_config, meta)
  assert list(model.senders) == meta.senders and list(model.receivers) == meta.receivers
  # Another edge list (a different data set's metadata) with the same parameters.
  permutation = np.random.default_rng(1).permutation(meta.num_nodes)
  other = dataclasses.replace(
    meta, senders=permutation[meta.senders].tolist(), receivers=permutation[meta.receivers].tolist()
  )
  assert list(models.create_model(test_config, other).senders) == other.senders
  other_logits, _ = model_output(test_config, other, batch, params)
  assert np.abs(logits - other_logits).max() > 1e-4


def test_edge_ablations_build_different_graphs(test_config, dataset):
  _, meta = dataset
  edge_sets = set()
  for mode in ('anatomical', 'knn_distance', 'knn_index'):
    test_config.model.edges = mode
    model = models.create_model(test_config, meta)
    edge_sets.add(tuple(zip(model.senders, model.receivers)))
  assert len(edge_sets) == 3


def test_globals_modes_and_gcn_impls_run(test_config, dataset):
  _, meta = dataset
  batch = real_batch(test_config)
  test_config.model.globals_mode = 'broadcast'
  test_config.model.gcn_impl = 'jraph'
  logits, _ = model_output(test_config, meta, batch)
  assert logits.shape == (4, meta.num_classes) and np.all(np.isfinite(logits))


def test_reverse_within_length_by_hand():
  x = jnp.array([[1, 2, 3, 0], [1, 2, 3, 4]])[..., None]
  reversed_ = lstm.reverse_within_length(x, jnp.array([3, 4]))
  np.testing.assert_array_equal(reversed_[..., 0], [[3, 2, 1, 0], [4, 3, 2, 1]])


def test_bilstm_ignores_padding_after_length():
  rng = np.random.default_rng(0)
  inputs = rng.normal(size=(2, 7, 5)).astype(np.float32)
  lengths = jnp.array([4, 7])
  module = lstm.BiLSTM(hidden=6, unroll=2)
  params = module.init(jax.random.PRNGKey(0), inputs, lengths)
  outputs = module.apply(params, inputs, lengths)
  padded = inputs.copy()
  padded[0, 4:] = 99.0
  np.testing.assert_allclose(module.apply(params, padded, lengths), outputs, rtol=1e-5, atol=1e-6)
  assert np.all(np.asarray(outputs)[0, 4:] == 0)
  # The backward direction starts at the last real frame: there it has seen one input only,
  # so it equals the backward output of that frame alone.
  single = module.apply(params, inputs[:, 3:4], jnp.array([1, 1]))
  np.testing.assert_allclose(outputs[0, 3, 6:], single[0, 0, 6:], rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # TensorFlow and a TFLite conversion
def test_bilstm_runs_in_tflite_with_and_without_the_xnnpack_delegate():
  # TFLite's default CPU runtime hands most ops to XNNPACK. With the reversal's x on the
  # matmul's right, XNNPACK (TF 2.19, AVX2 x86) returned garbage here (0.6 to 1e37 off);
  # an AVX-512 machine gave the right numbers, so on such CPUs this test cannot tell.
  from jax.experimental import jax2tf
  import tensorflow as tf

  from lipjax import export

  rng = np.random.default_rng(0)
  inputs = rng.normal(size=(3, 29, 32)).astype(np.float32)
  lengths = np.array([29, 14, 4], np.int32)
  module = lstm.BiLSTM(hidden=16)
  params = module.init(jax.random.PRNGKey(0), inputs, lengths)
  want = np.asarray(module.apply(params, inputs, lengths))
  convert = jax2tf.convert(
    lambda x, n: module.apply(params, x, n), native_serialization=False, enable_xla=False
  )
  holder = tf.Module()
  holder.serve = tf.function(
    lambda x, n: {'outputs': convert(x, n)},
    input_signature=[tf.TensorSpec(inputs.shape, tf.float32), tf.TensorSpec((3,), tf.int32)],
    autograph=False,
  )
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
    [holder.serve.get_concrete_function()], holder
  )
  runs = export.tflite_runs(converter.convert(), {'x': inputs, 'n': lengths})
  assert set(runs) == {'xnnpack', 'builtin'}
  for runtime, outputs in runs.items():
    np.testing.assert_allclose(outputs['outputs'], want, atol=1e-5, rtol=0, err_msg=runtime)


def parameter_count(config, meta):
  """Parameters of a config's model for a data set, from shapes only (nothing computed)."""
  model = models.create_model(config, meta)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), models.dummy_batch(meta)))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes['params']))


def test_config_parameter_budgets(dataset):
  import importlib

  _, meta = dataset
  lrw = dataclasses.replace(meta, class_names=[f'w{i}' for i in range(500)])
  budgets = {
    'test': (1_000, 100_000),
    'small': (100_000, 1_000_000),
    'base': (1_000_000, 10_000_000),
    'lrw': (1_000_000, 10_000_000),
    'seed': (28_000_000, 38_000_000),
  }
  for name, (low, high) in budgets.items():
    config = importlib.import_module(f'configs.{name}').get_config()
    assert low < parameter_count(config, lrw) < high, name


def test_no_graph_baseline_ignores_the_edges_and_has_no_gcn(test_config, dataset):
  _, meta = dataset
  batch = real_batch(test_config)
  test_config.model.spatial = 'none'
  logits, params = model_output(test_config, meta, batch)
  assert 'frame_encoder' not in params and logits.shape == (4, meta.num_classes)
  reversed_edges = dataclasses.replace(
    meta, senders=meta.receivers[::-1], receivers=meta.senders[::-1]
  )
  permutation = np.random.default_rng(2).permutation(meta.num_nodes)
  rewired = dataclasses.replace(
    meta, senders=permutation[meta.senders].tolist(), receivers=permutation[meta.receivers].tolist()
  )
  for other in (reversed_edges, rewired):
    np.testing.assert_array_equal(model_output(test_config, other, batch, params)[0], logits)
  test_config.model.spatial = 'graph'
  with pytest.raises(ValueError, match="model.spatial='graph'"):
    model_output(test_config, meta, batch)
