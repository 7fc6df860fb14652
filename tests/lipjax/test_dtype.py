"""config.model.dtype: bfloat16 computation, float32 parameters, logits close to float32's."""

import jax
import numpy as np
import pytest

from configs import test as test_config
from extraction import schema
from lipjax import models

SENDERS = tuple(range(88)) + tuple((i + 1) % 88 for i in range(88))
RECEIVERS = tuple((i + 1) % 88 for i in range(88)) + tuple(range(88))


def small_batch(batch_size=3, frames=6):
  """Random clips of lengths 6, 4, 3 with speech on their middle frames."""
  rng = np.random.default_rng(0)
  length = np.array([6, 4, 3][:batch_size], np.int32)
  frame_mask = (np.arange(frames)[None] < length[:, None]).astype(np.float32)
  speech_mask = frame_mask.copy()
  speech_mask[:, 0] = 0
  landmarks = rng.random((batch_size, frames, 88, 3), dtype=np.float32)  # [B, T, N, 3]
  return {
    'landmarks': landmarks * frame_mask[..., None, None],
    'au': rng.random((batch_size, frames, 18), dtype=np.float32),
    'geometry': rng.random((batch_size, frames, 10), dtype=np.float32),
    'frame_mask': frame_mask,
    'face_mask': frame_mask,
    'speech_mask': speech_mask,
    'length': length,
  }


def model(dtype):
  """configs/test.py's model with two LSTM layers, for 5 classes on a ring graph."""
  config = test_config.get_config()
  config.model.lstm_layers = 2
  config.model.centre = 'rest_scaled'
  config.model.dtype = dtype
  meta = schema.DatasetMeta.for_roi(
    class_names=[f'w{i}' for i in range(5)],
    max_frames=6,
    fps=25.0,
    senders=SENDERS,
    receivers=RECEIVERS,
  )
  return models.create_model(config, meta)


def test_bfloat16_keeps_float32_params_and_logits_close_to_float32():
  batch = small_batch()
  params = model('float32').init(jax.random.PRNGKey(0), batch)['params']
  bf16_params = model('bfloat16').init(jax.random.PRNGKey(0), batch)['params']
  assert {x.dtype for x in jax.tree.leaves(bf16_params)} == {np.dtype('float32')}
  reference = model('float32').apply({'params': params}, batch)
  logits = model('bfloat16').apply({'params': params}, batch)
  assert logits.dtype == np.float32
  # bfloat16 keeps 8 bits of mantissa: agreement to a few parts in a hundred of the logits' scale.
  np.testing.assert_allclose(logits, reference, atol=0.03 * float(np.abs(reference).max()))
  assert not np.array_equal(logits, reference)  # bfloat16 really ran


def test_unknown_dtype_names_the_accepted_values():
  with pytest.raises(ValueError, match='bfloat16'):
    model('float16').init(jax.random.PRNGKey(0), small_batch())
