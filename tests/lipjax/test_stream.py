"""lipjax.stream on a generated video of one speaker saying several words in a row."""

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from extraction import clip as clip_lib
from extraction import schema
from lipjax import predict
from lipjax import spotting
from lipjax import stream
from lipjax import workdir as workdir_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDS = ('MOON', 'YES', 'BAT')
HOP = 3  # frames between scored windows


@pytest.fixture(scope='module')
def talk(tmp_path_factory):
  """A real rendered talking face (built-in photo): three words, one clip each, as one mp4.

  Keys: path, frames (RGB as decoded), words ((word, start, end) in seconds).
  """
  from extraction import face_model
  from extraction import facemesh
  from extraction import video
  from extraction.synthetic import dataset
  from extraction.synthetic import faces
  from extraction.synthetic import render

  settings = dataset.Settings(num_frames=16, lead_range=(0.08, 0.1), rate_range=(1.1, 1.15))
  photo = cv2.imread(
    os.path.join(
      importlib.util.find_spec('skimage').submodule_search_locations[0], 'data', 'astronaut.png'
    )
  )
  detector = facemesh.FaceLandmarkerDetector(face_model.resolve())
  try:
    identity = faces.make_identity(
      faces.crop_face('astronaut', photo, detector), 'astronaut-0', faces.NO_VARIATION, detector
    )
  finally:
    detector.close()
  renderer = render.FrameRenderer(identity.image, identity.landmarks)
  clips, words = [], []
  for k, word in enumerate(WORDS):
    clip = dataset.render_clip(renderer, identity, word, settings, np.random.default_rng(k))
    offset = k * settings.num_frames / settings.fps
    words.append((word, offset + clip.start, offset + clip.end))
    clips.append(clip.frames)
  path = str(tmp_path_factory.mktemp('stream') / 'talk.mp4')
  dataset.write_video(path, np.concatenate(clips), settings.fps)
  frames, fps = video.read_frames(path)
  assert fps == settings.fps and len(frames) == len(WORDS) * settings.num_frames
  return {'path': path, 'frames': frames, 'words': words}


@pytest.fixture(scope='module')
def workdir(learned, tmp_path_factory):
  """A copy of the learned workdir whose data set records 12-frame extraction settings.

  Its examples were written without extraction, so its metadata records no settings and
  video would be cut at the default 29 frames; extraction records those it used. The
  record names the face landmarker on the frames alone (no mirror average, whatever today's
  default): the stream must track as the data was made.
  """
  copy = tmp_path_factory.mktemp('stream_workdir') / 'workdir'
  shutil.copytree(learned['workdir'], copy)
  meta_path = str(workdir_lib.path(copy, workdir_lib.DATASET_META))
  meta = schema.DatasetMeta.load_json(meta_path)
  settings = clip_lib.Settings(
    max_frames=meta.max_frames,
    fps=meta.fps,
    min_frames=4,
    landmarks=clip_lib.LANDMARKER,
    mirror_average=False,
  )
  meta.extraction['settings'] = dataclasses.asdict(settings)
  meta.save_json(meta_path)
  return str(copy)


@pytest.fixture(scope='module')
def streamed(workdir, talk):
  """The stream's hops over the talk video, in-process."""
  scorer = predict.Predictor(workdir)
  hops, summary = stream.spot_file(talk['path'], scorer, hop=HOP, threshold=1.0)
  return {'scorer': scorer, 'hops': hops, 'summary': summary}


class ReplayTracker:
  """Hands predict the FaceMesh output of the stream's continuous tracking for the frames it reads.

  FaceMesh in video mode tracks from frame to frame: the stream tracks through the
  whole video, predict starts afresh at each clip, so their landmarks for the same
  pixels differ slightly. 'The same frames' is therefore the same FaceMesh output.
  """

  def __init__(self, frames, points, detected):
    self.frames, self.points, self.detected = frames, points, detected
    self.first = self.next = None

  def reset(self):
    """A pass over predict's window starts: replay from the hop's first frame."""
    self.next = self.first

  def track(self, frame):
    """The stream's landmarks of the next frame, which must be the frame predict read."""
    np.testing.assert_array_equal(frame, self.frames[self.next])  # predict read the same pixels
    self.next += 1
    return self.points[self.next - 1] if self.detected[self.next - 1] else None


def test_each_window_is_scored_exactly_as_predict_scores_the_same_frames(workdir, talk, streamed):
  from extraction import face_model
  from extraction import facemesh

  frames, hops = talk['frames'], streamed['hops']
  meta = streamed['scorer'].meta
  # The tracker the workdir's record describes, as the stream runs it.
  with facemesh.tracker_for(streamed['scorer'].settings, face_model.resolve()) as tracker:
    tracked = [tracker.track(frame) for frame in frames]
  detected = np.array([p is not None for p in tracked])
  assert detected.all()  # no filling: every window is a look-ahead-free clip
  points = np.stack(tracked)
  starts = list(range(0, len(frames) - meta.max_frames + 1, HOP))
  assert [h.first for h in hops] == starts
  np.testing.assert_allclose(
    [h.centre for h in hops], (np.array(starts) + meta.max_frames / 2) / meta.fps
  )

  predictor = predict.Predictor(workdir)
  replay = ReplayTracker(frames, points, detected)
  half = 0.5 * stream.DEFAULT_WORD_SECONDS
  examples = []
  for hop in hops:
    replay.first = hop.first
    # predict cuts the max_frames window centred on the given speech interval.
    example = predictor.features(talk['path'], replay, (hop.centre - half, hop.centre + half))
    for key, value in example.items():
      np.testing.assert_array_equal(hop.example[key], value, err_msg=f'{key} at {hop.first}')
    examples.append(example)
  expected = predictor.probabilities(examples, batch_size=8)
  actual = np.stack([h.probabilities for h in hops])
  np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=0)
  assert np.ptp(actual, axis=0).max() > 0.01  # the windows differ: the comparison is not vacuous


def test_the_speech_mask_of_a_window_is_centred_and_word_seconds_long():
  mask = stream.centred_speech_mask(29, 25.0, 0.35)
  assert mask.tolist() == [0] * 10 + [1] * 9 + [0] * 10
  assert stream.centred_speech_mask(12, 25.0, 0.35).tolist() == [0] * 2 + [1] * 8 + [0] * 2


def test_the_command_line_prints_the_words_spotted_in_the_windows_scores_in_order(
  workdir, talk, streamed
):
  hops = streamed['hops']
  names = streamed['scorer'].meta.class_names
  centres = [h.centre for h in hops]
  ends = [h.end for h in hops]
  probabilities = np.stack([h.probabilities for h in hops])
  # The learned model knows other words than these and is unsure on them (its top
  # probabilities may sit near 1/3 of its 3 words): take the threshold that spots the most
  # words (the highest of equals).
  threshold = max(
    np.round(np.arange(0.95, 0.0, -0.01), 2),
    key=lambda t: (len(spotting.spot(centres, probabilities, names, t, emitted_at=ends)), t),
  )
  expected = spotting.spot(centres, probabilities, names, threshold, emitted_at=ends)
  # The made-up words' model may hold one word on top all through a real video (it did under
  # the face landmarker's tracks): then the command line must print that one word.
  assert len(expected) >= 1, (threshold, probabilities)
  result = subprocess.run(
    [
      sys.executable,
      '-m',
      'lipjax.stream',
      talk['path'],
      '--workdir',
      workdir,
      '--json',
      '--hop',
      str(HOP),
      '--threshold',
      str(threshold),
    ],
    capture_output=True,
    text=True,
    timeout=300,
    cwd=REPO,
    env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'},
  )
  assert result.returncode == 0, result.stderr[-3000:]
  words = [json.loads(line) for line in result.stdout.splitlines()]
  assert [w['word'] for w in words] == [w.word for w in expected]
  np.testing.assert_allclose(
    [[w['time'], w['score'], w['emitted_at']] for w in words],
    [[w.time, w.score, w.emitted_at] for w in expected],
    atol=1e-5,
  )
  duration = len(talk['frames']) / 25.0
  times = [w['time'] for w in words]
  assert times == sorted(times) and 0 < times[0] and times[-1] < duration
  assert all(w['time'] < w['emitted_at'] <= duration for w in words)
  assert all(w['word'] in names and w['word'] != schema.BACKGROUND_LABEL for w in words)
  assert 'real-time factor' in result.stderr and 'Traceback' not in result.stderr


def test_frames_are_resampled_as_extraction_resamples_and_a_slow_reader_drops_them_in_place():
  import time

  from extraction import video
  from extraction.synthetic.faces import carphone_path

  decoded, fps = video.read_frames(carphone_path())  # 29.97 fps
  wanted = decoded[video.resample_indices(len(decoded), fps, 25.0)]
  capture, live = stream.open_capture(carphone_path())
  assert not live
  np.testing.assert_array_equal(np.stack(list(stream.file_frames(capture, 25.0))), wanted)

  live_frames = []
  for frame in stream.LiveFrames(cv2.VideoCapture(carphone_path()), 25.0):
    live_frames.append(frame)
    if frame is not None:
      time.sleep(0.01)  # slower than the decoder: frames arrive while this one is processed
  assert len(live_frames) == len(wanted)  # a dropped frame keeps its place in the time line
  kept = [t for t, frame in enumerate(live_frames) if frame is not None]
  assert 0 < len(kept) < len(wanted)
  for t in kept:
    np.testing.assert_array_equal(live_frames[t], wanted[t])
