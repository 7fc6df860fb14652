"""Data parallelism over devices and hosts: the one module that knows about pmap and processes.

Training code calls `data_parallel(fn)` and `pmean(x)`; the same code runs on
one CPU device, N GPUs, a TPU pod slice or several GPU hosts. With several
processes (jax.distributed) pmap's axis spans the devices of all of them,
process-major (process 0's devices first), so pmean averages over every device
of the job while each process feeds its local devices. Arrays reach the
devices through `shard` and `replicate` (a NamedSharding over a mesh of the
local devices, as JAX's pmap migration guide has it; `jax.device_put_sharded`
and `PmapSharding` are gone from current JAX); moving from pmap to
jit + shard_map means changing this module and nothing else.
"""

import collections
import itertools
from typing import Iterator

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np

AXIS = 'batch'


def initialize(config) -> None:
  """Joins a multi-host job (jax.distributed) when config.distributed; single host needs nothing.

  With coordinator_address, num_processes and process_id unset (None), JAX
  detects them itself on Cloud TPU and under SLURM. Must run before JAX's
  backends start (the first jax.devices() or computation).
  """
  if config.distributed and not jax.distributed.is_initialized():
    # Cross-process collectives on CPU hosts (and CPU tests): gloo over TCP. JAX 0.7
    # defaults to it; earlier versions had none, so pmean across processes failed.
    if jax.config.jax_cpu_collectives_implementation is None:
      jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(
      coordinator_address=config.get('coordinator_address'),
      num_processes=config.get('num_processes'),
      process_id=config.get('process_id'),
    )


def process_index() -> int:
  """This process's index among the job's processes (0 on a single host)."""
  return jax.process_index()


def process_count() -> int:
  """Processes (hosts) in the job; each reads its own share of every batch."""
  return jax.process_count()


def is_primary() -> bool:
  """Whether this process writes the workdir's files (process 0)."""
  return jax.process_index() == 0


def primary_flag(flag: bool) -> bool:
  """Process 0's flag, on every process of the job (a collective: all processes must call it)."""
  if jax.process_count() == 1:
    return flag
  return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def total_devices() -> int:
  """Devices over all processes: the count each global batch is split into."""
  return jax.device_count()


def num_devices() -> int:
  """Devices that hold a slice of each batch on this host (process)."""
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


def global_rows(per_device: int):
  """Rows of the global batch that this device's slice holds (inside data_parallel).  # [per_device]"""
  return device_index() * per_device + jnp.arange(per_device)


def all_gather(tree):
  """Every device's slice, concatenated in device order: the global batch (inside data_parallel)."""
  return jax.lax.all_gather(tree, AXIS, tiled=True)


def _local_sharding() -> jax.sharding.NamedSharding:
  """Slice i of an array's leading axis on local device i: the layout pmap takes and gives."""
  mesh = jax.sharding.Mesh(np.array(jax.local_devices()), (AXIS,))
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(AXIS))


def shard(tree):
  """Puts host arrays shaped [local devices, ...] onto the local devices, one slice each."""
  return jax.device_put(tree, _local_sharding())


def prefetch(batches: Iterator, size: int = 2) -> Iterator:
  """Yields host batches [local devices, ...] already on the devices, `size` of them in flight."""
  queue = collections.deque()

  def enqueue(count):
    for batch in itertools.islice(batches, count):
      queue.append(shard(batch))

  enqueue(size)
  while queue:
    yield queue.popleft()
    enqueue(1)


def replicate(tree):
  """Copies a pytree onto every local device (leading axis = device)."""
  count = num_devices()
  return shard(jax.tree.map(lambda x: np.stack([np.asarray(x)] * count), tree))


def unreplicate(tree):
  """Takes device 0's copy of a replicated pytree, as host numpy arrays."""
  return jax.tree.map(lambda x: np.asarray(x[0]), tree)


def to_host(tree):
  """Collapses [devices, per_device, ...] outputs to [devices * per_device, ...] numpy."""
  return jax.tree.map(lambda x: np.asarray(x).reshape((-1,) + x.shape[2:]), tree)


def gather_batches(tree, num_batches: int):
  """Every process's per-example outputs [num_batches * rows, ...] -> the global batches' rows.

  Process i holds rows [i * B / n, (i + 1) * B / n) of each global batch of B
  (input_pipeline.host_slice); the result is [num_batches * B, ...] in the order
  of the global batches, the arrays one process with all devices would have.
  """
  if jax.process_count() == 1:
    return tree
  gathered = multihost_utils.process_allgather(tree)  # [processes, num_batches * rows, ...]

  def reorder(x):
    x = np.asarray(x)
    x = x.reshape((x.shape[0], num_batches, -1) + x.shape[2:])  # [P, batches, rows, ...]
    return np.swapaxes(x, 0, 1).reshape((-1,) + x.shape[3:])

  return jax.tree.map(reorder, gathered)
