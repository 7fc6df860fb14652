"""Transcript parsing and the speech mask."""

import numpy as np
import pytest

from extraction import transcripts


def test_lrw_duration_is_centred_in_the_clip():
  t = transcripts.parse('Text:  ABOUT\nConf:  4\nDuration: 0.420000 seconds\n\nWORD START END\n')
  assert t.text == 'ABOUT'
  ((start, end),) = t.speech_intervals(1.16)
  assert start == pytest.approx(0.37) and end == pytest.approx(0.79)


LRS2 = """Text:  THE WHOLE SENTENCE
Conf:  4

WORD START END ASDSCORE
THE 0.12 0.40 1.0
WHOLE 0.40 0.71 2.3
sentence 0.85 1.30 1.0
"""


def test_lrs2_word_table_gives_words_and_speech_intervals():
  t = transcripts.parse(LRS2)
  assert t.text == 'THE WHOLE SENTENCE'
  assert t.words == (('THE', 0.12, 0.40), ('WHOLE', 0.40, 0.71), ('SENTENCE', 0.85, 1.30))
  assert t.centred_duration is None
  assert t.speech_intervals(2.0) == ((0.12, 0.40), (0.40, 0.71), (0.85, 1.30))
  # A header without ASDSCORE (LRS3 has it, some copies drop it) and 3-field rows.
  t = transcripts.parse('Text: HI THERE\n\nWORD START END\nHI 0 0.2\nTHERE 0.2 0.5\n')
  assert t.words == (('HI', 0.0, 0.2), ('THERE', 0.2, 0.5))
  # After a blank line, anything but a word table is ignored, as before.
  t = transcripts.parse('Text: ABOUT\nDuration: 0.42\n\nsome notes\n')
  assert t.words == () and t.centred_duration == 0.42


def test_start_end_pairs_give_several_intervals():
  t = transcripts.parse('Text: bat\nStart: 0.2\nEnd: 0.4\nStart: 0.6s\nEnd: 0.8 seconds\n')
  assert t.text == 'BAT'
  assert t.speech_intervals(10.0) == ((0.2, 0.4), (0.6, 0.8))


@pytest.mark.parametrize(
  'text, message',
  [
    ('Text: A\nStart: zero\n', 'f.txt:2: expected a time in seconds'),
    ('Text: A\nEnd: 1\n', 'f.txt:2: End without a preceding Start'),
    ('Text: A\nStart: 1\nEnd: 0.5\n', 'f.txt:3: End 0.5 is not after Start 1.0'),
    ('Text: A\nwhatever\n', 'f.txt:2: expected "Key: value"'),
    ('Text: A\nColour: red\n', "f.txt:2: unknown key 'Colour'"),
    ('Text: A\n', 'f.txt: no Duration, no Start/End and no word table'),
    (
      'Text: A B\n\nWORD START END ASDSCORE\nA 0.1\n',
      'f.txt:4: expected "WORD START END',
    ),
    ('Text: A\n\nWORD START END\nA 0.1 soon\n', 'f.txt:4: expected a time in seconds'),
    (
      'Text: A\n\nWORD START END\nA 0.5 0.2\n',
      "f.txt:4: word 'A' ends at 0.2 s, before its start at 0.5 s",
    ),
    ('Text: A\nDuration: 0.3\nStart: 0.1\nEnd: 0.2\n', 'f.txt: both Duration and Start/End'),
  ],
)
def test_malformed_transcripts_name_file_and_line(text, message):
  with pytest.raises(transcripts.TranscriptError, match=message.replace('.', r'\.')):
    transcripts.parse(text, source='f.txt')


def test_read_names_missing_file(tmp_path):
  with pytest.raises(transcripts.TranscriptError, match='nope.txt: cannot read'):
    transcripts.read(str(tmp_path / 'nope.txt'))


def test_speech_mask_uses_frame_centres():
  # 25 fps: frame t covers [t/25, (t+1)/25); centres at 0.02, 0.06, 0.10, 0.14, ...
  mask = transcripts.speech_mask([(0.05, 0.11)], num_frames=5, fps=25.0)
  np.testing.assert_array_equal(mask, [0, 1, 1, 0, 0])
  assert mask.dtype == np.uint8
  np.testing.assert_array_equal(transcripts.speech_mask([], 3, 25.0), [0, 0, 0])
