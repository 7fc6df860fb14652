"""The shard schema: what one example holds and what a data set's metadata says.

One module, one fact: extraction writes with `features()` and `DatasetMeta`,
`lipjax` reads with `DatasetMeta.load()` and the key names below. Nothing here
imports mediapipe, so a TPU host that only reads shards can import it.

Example (one record in a shard; T = max_frames, N = 88 nodes):
  landmarks    float32 [T, N, 3]  face-normalised coordinates in [0, 1], zero after `length`
  au           float32 [T, 18]    action-unit intensities in [0, 1] (features.AU_NAMES)
  geometry     float32 [T, 10]    geometric features in [0, 1] (features.GEOMETRY_NAMES)
  frame_mask   uint8   [T]        1 for real frames (t < length)
  face_mask    uint8   [T]        1 where FaceMesh found a face (else filled)
  speech_mask  uint8   [T]        1 inside the transcript's speech interval(s)
  length       int32              number of real frames
  label        class index        the word; names in the ClassLabel feature
  speaker      string             for speaker-independent splits and reports
  video_id     string             unique clip id, for error reports and predictions
A sentence data set (metadata `token_set` not empty) has, instead of `label`:
  tokens       int32   [K]        the utterance as token ids (extraction/tokens.py), 0 after
  token_length int32              its number of tokens
  text         string             the utterance
"""

import dataclasses
import json
from typing import Any

from etils import epath
import numpy as np

from extraction import features as features_lib
from extraction import roi
from extraction import tokens as tokens_lib

DATASET_NAME = 'lipjax'
SCHEMA_VERSION = '1.0.0'
SPLITS = ('train', 'val', 'test')
NUM_NODES = roi.NUM_NODES
NUM_AU = len(features_lib.AU_NAMES)
NUM_GEOMETRY = len(features_lib.GEOMETRY_NAMES)

# The reserved class of word spotting: a window with no vocabulary word at its centre
# (another word, a pause, or a word boundary). The generator writes it as an ordinary
# label (LRW folder name or manifest label); the stream never emits it. The leading
# underscore keeps it apart from real words, which are letters only.
BACKGROUND_LABEL = '_BACKGROUND_'

FRAME_KEYS = ('landmarks', 'au', 'geometry', 'frame_mask', 'face_mask', 'speech_mask')
# The per-frame arrays a clip's extraction produces (frame_mask is made when padding).
CLIP_KEYS = tuple(key for key in FRAME_KEYS if key != 'frame_mask')


def features(max_frames: int, class_names: list[str], max_tokens: int = 0):
  """Returns the tfds FeaturesDict that serialises and parses one example.

  max_tokens > 0: a sentence data set's (tokens, token_length and text in place of label).
  """
  import tensorflow_datasets as tfds

  def tensor(shape, dtype):
    return tfds.features.Tensor(shape=shape, dtype=dtype, encoding=tfds.features.Encoding.BYTES)

  t = max_frames
  spec = {
    'landmarks': tensor((t, NUM_NODES, 3), np.float32),
    'au': tensor((t, NUM_AU), np.float32),
    'geometry': tensor((t, NUM_GEOMETRY), np.float32),
    'frame_mask': tensor((t,), np.uint8),
    'face_mask': tensor((t,), np.uint8),
    'speech_mask': tensor((t,), np.uint8),
    'length': tfds.features.Scalar(dtype=np.int32),
    'speaker': tfds.features.Text(),
    'video_id': tfds.features.Text(),
  }
  if max_tokens:
    spec['tokens'] = tensor((max_tokens,), np.int32)
    spec['token_length'] = tfds.features.Scalar(dtype=np.int32)
    spec['text'] = tfds.features.Text()
  else:
    spec['label'] = tfds.features.ClassLabel(names=list(class_names))
  return tfds.features.FeaturesDict(spec)


def features_of(meta: 'DatasetMeta'):
  """The tfds FeaturesDict of a data set's examples, as its metadata describes them."""
  return features(meta.max_frames, meta.class_names, meta.max_tokens)


def pad_example(
  *,
  landmarks,
  au,
  geometry,
  face_mask,
  speech_mask,
  label,
  speaker,
  video_id,
  max_frames,
  text: str | None = None,
  max_tokens: int = 0,
) -> dict[str, Any]:
  """Pads per-frame arrays of length L <= max_frames to a schema example with masks.

  text (a sentence data set's, with max_tokens): stored as padded token ids, label ignored.
  """
  length = landmarks.shape[0]
  if length > max_frames:
    raise ValueError(f'{video_id}: {length} frames exceed max_frames={max_frames}; cut first')
  if length == 0:
    raise ValueError(f'{video_id}: no frames')

  def pad(x, dtype):
    out = np.zeros((max_frames,) + x.shape[1:], dtype)
    out[:length] = x
    return out

  example = {
    'landmarks': pad(landmarks, np.float32),
    'au': pad(au, np.float32),
    'geometry': pad(geometry, np.float32),
    'frame_mask': pad(np.ones(length), np.uint8),
    'face_mask': pad(face_mask, np.uint8),
    'speech_mask': pad(speech_mask, np.uint8),
    'length': np.int32(length),
    'speaker': str(speaker),
    'video_id': str(video_id),
  }
  if text is None:
    return dict(example, label=int(label))
  ids, token_length = tokens_lib.pad(tokens_lib.encode(text), max_tokens)
  return dict(example, tokens=ids, token_length=np.int32(token_length), text=text)


@dataclasses.dataclass
class DatasetMeta:
  """Everything a model needs to know about a data set besides its examples.

  Written into the data set's tfds metadata (metadata.json) by extraction, read
  back by training, copied into each workdir so prediction needs no data set.
  """

  class_names: list[str]
  max_frames: int
  fps: float
  roi_indices: list[int]
  mirror_perm: list[int]
  senders: list[int]
  receivers: list[int]
  au_names: list[str]
  geometry_names: list[str]
  # Mean landmark position per node over real frames of the train split [N][3];
  # only the distance-k-NN edge ablation uses it.
  mean_landmarks: list[list[float]]
  split_sizes: dict[str, int] = dataclasses.field(default_factory=dict)
  extraction: dict[str, Any] = dataclasses.field(default_factory=dict)
  schema_version: str = SCHEMA_VERSION
  # A sentence data set's tokens (extraction/tokens.py's TOKENS, id = position) and the
  # padded length of its `tokens`; empty and 0 for a word data set.
  token_set: list[str] = dataclasses.field(default_factory=list)
  max_tokens: int = 0

  @classmethod
  def for_roi(
    cls, *, class_names, max_frames: int, fps: float, senders, receivers, **fields
  ) -> 'DatasetMeta':
    """Metadata of a data set of this ROI and feature layout: the graph facts come from roi.py."""
    return cls(
      class_names=list(class_names),
      max_frames=int(max_frames),
      fps=float(fps),
      roi_indices=list(roi.ROI_INDICES),
      mirror_perm=roi.mirror_perm().tolist(),
      senders=[int(s) for s in senders],
      receivers=[int(r) for r in receivers],
      au_names=list(features_lib.AU_NAMES),
      geometry_names=list(features_lib.GEOMETRY_NAMES),
      **{'mean_landmarks': [], **fields},
    )

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def is_sentences(self) -> bool:
    """True for a sentence data set (utterances as tokens), False for words (class labels)."""
    return bool(self.token_set)

  @property
  def num_nodes(self) -> int:
    return len(self.roi_indices)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> 'DatasetMeta':
    known = {f.name for f in dataclasses.fields(cls)}
    missing = [
      f.name
      for f in dataclasses.fields(cls)
      if f.name not in d
      and f.default is dataclasses.MISSING
      and f.default_factory is dataclasses.MISSING
    ]
    if missing:
      raise ValueError(f'data set metadata lacks {missing}; was it written by lipjax extraction?')
    return cls(**{k: v for k, v in d.items() if k in known})

  def save_json(self, path) -> None:
    """Writes the metadata as JSON (a local path or a gs:// one: etils.epath)."""
    epath.Path(path).write_text(json.dumps(self.to_dict(), indent=1))

  @classmethod
  def load_json(cls, path) -> 'DatasetMeta':
    return cls.from_dict(json.loads(epath.Path(path).read_text()))

  @classmethod
  def load(cls, data_dir: str) -> 'DatasetMeta':
    """Reads the metadata of a data set written by extraction (tfds directory)."""
    import tensorflow_datasets as tfds

    if not epath.Path(data_dir, 'dataset_info.json').exists():  # gs:// data sets too
      raise FileNotFoundError(
        f'{data_dir}: no dataset_info.json; not a data set written by '
        '`python -m extraction` (or extraction has not finished all its shards)'
      )
    builder = tfds.builder_from_directory(data_dir)
    meta = dict(builder.info.metadata or {})
    features = builder.info.features
    meta['class_names'] = list(features['label'].names) if 'label' in features else []
    meta['split_sizes'] = {name: int(s.num_examples) for name, s in builder.info.splits.items()}
    return cls.from_dict(meta)

  def validate(self) -> None:
    """Raises ValueError if the graph facts are inconsistent."""
    n = self.num_nodes
    s, r = np.asarray(self.senders), np.asarray(self.receivers)
    if s.shape != r.shape or s.ndim != 1:
      raise ValueError('senders and receivers must be 1-D and of equal length')
    if s.size and (min(s.min(), r.min()) < 0 or max(s.max(), r.max()) >= n):
      raise ValueError(f'edge endpoints must lie in [0, {n})')
    if sorted(self.mirror_perm) != list(range(n)):
      raise ValueError('mirror_perm is not a permutation of the nodes')
