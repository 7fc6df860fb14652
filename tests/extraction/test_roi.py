"""The ROI, its mirror permutation and its anatomical edges."""

import hashlib
import os

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph

from extraction import roi


def test_roi_has_88_unique_nodes_including_every_lip_landmark():
  from mediapipe.tasks.python.vision.face_landmarker import FaceLandmarksConnections

  lips = {i for c in FaceLandmarksConnections.FACE_LANDMARKS_LIPS for i in (c.start, c.end)}
  assert roi.NUM_NODES == 88 == len(set(roi.ROI_INDICES))
  assert len(lips) == 40 and lips <= set(roi.ROI_INDICES)
  assert list(roi.ROI_INDICES) == sorted(roi.ROI_INDICES)


def test_mirror_perm_is_an_involution_that_keeps_midline_nodes():
  perm = roi.mirror_perm()
  np.testing.assert_array_equal(perm[perm], np.arange(roi.NUM_NODES))
  assert perm[roi.node(0)] == roi.node(0)  # upper lip midline
  assert perm[roi.node(152)] == roi.node(152)  # chin
  assert perm[roi.node(61)] == roi.node(291)  # mouth corners swap


def test_edges_are_connected_undirected_within_roi_and_mirror_symmetric():
  senders, receivers = roi.anatomical_edges()
  n = roi.NUM_NODES
  assert senders.min() >= 0 and max(senders.max(), receivers.max()) < n
  edges = set(zip(senders.tolist(), receivers.tolist()))
  assert all((r, s) in edges for s, r in edges), 'both directions stored'
  assert all(s != r for s, r in edges), 'no self loops'
  perm = roi.mirror_perm()
  assert all((perm[s], perm[r]) in edges for s, r in edges)
  adjacency = scipy.sparse.coo_matrix((np.ones(len(senders)), (senders, receivers)), shape=(n, n))
  assert scipy.sparse.csgraph.connected_components(adjacency, directed=False)[0] == 1


def test_edges_are_the_ones_every_data_set_has_carried():
  # Data sets made at different times, under mediapipe 0.10 (its legacy FaceMesh topology)
  # and 1.x (the Tasks API's), must agree: 224 directed edges, these bytes.
  senders, receivers = roi.anatomical_edges()
  assert senders.dtype == receivers.dtype == np.int32 and len(senders) == 224
  digest = hashlib.sha256(senders.tobytes() + receivers.tobytes()).hexdigest()
  assert digest == '9f91b1356f3d49f47f0b3794e08244391c048dba218160aa5781a88dc00e6754'


def test_edges_are_not_index_space_neighbours():
  senders, receivers = roi.anatomical_edges()
  # The seed linked nodes by index distance; anatomical edges mostly do not.
  assert np.mean(np.abs(senders - receivers) == 1) < 0.3


def _tracker(name):
  """One of the two trackers, plain (no mirror averaging); the legacy one needs mediapipe < 1."""
  from extraction import face_model
  from extraction import facemesh

  if name == 'landmarker':
    return facemesh.FaceLandmarkerTracker(face_model.resolve(), mirror_average=False)
  if not facemesh.legacy_facemesh_installed():
    pytest.skip('mediapipe >= 1 has no legacy FaceMesh')
  return facemesh.FaceMeshTracker(mirror_average=False)


@pytest.mark.parametrize('tracker_name', ['facemesh', 'landmarker'])
def test_mirror_pairs_match_facemesh_on_a_flipped_real_face(tracker_name):
  import cv2
  import skimage

  image = cv2.imread(os.path.join(os.path.dirname(skimage.__file__), 'data', 'astronaut.png'))
  image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
  # One estimate per image: a mirror-averaged tracker is symmetric under its own table by
  # construction, whatever the table says, so it could not check it.
  with _tracker(tracker_name) as tracker:
    points, found = tracker.landmarks(image[None])
    flipped, found_flipped = tracker.landmarks(image[None, :, ::-1].copy())
  assert found.all() and found_flipped.all()
  flipped[..., 0] = image.shape[1] - flipped[..., 0]
  rois = np.array(roi.ROI_INDICES)
  mirrored = rois[roi.mirror_perm()]
  # Landmark i of the face sits where landmark mirror(i) of the flipped face sits.
  error = np.linalg.norm(points[0, rois, :2] - flipped[0, mirrored, :2], axis=-1)
  face_size = np.ptp(points[0, :, :2], axis=0).max()
  assert error.max() / face_size < 0.04
  wrong = np.linalg.norm(points[0, rois, :2] - flipped[0, rois, :2], axis=-1)
  assert wrong.max() / face_size > 0.2  # without the mirror the match is far off
  # The whole mesh's mirror too: an involution, and every landmark where its mirror lands.
  mirror = roi.mesh_mirror()
  np.testing.assert_array_equal(mirror[mirror], np.arange(roi.NUM_FACEMESH_LANDMARKS))
  error = np.linalg.norm(points[0, :, :2] - flipped[0, mirror, :2], axis=-1)
  assert error.max() / face_size < 0.04
  assert {i: int(mirror[i]) for i in roi.ROI_INDICES} == roi.facemesh_mirror()


def test_node_rejects_landmark_outside_roi():
  with pytest.raises(ValueError, match='not in the mouth ROI'):
    roi.node(33)
