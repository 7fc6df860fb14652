"""The sentence reader outside its network: the CTC loss, and texts read from log-probabilities.

Training and evaluation take the loss from `ctc_loss`; evaluation, `lipjax.evaluate`
and `lipjax.predict` turn per-frame log-probabilities into texts with `read`, by a
named decoder ('greedy' or 'beam', lipjax/decoding.py) and, for beam search, an
optional lexicon (`read_lexicon`, a file of words) or grammar (`GRAMMARS`, by name).
Texts on both sides of a WER or CER are `tokens.decode`d ids, so they are compared
in one normalised form (lower case, single spaces). `define_flags` gives
`lipjax.evaluate` and `lipjax.predict` the same decoding flags.
"""

from etils import epath
import numpy as np

from extraction import grid
from extraction import tokens
from lipjax import decoding

DECODERS = ('greedy', 'beam')
# Grammars by the name a command line gives: one word of each slot, in order.
GRAMMARS = {'grid': grid.GRAMMAR}


def ctc_loss(logits, frame_mask, token_ids, token_length):
  """Per-utterance CTC loss of per-frame logits [B, T, K] against padded token ids [B, L].  # [B]

  Frames where frame_mask is 0 and tokens at or past token_length are padding;
  the blank is extraction/tokens.py's. An utterance with no frames and no tokens
  (an evaluation batch's padding) costs 0.
  """
  # Imported here: decoding, which the command lines' flags reach, needs no JAX.
  import jax.numpy as jnp
  import optax

  logit_paddings = 1.0 - jnp.asarray(frame_mask, jnp.float32)  # [B, T]
  positions = jnp.arange(token_ids.shape[1])
  label_paddings = (positions[None, :] >= jnp.asarray(token_length)[:, None]).astype(jnp.float32)
  return optax.ctc_loss(
    logits, logit_paddings, token_ids, label_paddings, blank_id=tokens.BLANK_ID
  )  # [B]


def reference_texts(token_ids, token_length) -> list[str]:
  """The texts of padded token ids [B, L] with their lengths [B]."""
  return [tokens.decode(ids[:n]) for ids, n in zip(np.asarray(token_ids), np.asarray(token_length))]


def read_lexicon(path: str) -> tuple[str, ...]:
  """The words of a lexicon file: one a line, blank lines and `#` comments skipped, lower-cased.

  Raises ValueError naming the file and line of a word the tokens cannot spell.
  """
  file = epath.Path(path)
  if not file.exists():
    raise FileNotFoundError(f'lexicon {path} does not exist; give a file of words, one a line')
  words = []
  for number, line in enumerate(file.read_text().splitlines(), 1):
    word = line.split('#', 1)[0].strip().lower()
    if not word:
      continue
    if len(word.split()) > 1:
      raise ValueError(f'{path}:{number}: {line.strip()!r} holds a space; one word a line')
    try:
      tokens.encode(word)
    except ValueError as error:
      raise ValueError(f'{path}:{number}: {error}') from None
    words.append(word)
  if not words:
    raise ValueError(f'lexicon {path} holds no words')
  return tuple(sorted(set(words)))


def grammar_named(name: str):
  """The grammar called `name` (GRAMMARS): a sequence of slots, each a collection of words."""
  if name not in GRAMMARS:
    raise ValueError(f'no grammar {name!r}; known: {", ".join(sorted(GRAMMARS))}')
  return GRAMMARS[name]


def read(
  log_probs, lengths, decoder: str = 'greedy', beam_width: int = 16, lexicon=None, grammar=None
) -> list[str]:
  """The text of each utterance of per-frame log-probabilities [B, T, K] with lengths [B].

  decoder: 'greedy' (best path) or 'beam' (prefix beam search, constrained by a
  lexicon or a grammar when one is given; greedy takes neither). An utterance
  with fewer frames than any reading of the grammar needs reads as nothing.
  """
  if decoder not in DECODERS:
    raise ValueError(f'decoder {decoder!r}; expected one of {DECODERS}')
  if decoder == 'greedy':
    if lexicon is not None or grammar is not None:
      raise ValueError('a lexicon or grammar constrains beam search; greedy decoding takes neither')
    ids = decoding.greedy_batch(log_probs, lengths)
  else:
    log_probs, lengths = np.asarray(log_probs), np.asarray(lengths).reshape(-1)
    if log_probs.ndim != 3 or len(log_probs) != len(lengths):
      raise ValueError(f'expected [B, T, K] and [B], got {log_probs.shape} and {lengths.shape}')
    needed = decoding.min_frames(lexicon, grammar)
    ids = [
      decoding.beam_search(frames, length, beam_width, lexicon, grammar) if length >= needed else []
      for frames, length in zip(log_probs, lengths)
    ]
  return [tokens.decode(i) for i in ids]


# The decoding flags of the command lines that read a sentence workdir (define_flags).
FLAGS = ('beam_width', 'grammar', 'lexicon')


def define_flags() -> None:
  """absl flags for beam search and its constraints (lipjax.evaluate, lipjax.predict)."""
  from absl import flags

  flags.DEFINE_integer('beam_width', 16, 'Sentence workdirs: prefixes beam search keeps per frame.')
  flags.DEFINE_enum(
    'grammar',
    None,
    sorted(GRAMMARS),
    "Sentence workdirs: beam search reads one word of each slot of this grammar (grid: GRID's "
    'command, colour, preposition, letter, digit, adverb).',
  )
  flags.DEFINE_string(
    'lexicon',
    None,
    'Sentence workdirs: beam search reads only the words of this file (one a line, # comments).',
  )


def check_flags(flag_values, is_sentences: bool) -> None:
  """Raises absl's UsageError for decoding flags given for a word workdir, or a bad beam width."""
  from absl import app

  given = [f'--{name}' for name in FLAGS if flag_values[name].present]
  if given and not is_sentences:
    raise app.UsageError(f'{", ".join(given)}: for sentence workdirs; this workdir reads words')
  if flag_values.beam_width < 1:
    raise app.UsageError(f'--beam_width={flag_values.beam_width}; it must be at least 1')
