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

# FaceMesh's left-right pairs over the whole mesh (468 landmarks: 220 pairs, the other 28
# on the midline, each its own mirror). Found by running FaceMesh on the seven built-in
# photos and 40 LFW crops and on their horizontal flips, averaging each set's shape (eye
# corners level, unit eye distance) and matching the two means by optimal assignment: an
# involution, every pair under 0.009 eye distances apart (tests/extraction/test_roi.py
# checks it on a real face and its flip).
# fmt: off
MESH_MIRROR_PAIRS = (
  (3, 248), (7, 249), (20, 250), (21, 251), (22, 252), (23, 253), (24, 254), (25, 255),
  (26, 256), (27, 257), (28, 258), (29, 259), (30, 260), (31, 261), (32, 262), (33, 263),
  (34, 264), (35, 265), (36, 266), (37, 267), (38, 268), (39, 269), (40, 270), (41, 271),
  (42, 272), (43, 273), (44, 274), (45, 275), (46, 276), (47, 277), (48, 278), (49, 279),
  (50, 280), (51, 281), (52, 282), (53, 283), (54, 284), (55, 285), (56, 286), (57, 287),
  (58, 288), (59, 289), (60, 290), (61, 291), (62, 292), (63, 293), (64, 294), (65, 295),
  (66, 296), (67, 297), (68, 298), (69, 299), (70, 300), (71, 301), (72, 302), (73, 303),
  (74, 304), (75, 305), (76, 306), (77, 307), (78, 308), (79, 309), (80, 310), (81, 311),
  (82, 312), (83, 313), (84, 314), (85, 315), (86, 316), (87, 317), (88, 318), (89, 319),
  (90, 320), (91, 321), (92, 322), (93, 323), (95, 324), (96, 325), (97, 326), (98, 327),
  (99, 328), (100, 329), (101, 330), (102, 331), (103, 332), (104, 333), (105, 334), (106, 335),
  (107, 336), (108, 337), (109, 338), (110, 339), (111, 340), (112, 341), (113, 342), (114, 343),
  (115, 344), (116, 345), (117, 346), (118, 347), (119, 348), (120, 349), (121, 350), (122, 351),
  (123, 352), (124, 353), (125, 354), (126, 355), (127, 356), (128, 357), (129, 358), (130, 359),
  (131, 360), (132, 361), (133, 362), (134, 363), (135, 364), (136, 365), (137, 366), (138, 367),
  (139, 368), (140, 369), (141, 370), (142, 371), (143, 372), (144, 373), (145, 374), (146, 375),
  (147, 376), (148, 377), (149, 378), (150, 379), (153, 380), (154, 381), (155, 382), (156, 383),
  (157, 384), (158, 385), (159, 386), (160, 387), (161, 388), (162, 389), (163, 390), (165, 391),
  (166, 392), (167, 393), (169, 394), (170, 395), (171, 396), (172, 397), (173, 398), (174, 399),
  (176, 400), (177, 401), (178, 402), (179, 403), (180, 404), (181, 405), (182, 406), (183, 407),
  (184, 408), (185, 409), (186, 410), (187, 411), (188, 412), (189, 413), (190, 414), (191, 415),
  (192, 416), (193, 417), (194, 418), (196, 419), (198, 420), (201, 421), (202, 422), (203, 423),
  (204, 424), (205, 425), (206, 426), (207, 427), (208, 428), (209, 429), (210, 430), (211, 431),
  (212, 432), (213, 433), (214, 434), (215, 435), (216, 436), (217, 437), (218, 438), (219, 439),
  (220, 440), (221, 441), (222, 442), (223, 443), (224, 444), (225, 445), (226, 446), (227, 447),
  (228, 448), (229, 449), (230, 450), (231, 451), (232, 452), (233, 453), (234, 454), (235, 455),
  (236, 456), (237, 457), (238, 458), (239, 459), (240, 460), (241, 461), (242, 462), (243, 463),
  (244, 464), (245, 465), (246, 466), (247, 467),
)
# fmt: on

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


def mesh_mirror() -> np.ndarray:
  """The mirror of every FaceMesh landmark: landmark i <-> landmark mirror[i].  # [468]"""
  mirror = np.arange(NUM_FACEMESH_LANDMARKS)
  for a, b in MESH_MIRROR_PAIRS:
    mirror[a], mirror[b] = b, a
  return mirror


def facemesh_mirror() -> dict[int, int]:
  """Returns the mirror of every ROI landmark, as FaceMesh index -> FaceMesh index."""
  mirror = mesh_mirror()
  return {i: int(mirror[i]) for i in ROI_INDICES}


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
  # Imported here: only extraction needs mediapipe, and only for this constant. The Tasks
  # API's FaceMesh topology: the legacy mp.solutions.face_mesh_connections' edges exactly
  # (mediapipe 0.10 has both; 1.x only this), so data sets agree whichever mediapipe made them.
  from mediapipe.tasks.python.vision.face_landmarker import FaceLandmarksConnections

  connections = {
    (c.start, c.end)
    for c in FaceLandmarksConnections.FACE_LANDMARKS_TESSELATION
    + FaceLandmarksConnections.FACE_LANDMARKS_LIPS
    + FaceLandmarksConnections.FACE_LANDMARKS_FACE_OVAL
  }
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
