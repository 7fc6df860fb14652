"""The per-frame landmark graph: which edges, how they are normalised, GraphsTuple plumbing.

The anatomical edges come from the data set's metadata (extraction/roi.py wrote
them); the k-NN variants exist only as config-selectable ablations. Everything
here is a pure function of numpy/jax arrays.
"""

import jraph
import numpy as np

EDGE_MODES = ('anatomical', 'knn_distance', 'knn_index')


def symmetrize(senders: np.ndarray, receivers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Returns the sorted, self-loop-free, both-directions version of an edge list."""
  pairs = {(int(s), int(r)) for s, r in zip(senders, receivers) if s != r}
  pairs |= {(r, s) for s, r in pairs}
  ordered = sorted(pairs)
  return (
    np.array([s for s, _ in ordered], np.int32),  # [E]
    np.array([r for _, r in ordered], np.int32),
  )  # [E]


def knn_distance_edges(mean_landmarks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """Links every node to its k nearest nodes in mean 3-D position (symmetrised)."""
  points = np.asarray(mean_landmarks, np.float64)  # [N, 3]
  if points.ndim != 2 or len(points) < 2:
    raise ValueError(f'knn_distance edges need mean_landmarks [N, 3], got shape {points.shape}')
  distance = np.linalg.norm(points[:, None] - points[None], axis=-1)  # [N, N]
  np.fill_diagonal(distance, np.inf)
  nearest = np.argsort(distance, axis=1, kind='stable')[:, :k]  # [N, k]
  senders = np.repeat(np.arange(len(points)), nearest.shape[1])
  return symmetrize(senders, nearest.reshape(-1))


def knn_index_edges(num_nodes: int, k: int) -> tuple[np.ndarray, np.ndarray]:
  """The seed's graph: node i linked to the k nodes nearest in index (|i - j| <= k // 2)."""
  senders, receivers = [], []
  for i in range(num_nodes):
    for offset in range(1, max(k // 2, 1) + 1):
      if i + offset < num_nodes:
        senders.append(i)
        receivers.append(i + offset)
  return symmetrize(np.array(senders), np.array(receivers))


def ring_edges(num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
  """A connected graph for random data in tests and benchmarks: i -- i+1 and i -- i+7 (mod N)."""
  pairs = sorted(
    {(i, (i + d) % num_nodes) for i in range(num_nodes) for d in (1, 7)}
    | {((i + d) % num_nodes, i) for i in range(num_nodes) for d in (1, 7)}
  )
  return (np.array([s for s, _ in pairs], np.int32), np.array([r for _, r in pairs], np.int32))


def edges_for(meta, mode: str, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
  """Returns (senders, receivers) for an edge mode, from a DatasetMeta."""
  if mode == 'anatomical':
    if not meta.senders:
      raise ValueError('data set metadata has no senders/receivers; re-run extraction')
    return np.asarray(meta.senders, np.int32), np.asarray(meta.receivers, np.int32)
  if mode == 'knn_distance':
    return knn_distance_edges(np.asarray(meta.mean_landmarks), k)
  if mode == 'knn_index':
    return knn_index_edges(meta.num_nodes, k)
  raise ValueError(f'config model.edges={mode!r}; expected one of {EDGE_MODES}')


def normalized_adjacency(senders, receivers, num_nodes: int):
  """D^-1/2 (A + I) D^-1/2 as a dense matrix, row = receiver, column = sender.  # [N, N]

  The same operator as jraph.GraphConvolution(add_self_edges=True,
  symmetric_normalization=True): sender-side and receiver-side degrees count
  the self loop. Computed in numpy from the static edge list, so it is a constant
  of the traced program (no scatter ops: TFLite has none for it).
  """
  self_loops = np.arange(num_nodes)
  senders = np.concatenate([np.asarray(senders, np.int64), self_loops])
  receivers = np.concatenate([np.asarray(receivers, np.int64), self_loops])
  sender_degree = np.bincount(senders, minlength=num_nodes).astype(np.float32)
  receiver_degree = np.bincount(receivers, minlength=num_nodes).astype(np.float32)
  adjacency = np.zeros((num_nodes, num_nodes), np.float32)
  np.add.at(adjacency, (receivers, senders), 1.0)
  return (
    adjacency
    * np.sqrt(1.0 / np.maximum(receiver_degree, 1.0))[:, None]
    * np.sqrt(1.0 / np.maximum(sender_degree, 1.0))[None, :]
  )


def frame_graphs(nodes, globals_, senders, receivers) -> jraph.GraphsTuple:
  """Wraps frames' node features [F, N, D] and globals [F, G] as F single-graph GraphsTuples.

  Leading axes are frames (FRAME_GRAPH_AXES); the topology is stored once.
  """
  return jraph.GraphsTuple(
    nodes=nodes,
    edges=None,
    # numpy, not jnp: the topology stays a trace-time constant (see normalized_adjacency).
    senders=np.asarray(senders, np.int32),
    receivers=np.asarray(receivers, np.int32),
    globals=globals_[:, None, :],  # [F, 1, G]: one graph per frame
    n_node=np.array([nodes.shape[1]]),
    n_edge=np.array([len(senders)]),
  )


# nn.vmap axes of a batch of frame graphs: features vary per frame, topology is shared.
FRAME_GRAPH_AXES = jraph.GraphsTuple(
  nodes=0, edges=None, senders=None, receivers=None, globals=0, n_node=None, n_edge=None
)
