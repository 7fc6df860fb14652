"""Makes TensorFlow uninstalled for this process: on PYTHONPATH, `import tensorflow` fails.

As on a host without TensorFlow, `importlib.util.find_spec('tensorflow')` is None
(etils and tfds ask it to decide whether to use TensorFlow).
"""

import sys


class _HideTensorFlow:
  """Wraps a meta path finder so that it finds no tensorflow package or module of one."""

  def __init__(self, finder):
    self._finder = finder

  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] == 'tensorflow':
      return None
    find_spec = getattr(self._finder, 'find_spec', None)
    return find_spec(name, path, target) if find_spec else None

  def invalidate_caches(self):
    getattr(self._finder, 'invalidate_caches', lambda: None)()


sys.meta_path[:] = [_HideTensorFlow(finder) for finder in sys.meta_path]
