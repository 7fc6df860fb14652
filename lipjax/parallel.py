"""Data parallelism over local devices: the one module that knows about pmap.

Training code calls `data_parallel(fn)` and `pmean(x)`; the same code runs on
one CPU device, N GPUs or a TPU slice. JAX is folding pmap into jit + shard_map;
moving there means changing this module (a Mesh over 'batch' and NamedSharding
for batches) and nothing else.
"""

import jax
import numpy as np

AXIS = 'batch'


def initialize(distributed: bool) -> None:
  """Joins a multi-host job (jax.distributed) when configured; single host needs nothing."""
  if distributed:
    jax.distributed.initialize()


def num_devices() -> int:
  """Devices that hold a slice of each batch on this host."""
  return jax.local_device_count()


def data_parallel(fn, donate_argnums=()):
  """Compiles fn to run on every local device over the leading batch axis."""
  return jax.pmap(fn, axis_name=AXIS, donate_argnums=donate_argnums)


def pmean(tree):
  """Averages over devices (inside data_parallel)."""
  return jax.lax.pmean(tree, AXIS)


def psum(tree):
  """Sums over devices (inside data_parallel)."""
  return jax.lax.psum(tree, AXIS)


def device_index():
  """This device's position along the batch axis (inside data_parallel)."""
  return jax.lax.axis_index(AXIS)


def replicate(tree):
  """Copies a pytree onto every local device (leading axis = device)."""
  devices = jax.local_devices()
  return jax.tree.map(
      lambda x: jax.device_put_sharded([np.asarray(x)] * len(devices), devices), tree)


def unreplicate(tree):
  """Takes device 0's copy of a replicated pytree, as host numpy arrays."""
  return jax.tree.map(lambda x: np.asarray(x[0]), tree)


def to_host(tree):
  """Collapses [devices, per_device, ...] outputs to [devices * per_device, ...] numpy."""
  return jax.tree.map(lambda x: np.asarray(x).reshape((-1,) + x.shape[2:]), tree)
