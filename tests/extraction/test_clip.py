"""Cutting a long clip around its speech: the window and the speech mask after the cut."""

from extraction_media import carphone_path
import numpy as np
import pytest

from extraction import clip as clip_lib
from extraction import face_model
from extraction import facemesh


def test_cut_window_centres_the_speech_and_stays_inside_the_clip():
  # 100 frames at 25 fps, 29 kept: centre 55.5 -> first frame 41; clamped at either end.
  assert clip_lib.cut_window(100, [(2.0, 2.44)], 25.0, 29) == 41
  assert clip_lib.cut_window(100, [(0.2, 0.6)], 25.0, 29) == 0
  assert clip_lib.cut_window(100, [(3.72, 3.92)], 25.0, 29) == 71
  assert clip_lib.cut_window(100, [(0.2, 0.4), (3.0, 3.2)], 25.0, 29) == 28  # both intervals
  assert clip_lib.cut_window(100, [], 25.0, 29) == 36  # no speech: the clip's middle
  assert clip_lib.cut_window(20, [(0.2, 0.6)], 25.0, 29) == 0  # short clips are not cut


@pytest.mark.parametrize(
  'interval, first_frame, speech_frames',
  [
    # carphone: 120 frames at 29.97 fps -> 100 at 25 fps, cut to 29. Speech frames are those
    # whose centre (k + 0.5) / 25 s lies in the interval moved by first_frame / 25 s.
    ((2.0, 2.44), 41, range(9, 20)),  # (0.36, 0.80) s in the cut
    ((0.2, 0.6), 0, range(5, 15)),  # not moved
    ((3.72, 3.92), 71, range(22, 27)),  # (0.88, 1.08) s in the cut
  ],
)
def test_speech_mask_after_the_cut_marks_the_hand_computed_frames(
  interval, first_frame, speech_frames
):
  del first_frame  # documents the hand computation
  with facemesh.FaceLandmarkerTracker(face_model.resolve()) as tracker:
    arrays = clip_lib.extract_clip(
      carphone_path(), tracker, clip_lib.Settings(), intervals=[interval]
    )
  assert arrays.cut and arrays.source_frames == 100 and len(arrays.speech_mask) == 29
  expected = np.zeros(29, np.uint8)
  expected[list(speech_frames)] = 1
  np.testing.assert_array_equal(arrays.speech_mask, expected)
