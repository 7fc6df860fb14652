"""How much of a rendered mouth's motion FaceMesh gives back, per kind of face.

python experiments/landmark_fidelity.py [--lfw_faces 12] [--head_motion 0.3,1,2]
python experiments/landmark_fidelity.py --sweep [--norefine_landmarks] [--nomirror_average]
    [--lip_paint 0.5]

The generator knows where it moved every landmark (dataset.Clip.landmarks); extraction
only sees the frames. Each demo speaker (extraction/demo.py's settings: the seven
photos' and the first --lfw_faces LFW crops' speakers, variant 0, their drawn speaking
styles) says each demo word once; the frames go through real FaceMesh and
extraction's own per-frame normalisation and smoothing
(normalize.normalize_track), and so do the rendered landmarks (no FaceMesh). On the 40
lip-contour landmarks, each clip's motion about its mean frame:
  correlation    of extracted and rendered motion (x and y of every landmark and frame)
  error / motion RMS of their difference over the RMS of the rendered motion
per kind of face (sharp photo, video frame, LFW crop). --head_motion F,...: every
speaker's head-motion amplitude set to F instead of its drawn one, one row each.
--refine_landmarks, --mirror_average: FaceMesh as extraction runs it (its defaults).
--landmarks landmarker [--face_model PATH]: the Face Landmarker in FaceMesh's place
(--landmarks facemesh, the legacy FaceMesh, needs mediapipe < 1).

--sweep: each articulation channel alone, swept over its range and back (24 frames, the
others at rest, no head motion, no camera), on every speaker; per channel, the slope of
FaceMesh's measure on the drawn one (gain, 1 = read at full size) and their correlation for
the measures the channel moves (`measures`, also facemesh_cost.py's).
"""

import dataclasses
import shlex
import sys
import time

from absl import flags
import numpy as np

from extraction import cli
from extraction import clip as clip_lib
from extraction import demo
from extraction import facemesh
from extraction import native_stderr
from extraction import normalize
from extraction.synthetic import dataset
from extraction.synthetic import phonetics
from extraction.synthetic import render

FLAGS = flags.FLAGS
PROGRAM = 'experiments/landmark_fidelity.py'
LIPS = sorted(
  set(render.UPPER_INNER + render.LOWER_INNER + render.UPPER_OUTER + render.LOWER_OUTER)
)


def lip_motion(points: np.ndarray, detected: np.ndarray, alpha: float) -> np.ndarray:
  """Pixel landmarks [T, 468, 3] -> extraction's normalised, smoothed lip motion [T, 40, 2]."""
  lips = normalize.normalize_track(points, detected, alpha)[:, LIPS, :2]
  return lips - lips.mean(axis=0)


def clip_fidelity(clip: dataset.Clip, tracker, alpha: float) -> tuple[float, float] | None:
  """(correlation, error / motion) of one clip; None where FaceMesh missed a frame."""
  points, detected = tracker.landmarks(np.ascontiguousarray(clip.frames[..., ::-1]))
  if not detected.all():
    return None
  rendered = np.concatenate([clip.landmarks, np.zeros(clip.landmarks.shape[:2] + (1,))], -1)
  truth = lip_motion(rendered, detected, alpha)
  found = lip_motion(points, detected, alpha)
  correlation = float(np.corrcoef(truth.ravel(), found.ravel())[0, 1])
  error = float(np.sqrt(np.mean((found - truth) ** 2)) / np.sqrt(np.mean(truth**2)))
  return correlation, error


# Channel -> (low, high) of its sweep, and the measures it moves.
SWEEPS = {
  'jaw': ((0.0, 1.0), ('inner opening', 'jaw (chin to upper lip)')),
  'lip_open': ((0.0, 1.0), ('inner opening', 'outer opening')),
  'spread': ((-1.0, 1.0), ('mouth width', 'corners (height)')),
  'protrusion': ((0.0, 1.0), ('mouth width', 'lip thickness')),
  'closure': ((0.0, 1.0), ('outer opening', 'lip thickness')),
}
SWEEP_FRAMES = 24


def measures(at) -> dict:
  """Articulation measures, name -> landmarks [T, K, 2+] -> [T], of normalised landmarks (x
  along the eye line, y down the face); at(i) is the column of FaceMesh landmark i (identity
  on the 468 landmarks, roi.node on the ROI's 88)."""
  return {
    'inner opening': lambda p: p[:, at(14), 1] - p[:, at(13), 1],
    'outer opening': lambda p: p[:, at(17), 1] - p[:, at(0), 1],
    'mouth width': lambda p: p[:, at(291), 0] - p[:, at(61), 0],
    'jaw (chin to upper lip)': lambda p: p[:, at(152), 1] - p[:, at(0), 1],
    'lip thickness': lambda p: p[:, at(13), 1] - p[:, at(0), 1] + p[:, at(17), 1] - p[:, at(14), 1],
    'corners (height)': lambda p: 0.5 * (p[:, at(61), 1] + p[:, at(291), 1]) - p[:, at(0), 1],
  }


_FACE_MEASURES = measures(lambda i: i)


def sweep(
  identities, tracker, lip_paint: float = 0.0
) -> dict[tuple[str, str], list[tuple[float, float]]]:
  """(channel, measure) -> [(gain, correlation)] over the speakers whose face was found."""
  rows = {}
  still = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0])  # render.MOTION_CHANNELS: no head motion
  phase = 0.5 * (1 - np.cos(np.linspace(0, 2 * np.pi, SWEEP_FRAMES)))  # low -> high -> low
  for identity in identities:
    renderer = dataset.make_renderer(identity, lip_paint)
    for channel, ((low, high), measures) in SWEEPS.items():
      frames, drawn = [], []
      for value in low + (high - low) * phase:
        articulation = dataset.rest_articulation(0.15)
        articulation[phonetics.CHANNELS.index(channel)] = value
        frame, landmarks = renderer.render(articulation, still)
        frames.append(frame)
        drawn.append(landmarks)
      points, detected = tracker.landmarks(np.ascontiguousarray(np.stack(frames)[..., ::-1]))
      if not detected.all():
        continue
      drawn = np.concatenate([np.stack(drawn), np.zeros((SWEEP_FRAMES, 468, 1))], -1)
      found_face = normalize.normalize_track(points, detected, 1.0)
      drawn_face = normalize.normalize_track(drawn, detected, 1.0)
      for name in measures:
        a, b = _FACE_MEASURES[name](found_face), _FACE_MEASURES[name](drawn_face)
        a, b = a - a.mean(), b - b.mean()
        rows.setdefault((channel, name), []).append(
          (float(a @ b / (b @ b)), float(np.corrcoef(a, b)[0, 1]))
        )
  return rows


def _tracker():
  """The tracker the flags describe, its bundle resolved (facemesh.tracker_for_video)."""
  settings = clip_lib.Settings(
    landmarks=FLAGS.landmarks,
    refine_landmarks=FLAGS.refine_landmarks,
    mirror_average=FLAGS.mirror_average,
  )
  return facemesh.tracker_for_video(settings, FLAGS.face_model)


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_integer('lfw_faces', 12, 'LFW crops beside the seven photos (0-100).')
  flags.DEFINE_list(
    'head_motion', [], "Head-motion amplitudes to set on every speaker (empty: each one's own)."
  )
  defaults = clip_lib.Settings()
  flags.DEFINE_enum(
    'landmarks',
    defaults.landmarks,
    [clip_lib.FACEMESH, clip_lib.LANDMARKER],
    "The tracker: the legacy FaceMesh (mediapipe < 1) or the Face Landmarker (extraction's).",
  )
  flags.DEFINE_string(
    'face_model', None, "The Face Landmarker's bundle (default: extraction's, face_model.resolve)."
  )
  flags.DEFINE_bool(
    'refine_landmarks', defaults.refine_landmarks, "FaceMesh's attention model (extraction's)."
  )
  flags.DEFINE_bool(
    'mirror_average', defaults.mirror_average, 'Frames and their flips averaged (extraction).'
  )
  flags.DEFINE_bool('sweep', False, 'One channel at a time, swept (see the module doc).')
  flags.DEFINE_float('lip_paint', 0.0, "The generator's --lip_paint (lips' paint opacity).")


def main(argv: list[str]) -> None:
  """Measures every speaker and word; prints the table per kind and the command."""
  del argv  # takes no arguments
  print(f'$ {shlex.join(["python", PROGRAM] + sys.argv[1:])}')
  print(time.strftime('%Y-%m-%d %H:%M'))
  settings = dataclasses.replace(
    demo.DEMO_SETTINGS, lfw_faces=FLAGS.lfw_faces, lip_paint=FLAGS.lip_paint
  )
  alpha = clip_lib.Settings().ema_alpha
  amplitudes = [float(a) for a in FLAGS.head_motion] or [None]
  identities, _, _ = dataset.build_identities(settings, None)
  if FLAGS.sweep:
    with (
      native_stderr.silenced(),
      _tracker() as tracker,
    ):
      rows = sweep(identities, tracker, settings.lip_paint)
    print(f'\n{len(identities)} speakers, each channel swept alone: FaceMesh against drawn')
    print('| channel | measure | speakers | gain | correlation |')
    print('|---|---|---|---|---|')
    for (channel, name), values in rows.items():
      gain, correlation = np.mean(values, axis=0)
      print(f'| {channel} | {name} | {len(values)} | {gain:.2f} | {correlation:.2f} |')
    return
  rows = {}  # (head motion, kind) -> [(correlation, error), ...]
  missed = 0
  # MediaPipe's graph threads print to file descriptor 2: kept off the terminal.
  with (
    native_stderr.silenced(),
    _tracker() as tracker,
  ):
    for amplitude in amplitudes:
      for identity in identities:
        if amplitude is not None:
          style = dataclasses.replace(identity.style, head_motion=amplitude)
          identity = dataclasses.replace(identity, style=style)
        renderer = dataset.make_renderer(identity, settings.lip_paint)
        for word in settings.words:
          rng = dataset.clip_rng(settings, word, identity.speaker, 0)
          result = clip_fidelity(
            dataset.render_clip(renderer, identity, word, settings, rng), tracker, alpha
          )
          if result is None:
            missed += 1
          else:
            rows.setdefault((amplitude, identity.kind), []).append(result)
  print(
    f'\n{len(identities)} speakers x {len(settings.words)} words ({missed} clips with a frame '
    f'FaceMesh missed left out); lip motion about each clip mean, extracted against rendered:'
  )
  print('| head motion | kind of face | clips | correlation | error / motion |')
  print('|---|---|---|---|---|')
  for (amplitude, kind), values in rows.items():
    correlation, error = np.mean(values, axis=0)
    label = 'as drawn' if amplitude is None else f'{amplitude:g}'
    print(f'| {label} | {kind} | {len(values)} | {correlation:.3f} | {error:.2f} |')


if __name__ == '__main__':
  cli.run(main, PROGRAM, define_flags, takes_arguments=False)
