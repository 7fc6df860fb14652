"""Every test session: the face landmarker's bundle from shared/, never the network."""

import os

from extraction import face_model

# MediaPipe's published bundle, kept beside the repository for machines without internet.
SHARED_BUNDLE = os.path.normpath(
  os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'models', face_model.FILE_NAME)
)


def pytest_configure(config):
  """Points LIPJAX_FACE_MODEL at the shared bundle, here and in every program a test runs."""
  del config  # the hook's argument; the setting is the environment's
  os.environ[face_model.ENV_VAR] = SHARED_BUNDLE
