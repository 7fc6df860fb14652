"""A bidirectional LSTM over padded sequences, shaped for speed on CPU and accelerators.

A scan's steps run one after another, so whatever does not depend on the
previous step is taken out of the loop: the input projections of all time
steps and both directions are one matmul. Inside it, the four gates of a step
are one matmul, and both directions advance in the same `lax.scan` step. The
backward direction reads each sequence reversed within its own length, so it
starts at the sequence's last real frame and padding never reaches a real
frame's output.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def reverse_within_length(x, lengths):
  """Reverses each sequence's first `lengths[b]` steps, leaving padding in place.  # [B, T, ...]"""
  steps = jnp.arange(x.shape[1])[None, :]  # [1, T]
  lengths = lengths[:, None]  # [B, 1]
  source = jnp.where(steps < lengths, lengths - 1 - steps, steps)  # [B, T]
  # A one-hot matmul rather than take_along_axis: a batched gather has no TFLite
  # (or plain-TF) form, and at T ~ 29 the matmul is cheap. HIGHEST keeps it exact on TPU.
  selection = jax.nn.one_hot(source, x.shape[1], dtype=x.dtype)  # [B, T, T]
  # x is the matmul's left operand and time comes out last, moved back after: with x on
  # the right, TFLite's XNNPACK delegate (TF 2.19 on an AVX2 x86) returned garbage when x
  # came from other delegated ops (tests/lipjax/test_models.py holds the TFLite form).
  flat = x.reshape(x.shape[:2] + (-1,))  # [B, T, F]
  reversed_ = jnp.einsum('bsf,bts->bft', flat, selection, precision=jax.lax.Precision.HIGHEST)
  return reversed_.transpose(0, 2, 1).reshape(x.shape)


def _forget_bias_init(hidden: int):
  """Bias initialiser [2 directions, 4H] with the forget gate at 1 (gate order i, f, g, o)."""

  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.zeros(shape, dtype).at[:, hidden : 2 * hidden].set(1.0)

  return init


class BiLSTM(nn.Module):
  """Bidirectional LSTM honouring sequence lengths; outputs are zero after each length."""

  hidden: int
  unroll: int = 1
  dtype: jnp.dtype = jnp.float32  # of the matmuls and outputs; the cell state stays float32

  @nn.compact
  def __call__(self, inputs, lengths):
    """Maps inputs [B, T, D] and lengths [B] to outputs [B, T, 2H] (forward ++ backward)."""
    batch, steps, _ = inputs.shape
    hidden = self.hidden
    input_kernel = self.param(
      'input_kernel', nn.initializers.lecun_normal(), (inputs.shape[-1], 2 * 4 * hidden)
    )
    recurrent_kernel = self.param(
      'recurrent_kernel', nn.initializers.orthogonal(), (2, hidden, 4 * hidden)
    )
    bias = self.param('bias', _forget_bias_init(hidden), (2, 4 * hidden))

    inputs = inputs.astype(self.dtype)
    recurrent_kernel = recurrent_kernel.astype(self.dtype)
    # Gates accumulate and pass their nonlinearities in float32 (a no-op at float32).
    projected = jnp.matmul(
      inputs, input_kernel.astype(self.dtype), preferred_element_type=jnp.float32
    )
    projected = projected.reshape(batch, steps, 2, 4 * hidden) + bias  # [B, T, 2, 4H]
    forward_in = projected[:, :, 0]  # [B, T, 4H]
    backward_in = reverse_within_length(projected[:, :, 1], lengths)  # [B, T, 4H]
    gate_inputs = jnp.stack([forward_in, backward_in], axis=0).transpose(
      2, 0, 1, 3
    )  # [T, 2, B, 4H]

    def step(carry, gate_input):
      h, c = carry  # [2, B, H] each
      gates = gate_input + jnp.einsum(
        'dbh,dhg->dbg', h, recurrent_kernel, preferred_element_type=jnp.float32
      )  # [2, B, 4H]
      i, f, g, o = jnp.split(gates, 4, axis=-1)
      c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
      h = (jax.nn.sigmoid(o) * jnp.tanh(c)).astype(self.dtype)
      return (h, c), h

    h0 = jnp.zeros((2, batch, hidden), self.dtype)
    c0 = jnp.zeros((2, batch, hidden), jnp.float32)
    _, outputs = jax.lax.scan(step, (h0, c0), gate_inputs, unroll=self.unroll)  # [T, 2, B, H]
    outputs = outputs.transpose(1, 2, 0, 3)  # [2, B, T, H]
    forward_out = outputs[0]
    backward_out = reverse_within_length(outputs[1], lengths)
    valid = (jnp.arange(steps)[None, :] < lengths[:, None])[..., None]  # [B, T, 1]
    valid = valid.astype(self.dtype)
    return jnp.concatenate([forward_out, backward_out], axis=-1) * valid  # [B, T, 2H]
