"""Data parallelism over local devices: the one module that knows about pmap.

Training code calls `data_parallel(fn)` and `pmean(x)`; the same code runs on
one CPU device, N GPUs or a TPU slice. JAX is folding pmap into jit + shard_map;
moving there means changing this module (a Mesh over 'batch' and NamedSharding
for batches) and nothing else.
"""

import jax
import numpy as np

AXIS = 'batch'


def initialize(config) -> None:
  """Joins a multi-host job (jax.distributed) when config.distributed; single host needs nothing.

  With coordinator_address, num_processes and process_id unset (None), JAX
  detects them itself on Cloud TPU and under SLURM.
  """
  if config.distributed and not jax.distributed.is_initialized():
    jax.distributed.initialize(
      coordinator_address=config.get('coordinator_address'),
      num_processes=config.get('num_processes'),
      process_id=config.get('process_id'),
    )


def num_devices() -> int:
  """Devices that hold a slice of each batch on this host."""
  return jax.local_device_count()


def data_parallel(fn, donate_argnums=()):
  """Compiles fn to run on every local device over the leading batch axis."""
  return jax.pmap(fn, axis_name=AXIS, donate_argnums=donate_argnums)


def pmean(tree):
  """Averages over devices (inside data_parallel)."""
  return jax.lax.pmean(tree, AXIS)


def device_index():
  """This device's position along the batch axis (inside data_parallel)."""
  return jax.lax.axis_index(AXIS)


def replicate(tree):
  """Copies a pytree onto every local device (leading axis = device)."""
  devices = jax.local_devices()
  return jax.tree.map(
    lambda x: jax.device_put_sharded([np.asarray(x)] * len(devices), devices), tree
  )


def unreplicate(tree):
  """Takes device 0's copy of a replicated pytree, as host numpy arrays."""
  return jax.tree.map(lambda x: np.asarray(x[0]), tree)


def to_host(tree):
  """Collapses [devices, per_device, ...] outputs to [devices * per_device, ...] numpy."""
  return jax.tree.map(lambda x: np.asarray(x).reshape((-1,) + x.shape[2:]), tree)
