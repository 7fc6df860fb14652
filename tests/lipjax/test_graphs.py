"""Edge choices and GCN normalisation."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from lipjax import graphs
from lipjax import models


def test_normalized_adjacency_path_graph_by_hand():
  # Path 0 - 1 - 2 with self loops: degrees 2, 3, 2.
  senders, receivers = [0, 1, 1, 2], [1, 0, 2, 1]
  expected = np.array(
    [
      [1 / 2, 1 / np.sqrt(6), 0],
      [1 / np.sqrt(6), 1 / 3, 1 / np.sqrt(6)],
      [0, 1 / np.sqrt(6), 1 / 2],
    ]
  )
  np.testing.assert_allclose(
    graphs.normalized_adjacency(senders, receivers, 3), expected, rtol=1e-6
  )


def test_dense_gcn_equals_jraph_graph_convolution():
  rng = np.random.default_rng(0)
  senders, receivers = graphs.knn_index_edges(10, 4)
  for in_features, out_features in ((3, 8), (8, 4)):  # both aggregation orders
    nodes = jnp.asarray(rng.normal(size=(10, in_features)), jnp.float32)
    graph = jraph.GraphsTuple(
      nodes=nodes,
      edges=None,
      senders=jnp.asarray(senders),
      receivers=jnp.asarray(receivers),
      globals=None,
      n_node=jnp.array([10]),
      n_edge=jnp.array([len(senders)]),
    )
    reference = models.GCNLayer(out_features, impl='jraph')
    params = reference.init(jax.random.PRNGKey(0), graph)['params']
    # A non-zero bias: jraph adds it before aggregating, which the dense form must match.
    dense_params = {
      'kernel': {'kernel': params['Dense_0']['kernel']},
      'bias': params['Dense_0']['bias'] + 0.5,
    }
    shifted = {
      'Dense_0': {'kernel': params['Dense_0']['kernel'], 'bias': params['Dense_0']['bias'] + 0.5}
    }
    expected = reference.apply({'params': shifted}, graph).nodes
    actual = (
      models.GCNLayer(out_features, impl='dense').apply({'params': dense_params}, graph).nodes
    )
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_knn_index_is_the_seeds_index_neighbourhood():
  senders, receivers = graphs.knn_index_edges(5, 2)
  assert sorted(zip(senders.tolist(), receivers.tolist())) == [
    (0, 1),
    (1, 0),
    (1, 2),
    (2, 1),
    (2, 3),
    (3, 2),
    (3, 4),
    (4, 3),
  ]


def test_knn_distance_links_nearest_points_symmetrically():
  points = np.array([[0, 0, 0], [0.1, 0, 0], [1, 0, 0], [1.1, 0, 0]])
  senders, receivers = graphs.knn_distance_edges(points, 1)
  assert sorted(zip(senders.tolist(), receivers.tolist())) == [(0, 1), (1, 0), (2, 3), (3, 2)]


def test_edges_for_reads_metadata_and_rejects_unknown_modes(dataset):
  _, meta = dataset
  senders, receivers = graphs.edges_for(meta, 'anatomical')
  assert senders.tolist() == meta.senders and receivers.tolist() == meta.receivers
  knn_senders, _ = graphs.edges_for(meta, 'knn_distance', 4)
  assert len(knn_senders) > 0 and knn_senders.tolist() != meta.senders
  with pytest.raises(ValueError, match='model.edges'):
    graphs.edges_for(meta, 'delaunay')
