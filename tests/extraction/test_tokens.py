"""The token vocabulary: its order, encoding, decoding and padding."""

import os
import subprocess
import sys

import numpy as np
import pytest

from extraction import tokens

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_token_order_is_blank_space_letters_apostrophe():
  assert tokens.TOKENS[tokens.BLANK_ID] == tokens.BLANK and tokens.BLANK_ID == 0
  assert tokens.TOKENS[tokens.SPACE_ID] == ' ' and tokens.SPACE_ID == 1
  assert ''.join(tokens.TOKENS[2:28]) == 'abcdefghijklmnopqrstuvwxyz'
  assert tokens.TOKENS[28] == "'"
  assert tokens.NUM_TOKENS == len(set(tokens.TOKENS)) == 29


def test_encode_lower_cases_by_hand():
  # b=3, i=10, n=15, space=1; d=5, o=16, t=21, apostrophe=28.
  np.testing.assert_array_equal(tokens.encode('Bin'), [3, 10, 15])
  np.testing.assert_array_equal(tokens.encode("BIN don't"), [3, 10, 15, 1, 5, 16, 15, 28, 21])
  assert tokens.encode('bin').dtype == np.int32
  assert tokens.encode('').shape == (0,)


@pytest.mark.parametrize(
  'text, char', [('bin blue at f 2 now', '2'), ('hello, world', ','), ('a\tb', '\t')]
)
def test_encode_names_the_character_it_cannot_encode_and_the_text(text, char):
  with pytest.raises(ValueError) as error:
    tokens.encode(text)
  assert repr(char) in str(error.value) and repr(text) in str(error.value)


def test_decode_inverts_encode_and_leaves_out_blanks_but_keeps_repeats():
  text = "Set red by A two soon, don't".replace(',', '')
  assert tokens.decode(tokens.encode(text)) == text.lower()
  assert tokens.decode([0, 3, 0, 10, 10, 0, 15, 0]) == 'biin'
  assert tokens.decode(np.array([], np.int32)) == ''


def test_decode_refuses_ids_outside_the_vocabulary():
  with pytest.raises(ValueError, match=r'\[29\]'):
    tokens.decode([3, 29])
  with pytest.raises(ValueError, match=r'\[-1\]'):
    tokens.decode([-1])


def test_pad_fills_with_blanks_and_returns_the_length():
  padded, length = tokens.pad(tokens.encode('bin'), 5)
  np.testing.assert_array_equal(padded, [3, 10, 15, 0, 0])
  assert padded.dtype == np.int32 and length == 3
  assert tokens.decode(padded) == 'bin'
  padded, length = tokens.pad([3, 10, 15], 3)
  np.testing.assert_array_equal(padded, [3, 10, 15])
  assert length == 3


def test_pad_refuses_too_many_tokens_naming_the_text():
  with pytest.raises(ValueError, match=r"'bin blue' is 8 tokens, more than max_tokens=5"):
    tokens.pad(tokens.encode('bin blue'), 5)
  with pytest.raises(ValueError, match='1-D'):
    tokens.pad(np.zeros((2, 3), np.int32), 5)


def test_ctc_min_frames_counts_a_blank_between_repeats():
  assert tokens.ctc_min_frames(tokens.encode('now')) == 3
  assert tokens.ctc_min_frames(tokens.encode('soon')) == 5  # s o - o n
  assert tokens.ctc_min_frames(tokens.encode('see  lll')) == 8 + 4
  assert tokens.ctc_min_frames([]) == 0


def test_import_does_not_need_jax():
  script = "import sys, extraction.tokens; print('jax' in sys.modules)"
  result = subprocess.run(
    [sys.executable, '-c', script], capture_output=True, text=True, timeout=120, cwd=REPO
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == 'False'
