"""The face landmarker's model bundle: finds `face_landmarker.task` and checks it.

MediaPipe's Face Landmarker (facemesh.FaceLandmarkerTracker) reads its models from
a bundle that the mediapipe wheel does not ship. `resolve` finds it, in this order:
  1. the path a user gives (`--face_model PATH`),
  2. the environment variable LIPJAX_FACE_MODEL,
  3. the user cache, $XDG_CACHE_HOME/lipjax/face_landmarker.task (~/.cache/... by default),
  4. else a download from MediaPipe's published URL into that cache, once.

What is checked where: a bundle in the cache or fresh from the URL must be exactly the
one MediaPipe published (its size and SHA-256), because nobody chose that file but us: a
truncated download or a stale file gets one error saying to delete it. A bundle a user
names (1, 2) may be any bundle MediaPipe can load, such as a newer version or one of
their own; it is only checked to be an intact, uncompressed model bundle holding a face
detector and a landmark model, so that a wrong or damaged file fails here with its name,
not inside MediaPipe (which runs a bundle with damaged bytes without a word: the zip's
checksums catch them). Which bundle made a data set is told by `digest`, for its
metadata to record. A path a user gives never leads to the network.
"""

import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile

URL = (
  'https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/'
  'float16/1/face_landmarker.task'
)
SHA256 = '64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff'
SIZE = 3_758_596
FILE_NAME = 'face_landmarker.task'
ENV_VAR = 'LIPJAX_FACE_MODEL'
# The two models every face landmarker bundle holds (MediaPipe's graph looks them up by name).
MEMBERS = ('face_detector.tflite', 'face_landmarks_detector.tflite')
EXPECTED = f"MediaPipe's {FILE_NAME} float16 v1 ({SIZE:,} bytes, SHA-256 {SHA256})"
_DOWNLOAD_TIMEOUT_SECONDS = 60


class FaceModelError(ValueError):
  """A face landmarker bundle that cannot be used; the message names the file and what to do."""


def digest(path: str) -> str:
  """The SHA-256 of a file, as lowercase hex."""
  sha = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      sha.update(block)
  return sha.hexdigest()


def cache_path() -> str:
  """Where the downloaded bundle lives: $XDG_CACHE_HOME/lipjax/face_landmarker.task."""
  base = os.environ.get('XDG_CACHE_HOME', '')
  if not os.path.isabs(base):  # unset, empty or relative: the XDG spec says use ~/.cache
    base = os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'lipjax', FILE_NAME)


def resolve(path: str | None = None) -> str:
  """The absolute path of the face landmarker bundle to use (see the module docstring)."""
  for given, origin in (
    (path, 'given by --face_model'),
    (os.environ.get(ENV_VAR), f'named by {ENV_VAR}'),
  ):
    if given:
      given = os.path.abspath(os.path.expanduser(given))
      check_bundle(given, origin)
      return given
  cached = cache_path()
  if not os.path.exists(cached):
    download(URL, cached)
  check_official(cached)
  return cached


def check_bundle(path: str, origin: str = '') -> None:
  """Raises FaceModelError unless `path` is an intact model bundle with a face landmarker's models."""
  where = f' ({origin})' if origin else ''
  hint = f'expected a face landmarker bundle such as {EXPECTED}, from {URL}'
  if not os.path.isfile(path):
    what = 'not a file' if os.path.exists(path) else 'no such file'
    raise FaceModelError(f'{path}: {what}{where}; {hint}')
  try:
    with zipfile.ZipFile(path) as bundle:
      members = {info.filename: info for info in bundle.infolist()}
      # MediaPipe loads a member whose bytes were damaged without noticing; the CRCs do.
      damaged = bundle.testzip()
  except (zipfile.BadZipFile, OSError, EOFError) as error:
    raise FaceModelError(
      f'{path}: not a MediaPipe model bundle ({error}; {os.path.getsize(path):,} bytes){where}; '
      f'{hint}'
    ) from error
  if damaged is not None:
    raise FaceModelError(f'{path}: damaged bundle, {damaged} fails its checksum{where}; {hint}')
  missing = [name for name in MEMBERS if name not in members]
  if missing:
    raise FaceModelError(
      f'{path}: a model bundle without {", ".join(missing)}, so not a face landmarker{where}; '
      f'{hint}'
    )
  compressed = [name for name, info in members.items() if info.compress_type != zipfile.ZIP_STORED]
  if compressed:  # MediaPipe refuses those: "Expected uncompressed zip archive."
    raise FaceModelError(
      f'{path}: {", ".join(compressed)} compressed, and MediaPipe reads only uncompressed '
      f'bundles (zip -0){where}; {hint}'
    )


def check_official(path: str) -> None:
  """Raises FaceModelError unless `path` holds exactly MediaPipe's published bundle."""
  problem = _unofficial(path)
  if problem:
    raise FaceModelError(f'{path}: {problem}; delete it or pass --face_model')


def download(url: str, destination: str) -> None:
  """Downloads the official bundle to `destination`, atomically, after checking it."""
  directory = os.path.dirname(destination)
  logging.info('downloading the face landmarker bundle from %s to %s', url, destination)
  try:
    os.makedirs(directory, exist_ok=True)
    # A partial file beside the destination, renamed only once complete and checked: an
    # interrupted download, or two processes downloading at once, never leave a bad bundle.
    handle, partial = tempfile.mkstemp(prefix=f'.{FILE_NAME}.', suffix='.part', dir=directory)
  except OSError as error:
    raise FaceModelError(
      f'{directory}: cannot save the face landmarker bundle there ({error}); '
      f'pass --face_model PATH (or set {ENV_VAR}) to a copy of {URL}'
    ) from error
  try:
    with os.fdopen(handle, 'wb') as out:
      try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_SECONDS) as response:
          shutil.copyfileobj(response, out)
      except (OSError, http.client.HTTPException, ValueError) as error:
        raise FaceModelError(
          f'cannot download the face landmarker bundle from {url} ({error}); download it '
          f'yourself and save it as {destination}, or pass --face_model PATH (or set {ENV_VAR})'
        ) from error
    problem = _unofficial(partial)
    if problem:
      raise FaceModelError(f'{url}: downloaded {problem}; nothing was saved to {destination}')
    os.replace(partial, destination)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


def _unofficial(path: str) -> str | None:
  """What sets `path` apart from MediaPipe's published bundle, or None if it is that bundle."""
  size, found = os.path.getsize(path), digest(path)
  if size == SIZE and found == SHA256:
    return None
  return f'{size:,} bytes, SHA-256 {found[:12]}...; expected {EXPECTED}'
