"""The mouth region of interest: which FaceMesh landmarks, their mirror, their edges.

This module is the one source of truth for the landmark graph. Extraction writes
`ROI_INDICES`, `mirror_perm()` and `anatomical_edges()` into every data set's
metadata; `lipjax` reads them from there and never rebuilds them.

The 88 nodes are a contiguous patch of FaceMesh's surface mesh:
  * all 40 lip landmarks of FaceMesh's lip contours (outer and inner),
  * the lip body joining them (37-72-38-13 and its mirror),
  * the jaw line from ear to ear along the face oval (454 ... 152 ... 234),
  * the chin midline from the lower lip to the chin (17-18-200-199-175-152),
  * cheek and chin vertices grown outward from that patch in mirror pairs.
The set was chosen once, offline, by growing the patch over the mesh; it is frozen
here as a literal so that data sets made at different times agree.

Node order is ascending FaceMesh index: node k is FaceMesh landmark ROI_INDICES[k].
"""

import numpy as np

NUM_FACEMESH_LANDMARKS = 468

ROI_INDICES = (
  0,
  13,
  14,
  17,
  18,
  37,
  38,
  39,
  40,
  58,
  61,
  72,
  78,
  80,
  81,
  82,
  84,
  87,
  88,
  91,
  93,
  95,
  132,
  136,
  146,
  148,
  149,
  150,
  152,
  164,
  169,
  172,
  175,
  176,
  178,
  181,
  185,
  191,
  194,
  199,
  200,
  201,
  207,
  210,
  211,
  212,
  214,
  216,
  234,
  267,
  268,
  269,
  270,
  288,
  291,
  302,
  308,
  310,
  311,
  312,
  314,
  317,
  318,
  321,
  323,
  324,
  361,
  365,
  375,
  377,
  378,
  379,
  394,
  397,
  400,
  402,
  405,
  409,
  415,
  418,
  421,
  427,
  430,
  431,
  432,
  434,
  436,
  454,
)
NUM_NODES = len(ROI_INDICES)  # 88

# Left-right pairs as FaceMesh indices (subject's right, subject's left); every
# ROI index not named here lies on the midline and is its own mirror. Measured by
# running FaceMesh on real faces and on their horizontal flips and matching the
# landmarks by optimal assignment (tests/extraction/test_roi.py repeats that check).
MIRROR_PAIRS = (
  (37, 267),
  (38, 268),
  (39, 269),
  (40, 270),
  (58, 288),
  (61, 291),
  (72, 302),
  (78, 308),
  (80, 310),
  (81, 311),
  (82, 312),
  (84, 314),
  (87, 317),
  (88, 318),
  (91, 321),
  (93, 323),
  (95, 324),
  (132, 361),
  (136, 365),
  (146, 375),
  (148, 377),
  (149, 378),
  (150, 379),
  (169, 394),
  (172, 397),
  (176, 400),
  (178, 402),
  (181, 405),
  (185, 409),
  (191, 415),
  (194, 418),
  (201, 421),
  (207, 427),
  (210, 430),
  (211, 431),
  (212, 432),
  (214, 434),
  (216, 436),
  (234, 454),
)

# Landmarks outside the ROI that normalisation and features need (FaceMesh indices).
RIGHT_EYE_OUTER = 33
LEFT_EYE_OUTER = 263
NOSE_TIP = 1
SUBNASALE = 2  # where the nose meets the upper lip


def node(facemesh_index: int) -> int:
  """Returns the ROI node number of a FaceMesh landmark (ValueError if outside)."""
  try:
    return ROI_INDICES.index(facemesh_index)
  except ValueError:
    raise ValueError(f'FaceMesh landmark {facemesh_index} is not in the mouth ROI') from None


def facemesh_mirror() -> dict[int, int]:
  """Returns the mirror of every ROI landmark, as FaceMesh index -> FaceMesh index."""
  mirror = {i: i for i in ROI_INDICES}
  for right, left in MIRROR_PAIRS:
    mirror[right], mirror[left] = left, right
  return mirror


def mirror_perm() -> np.ndarray:
  """Returns the node permutation of a horizontal flip: node k <-> node perm[k].  # [N]"""
  mirror = facemesh_mirror()
  return np.array([node(mirror[i]) for i in ROI_INDICES], dtype=np.int32)


def anatomical_edges() -> tuple[np.ndarray, np.ndarray]:
  """Returns (senders, receivers) of the ROI's anatomical graph, both directions.

  The edges are FaceMesh's surface triangulation plus its lip and face-oval
  contours, restricted to the ROI and closed under the mirror (FaceMesh's mesh is
  symmetric but for six edges, so flip augmentation stays exact). Sorted by
  (sender, receiver), so the list is deterministic.
  """
  # Imported here: only extraction needs mediapipe, and only for this constant.
  from mediapipe.python.solutions import face_mesh_connections

  connections = (
    face_mesh_connections.FACEMESH_TESSELATION
    | face_mesh_connections.FACEMESH_LIPS
    | face_mesh_connections.FACEMESH_FACE_OVAL
  )
  mirror = facemesh_mirror()
  roi = set(ROI_INDICES)
  undirected = set()
  for a, b in connections:
    if a in roi and b in roi and a != b:
      for u, v in ((a, b), (mirror[a], mirror[b])):
        undirected.add((node(u), node(v)))
  directed = sorted(undirected | {(v, u) for u, v in undirected})
  senders = np.array([s for s, _ in directed], dtype=np.int32)  # [E]
  receivers = np.array([r for _, r in directed], dtype=np.int32)  # [E]
  return senders, receivers
