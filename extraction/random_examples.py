"""Made-up landmark clips written as real shards: data sets for tests and benchmarks, no video.

Words (`write_dataset`): each clip's mouth opens and closes at its word's own rate
(label + 1 cycles per 8 frames, on half of the nodes) around one fixed face, with
small landmark noise; AU features carry a weak word-dependent offset. So a model
can learn the words from a few dozen examples, and the data are shaped exactly
like extraction's (schema.py): T frames, lengths 60-100% of T, speech inside.

Sentences (`write_sentence_dataset`): a few words of SENTENCE_WORDS in a row, with
still frames before, between and after; while word k is spoken its own quarter of
the nodes moves at its own rate and AU feature k is raised. The text is the
words, the speech mask their span: a sentence data set as extraction writes one
(tokens, token_length and text, no label), which CTC learns in a few hundred steps.
"""

import dataclasses
import os
import zlib

import numpy as np
import tqdm

from extraction import clip
from extraction import roi
from extraction import schema
from extraction import shards
from extraction import tokens

# The made-up sentences' vocabulary; word k moves node quarter k (so at most 4 words).
SENTENCE_WORDS = ('bin', 'red', 'at', 'now')
SENTENCE_MAX_WORDS = 3


def face() -> np.ndarray:
  """The one face every made-up clip moves.  # [N, 3]"""
  return 0.3 + 0.4 * np.random.default_rng(0).random((schema.NUM_NODES, 3))


def example(rng, label: int, speaker: str, video_id: str, max_frames: int) -> dict:
  """One padded example of word `label`."""
  length = int(rng.integers(max(max_frames * 3 // 5, 2), max_frames + 1))
  base = face()
  t = np.arange(length)[:, None]
  opening = 0.05 * np.sin(2 * np.pi * (label + 1) * t / 8.0)  # [L, 1]
  landmarks = np.repeat(base[None], length, axis=0)  # [L, N, 3]
  landmarks[:, : schema.NUM_NODES // 2, 1] += opening
  landmarks += rng.normal(0, 0.004, landmarks.shape)
  au = np.clip(0.3 + 0.1 * label + rng.normal(0, 0.1, (length, schema.NUM_AU)), 0, 1)
  geometry = np.clip(0.5 + rng.normal(0, 0.1, (length, schema.NUM_GEOMETRY)), 0, 1)
  speech = np.zeros(length)
  speech[1 : length - 1] = 1
  return schema.pad_example(
    landmarks=landmarks.astype(np.float32),
    au=au,
    geometry=geometry,
    face_mask=np.ones(length),
    speech_mask=speech,
    label=label,
    speaker=speaker,
    video_id=video_id,
    max_frames=max_frames,
  )


def example_at(split: str, i: int, num_classes: int, num_speakers: int, max_frames: int, seed: int):
  """Example i of a split: word i % num_classes, speaker i % num_speakers, its own random draws."""
  rng = np.random.default_rng([seed, zlib.crc32(split.encode()), i])
  return example(rng, i % num_classes, f'spk{i % num_speakers}', f'{split}_{i:06d}', max_frames)


def sentence_example(rng, speaker: str, video_id: str, max_frames: int) -> dict:
  """One padded made-up sentence: 1 to SENTENCE_MAX_WORDS words with still frames around them."""
  count = int(rng.integers(1, SENTENCE_MAX_WORDS + 1))
  words = [int(k) for k in rng.integers(0, len(SENTENCE_WORDS), count)]
  spans, t = [], int(rng.integers(2, 5))  # still frames before the first word
  for _ in words:
    duration = int(rng.integers(6, 9))
    spans.append((t, t + duration))
    t += duration + int(rng.integers(0, 2))  # a still frame between two words, or none
  length = min(t + int(rng.integers(2, 5)), max_frames)
  if spans[-1][1] > length:
    raise ValueError(f'max_frames={max_frames} cannot hold {count} made-up words; give >= 30')
  base = face()
  landmarks = np.repeat(base[None], length, axis=0)  # [L, N, 3]
  au = np.full((length, schema.NUM_AU), 0.2)  # [L, A]
  quarter = schema.NUM_NODES // 4
  for k, (start, end) in zip(words, spans):
    frames = np.arange(end - start)[:, None]
    opening = 0.05 * np.sin(2 * np.pi * (k + 1) * (frames + 1) / 8.0)  # [D, 1]
    landmarks[start:end, k * quarter : (k + 1) * quarter, 1] += opening
    au[start:end, k] = 0.8
  landmarks += rng.normal(0, 0.004, landmarks.shape)
  au = np.clip(au + rng.normal(0, 0.05, au.shape), 0, 1)
  geometry = np.clip(0.5 + rng.normal(0, 0.1, (length, schema.NUM_GEOMETRY)), 0, 1)
  speech = np.zeros(length)
  speech[spans[0][0] : spans[-1][1]] = 1
  return schema.pad_example(
    landmarks=landmarks.astype(np.float32),
    au=au,
    geometry=geometry,
    face_mask=np.ones(length),
    speech_mask=speech,
    label=0,
    speaker=speaker,
    video_id=video_id,
    max_frames=max_frames,
    text=' '.join(SENTENCE_WORDS[k] for k in words),
    max_tokens=sentence_max_tokens(),
  )


def sentence_max_tokens() -> int:
  """The most tokens a made-up sentence spells: its longest words, spaces between."""
  return SENTENCE_MAX_WORDS * max(map(len, SENTENCE_WORDS)) + SENTENCE_MAX_WORDS - 1


def sentence_example_at(split: str, i: int, num_speakers: int, max_frames: int, seed: int):
  """Sentence i of a split: speaker i % num_speakers, its own random draws."""
  rng = np.random.default_rng([seed, zlib.crc32(f'sentences/{split}'.encode()), i])
  return sentence_example(rng, f'spk{i % num_speakers}', f'{split}_{i:06d}', max_frames)


def write_dataset(
  data_dir: str,
  split_sizes: dict[str, int],
  class_names: list[str],
  max_frames: int,
  *,
  num_shards: int = 1,
  num_speakers: int = 4,
  edges: tuple | None = None,
  file_format: str = shards.ARRAY_RECORD,
  seed: int = 0,
  progress: bool = False,
  sentences: bool = False,
) -> schema.DatasetMeta:
  """Writes made-up splits as shards + tfds metadata, one shard at a time; returns the metadata.

  Example i of a split is word i % len(class_names) of speaker spk{i % num_speakers},
  video id {split}_{i:06d}, drawn from its own random stream (seed, split, i); shard k
  holds examples k, k + num_shards, ... as shards.write_dataset deals them. edges:
  (senders, receivers), default the ROI's anatomical graph. sentences: made-up
  sentences instead (class_names must be empty; write_sentence_dataset).
  """
  if sentences and class_names:
    raise ValueError('a sentence data set has no classes; pass class_names=[]')
  os.makedirs(data_dir, exist_ok=True)
  senders, receivers = edges if edges is not None else roi.anatomical_edges()
  max_tokens = sentence_max_tokens() if sentences else 0
  meta = schema.DatasetMeta.for_roi(
    class_names=class_names,
    max_frames=max_frames,
    fps=25.0,
    senders=senders,
    receivers=receivers,
    mean_landmarks=face().tolist(),  # the clips' mean shape, but for the mouth's movement
    # No tracker made these landmarks: a video read for such a model is tracked with the
    # default tracker (facemesh.tracker_for_video), cut to the clips' length.
    extraction={
      'source': 'extraction/random_examples.py',
      'settings': dataclasses.asdict(
        clip.Settings(max_frames=max_frames, landmarks=clip.LANDMARK_FILE)
      ),
    },
    **({'token_set': list(tokens.TOKENS), 'max_tokens': max_tokens} if sentences else {}),
  )
  spec = schema.features(max_frames, meta.class_names, max_tokens)
  lengths, sizes = {}, {}
  jobs = [
    (split, index) for split, size in split_sizes.items() if size for index in range(num_shards)
  ]
  for split, index in tqdm.tqdm(jobs, desc='writing shards', disable=not progress):
    examples = (
      sentence_example_at(split, i, num_speakers, max_frames, seed)
      if sentences
      else example_at(split, i, len(class_names), num_speakers, max_frames, seed)
      for i in range(index, split_sizes[split], num_shards)
    )
    count, num_bytes = shards.write_shard(
      shards.shard_path(data_dir, split, index, num_shards, file_format), examples, spec
    )
    lengths.setdefault(split, []).append(count)
    sizes[split] = sizes.get(split, 0) + num_bytes
  shards.write_metadata(data_dir, meta, lengths, sizes, file_format)
  return schema.DatasetMeta.load(data_dir)


def write_sentence_dataset(
  data_dir: str, split_sizes: dict[str, int], max_frames: int = 36, **options
) -> schema.DatasetMeta:
  """Writes made-up sentence splits (sentence_example) as write_dataset writes words."""
  return write_dataset(data_dir, split_sizes, [], max_frames, sentences=True, **options)
