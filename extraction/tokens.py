"""The token vocabulary of sentence data sets: characters with a CTC blank.

One module, one fact: extraction writes `encode`d utterances into shards (`tokens`,
`token_length`) and `TOKENS` into the metadata; lipjax trains its CTC head over
`NUM_TOKENS` outputs and turns decoded ids back into text with `decode`. Nothing
here imports JAX, so extraction imports it without one.

Token order (the id is the position in `TOKENS`):
  0       the CTC blank (optax.ctc_loss's default blank_id=0); never part of a text
  1       space, the word separator
  2..27   'a'..'z'
  28      apostrophe ("don't")
Texts are lower-cased. Digits and other symbols are refused: a transcript writes
numbers as the words spoken (GRID's 'two', not '2').
"""

import string

import numpy as np

BLANK = '<blank>'
TOKENS = (BLANK, ' ', *string.ascii_lowercase, "'")
NUM_TOKENS = len(TOKENS)
BLANK_ID = 0
SPACE_ID = 1

_IDS = {token: i for i, token in enumerate(TOKENS) if token != BLANK}


def encode(text: str) -> np.ndarray:
  """The token ids of a text, lower-cased.  # [L] int32"""
  ids = []
  for char in text.lower():
    if char not in _IDS:
      raise ValueError(
        f'cannot encode {char!r} in {text!r}: tokens are space, a-z and apostrophe; '
        'write numbers as words (two, not 2) and drop punctuation'
      )
    ids.append(_IDS[char])
  return np.asarray(ids, np.int32)


def decode(ids) -> str:
  """The text of token ids, blanks left out (repeats are kept: collapsing is CTC decoding's job)."""
  ids = np.asarray(ids, np.int64).reshape(-1)
  if ids.size and (ids.min() < 0 or ids.max() >= NUM_TOKENS):
    bad = ids[(ids < 0) | (ids >= NUM_TOKENS)]
    raise ValueError(f'token ids {bad.tolist()} are outside [0, {NUM_TOKENS})')
  return ''.join(TOKENS[i] for i in ids.tolist() if i != BLANK_ID)


def pad(ids, max_tokens: int) -> tuple[np.ndarray, int]:
  """Token ids padded with blanks to `max_tokens`, and their number.  # [max_tokens] int32"""
  ids = np.asarray(ids, np.int32)
  if ids.ndim != 1:
    raise ValueError(f'expected a 1-D sequence of token ids, got shape {ids.shape}')
  length = ids.shape[0]
  if length > max_tokens:
    raise ValueError(
      f'{decode(ids)!r} is {length} tokens, more than max_tokens={max_tokens}; '
      'raise max_tokens or cut the utterance'
    )
  # Padded with blanks, so decode(padded) == decode(ids).
  padded = np.full((max_tokens,), BLANK_ID, np.int32)
  padded[:length] = ids
  return padded, length


def ctc_min_frames(ids) -> int:
  """The fewest frames CTC needs to emit the ids: one per token, plus a blank between repeats."""
  ids = np.asarray(ids).reshape(-1)
  return int(ids.size + np.count_nonzero(ids[1:] == ids[:-1]))
