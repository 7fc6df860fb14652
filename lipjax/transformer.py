"""A transformer over frames: pre-LN blocks, rotary positions, attention to real frames only.

The temporal model beside the BiLSTM (config.model.temporal='transformer'), in
the shape SyncVSR's landmark model uses: self-attention whose queries and keys
are rotated by their frame's position (RoPE, Su et al. 2021), a GELU MLP, and
stochastic depth (drop-path) that grows linearly to `drop_path_rate` at the last
block. Padding frames are never attended to, and their outputs are zero.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def rotary_embedding(x, positions):
  """Rotates pairs of channels of x [B, T, H, D] by angles positions [T] x frequencies (RoPE)."""
  half = x.shape[-1] // 2
  frequencies = 1.0 / (10000.0 ** (jnp.arange(half, dtype=jnp.float32) / half))  # [D/2]
  angles = positions[:, None].astype(jnp.float32) * frequencies[None, :]  # [T, D/2]
  cos, sin = jnp.cos(angles)[None, :, None, :], jnp.sin(angles)[None, :, None, :]
  first, second = x[..., :half], x[..., half : 2 * half]
  rotated = jnp.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1)
  return jnp.concatenate([rotated.astype(x.dtype), x[..., 2 * half :]], axis=-1)


class DropPath(nn.Module):
  """Stochastic depth: drops a whole residual branch per example with probability `rate`."""

  rate: float

  @nn.compact
  def __call__(self, x, train: bool):
    if not train or self.rate == 0.0:
      return x
    keep = jax.random.bernoulli(self.make_rng('dropout'), 1.0 - self.rate, (x.shape[0],))
    return x * (keep / (1.0 - self.rate)).astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))


class SelfAttention(nn.Module):
  """Multi-head self-attention with rotary positions and a mask of real frames."""

  heads: int
  dropout_rate: float
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, frame_mask, train: bool):
    batch, steps, width = x.shape
    head_width = width // self.heads
    qkv = nn.DenseGeneral((3, self.heads, head_width), dtype=self.dtype, name='qkv')(x)
    query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [B, T, H, D] each
    positions = jnp.arange(steps)
    query, key = rotary_embedding(query, positions), rotary_embedding(key, positions)
    logits = jnp.einsum('bqhd,bkhd->bhqk', query, key) / jnp.sqrt(head_width).astype(self.dtype)
    allowed = frame_mask[:, None, None, :] > 0  # [B, 1, 1, T]: keys that are real frames
    logits = jnp.where(allowed, logits.astype(jnp.float32), jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    weights = nn.Dropout(self.dropout_rate, deterministic=not train)(weights)
    attended = jnp.einsum('bhqk,bkhd->bqhd', weights, value)
    return nn.DenseGeneral(width, axis=(-2, -1), dtype=self.dtype, name='out')(attended)


class TransformerEncoder(nn.Module):
  """Frames [B, T, D] -> [B, T, width]: input projection, pre-LN blocks, final LayerNorm."""

  width: int
  layers: int
  heads: int
  mlp_ratio: int
  dropout_rate: float
  drop_path_rate: float
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, frames, frame_mask, train: bool):
    if self.width % self.heads:
      raise ValueError(
        f'config model.transformer_width={self.width} is not divisible by '
        f'transformer_heads={self.heads}'
      )
    real = frame_mask[..., None].astype(self.dtype)  # [B, T, 1]
    x = nn.Dense(self.width, dtype=self.dtype, name='input')(frames) * real
    for layer in range(self.layers):
      rate = self.drop_path_rate * layer / max(self.layers - 1, 1)
      attended = SelfAttention(self.heads, self.dropout_rate, self.dtype)(
        nn.LayerNorm(dtype=self.dtype)(x), frame_mask, train
      )
      x = x + DropPath(rate)(
        nn.Dropout(self.dropout_rate, deterministic=not train)(attended), train
      )
      hidden = nn.Dense(self.width * self.mlp_ratio, dtype=self.dtype)(
        nn.LayerNorm(dtype=self.dtype)(x)
      )
      hidden = nn.Dense(self.width, dtype=self.dtype)(
        nn.Dropout(self.dropout_rate, deterministic=not train)(nn.gelu(hidden))
      )
      x = (x + DropPath(rate)(hidden, train)) * real
    return nn.LayerNorm(dtype=self.dtype)(x) * real
