"""How far apart two speakers of one photo are, against two photos, as extraction and the model see them.

python experiments/speaker_distance.py [--variants 4] [--words ABOUT,WATCH,PEOPLE,THERE] [--lfw_faces 0]

Draws --variants speakers from each built-in photo twice: as the generator does
now (faces.sample_variation: geometry, appearance, head pose, camera, speaking
style) and as GENERATOR_VERSION 3 did (face width and height, appearance and
camera only; every speaker talked alike). Every speaker says the same words with
the same clip randomness (seeded by word, not speaker), the frames go through
the tracker of extraction's default settings and its own normalisation (clip.face_frame,
clip.window_arrays: the 88 ROI landmarks), and each clip is centred and scaled
as the model's 'window_scaled' centring does (minus its mean frame, over its RMS
movement). Two distances between two speakers, averaged over the words:
  motion  RMS difference of the centred, scaled trajectories [T, 88, 3]: what the
          model is left with once it takes the speaker's face away
  shape   RMS difference of the mean normalised landmarks: the face at rest
Pairs of speakers of one photo ('within') against pairs of different photos
('across'); 'within / across' near 1 means a photo's speakers differ as two
people do.
"""

import dataclasses
import itertools
import shlex
import sys
import time

from absl import flags
import numpy as np

from extraction import cli
from extraction import clip as clip_lib
from extraction import face_model
from extraction import facemesh
from extraction import native_stderr
from extraction.synthetic import dataset
from extraction.synthetic import faces

FLAGS = flags.FLAGS


def old_variation(rng: np.random.Generator) -> dict:
  """A GENERATOR_VERSION 3 variation: face width and height, appearance and camera only."""
  return {
    **faces.NO_VARIATION,
    'face_width': float(rng.uniform(0.90, 1.10)),
    'face_height': float(rng.uniform(0.92, 1.08)),
    'tone_gains': faces._skin_tone_gains(rng.uniform(0.72, 1.1), rng.uniform(-0.08, 0.12)),
    'gamma': float(rng.uniform(0.8, 1.25)),
    'mirror': bool(rng.random() < 0.5),
    'light_angle': float(rng.uniform(0, 2 * np.pi)),
    'light_strength': float(rng.uniform(0.0, 0.35)),
    'blur_sigma': float(rng.uniform(0.0, 1.2)),
    'noise_sigma': float(rng.uniform(0.0, 5.0)),
    'jpeg_quality': int(rng.integers(35, 96)),
  }


def speakers(face_list, variants: int, seed: int, scheme: str, detector) -> list:
  """`variants` identities per face under one scheme ('now' or 'v3'); variant 0 is the photo."""
  out = []
  for face in face_list:
    for variant in range(variants):
      name = f'{face.name}-{variant}'
      rng = np.random.default_rng([seed, dataset._stable_hash(name)])
      if scheme == 'v3':
        variation = faces.NO_VARIATION if variant == 0 else old_variation(rng)
      else:
        variation = faces.photo_variation(rng) if variant == 0 else faces.sample_variation(rng)
      try:
        out.append(faces.make_identity(face, name, variation, detector))
      except faces.NoFaceError:
        continue
  return out


def trajectories(identity, words, settings, tracker) -> tuple[np.ndarray, np.ndarray]:
  """(centred scaled ROI trajectories [W, T, 88, 3], mean normalised ROI shape [W, 88, 3])."""
  renderer = dataset.make_renderer(identity)
  extraction = clip_lib.Settings()
  motions, shapes = [], []
  for word in words:
    rng = np.random.default_rng([settings.seed, dataset._stable_hash(word)])
    clip = dataset.render_clip(renderer, identity, word, settings, rng)
    points, detected = tracker.landmarks(np.ascontiguousarray(clip.frames[..., ::-1]))
    normalised = np.zeros(points.shape, np.float32)
    for t in np.flatnonzero(detected):
      normalised[t] = clip_lib.face_frame(points[t])
    landmarks, _, _ = clip_lib.window_arrays(normalised, detected, extraction)  # [T, 88, 3]
    moved = landmarks - landmarks.mean(axis=0)
    motions.append(moved / (np.sqrt(np.mean(moved**2)) + 1e-3))
    shapes.append(landmarks.mean(axis=0))
  return np.stack(motions), np.stack(shapes)


def pair_distances(table: dict) -> dict:
  """Mean motion and shape distance over pairs within a photo and across photos."""
  out = {'within': [], 'across': []}
  for (a, (motion_a, shape_a)), (b, (motion_b, shape_b)) in itertools.combinations(
    table.items(), 2
  ):
    kind = 'within' if a.rsplit('-', 1)[0] == b.rsplit('-', 1)[0] else 'across'
    out[kind].append(
      (np.sqrt(np.mean((motion_a - motion_b) ** 2)), np.sqrt(np.mean((shape_a - shape_b) ** 2)))
    )
  return {kind: np.array(pairs) for kind, pairs in out.items()}


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_integer('variants', 4, 'Speakers drawn from each photo, per scheme.')
  flags.DEFINE_string('words', 'ABOUT,WATCH,PEOPLE,THERE', 'Words every speaker says.')
  flags.DEFINE_integer(
    'lfw_faces', 0, "LFW crops beside the built-in photos (generator's --lfw_faces)."
  )
  flags.DEFINE_integer('seed', 0, 'Seed of the clips and the speakers.')


def main(argv: list[str]) -> None:
  """Measures both schemes; prints the table and the command that made it."""
  del argv  # takes no arguments
  args = FLAGS
  print(f'$ {shlex.join(["python", "experiments/speaker_distance.py"] + sys.argv[1:])}')
  print(time.strftime('%Y-%m-%d %H:%M'))
  words = args.words.upper().split(',')
  settings = dataclasses.replace(dataset.Settings(), seed=args.seed)
  # MediaPipe's graph threads print to file descriptor 2: kept off the terminal.
  model_path = face_model.resolve()
  with native_stderr.silenced():
    detector = facemesh.FaceLandmarkerDetector(model_path)
    tracker = facemesh.tracker_for(clip_lib.Settings(), model_path)
    try:
      photos = faces.builtin_photos() + faces.lfw_photos(args.lfw_faces)
      face_list, _ = faces.load_faces(photos, detector)
      rows = {}
      for scheme in ('v3', 'now'):
        identities = speakers(face_list, args.variants, args.seed, scheme, detector)
        table = {i.speaker: trajectories(i, words, settings, tracker) for i in identities}
        rows[scheme] = (len(identities), pair_distances(table))
    finally:
      detector.close()
      tracker.close()
  print(
    f'\n{len(face_list)} photos x {args.variants} speakers, words {",".join(words)}; '
    'RMS distance in normalised ROI space (mean over pairs):'
  )
  print('| speakers drawn as | speakers | motion within | motion across | within/across '
        '| shape within | shape across | within/across |')  # fmt: skip
  print('|---|---|---|---|---|---|---|---|')
  for scheme, (count, pairs) in rows.items():
    within, across = pairs['within'].mean(axis=0), pairs['across'].mean(axis=0)
    label = (
      'GENERATOR_VERSION 3' if scheme == 'v3' else f'now (version {dataset.GENERATOR_VERSION})'
    )
    print(
      f'| {label} | {count} | {within[0]:.3f} | {across[0]:.3f} | {within[0] / across[0]:.2f} '
      f'| {within[1]:.4f} | {across[1]:.4f} | {within[1] / across[1]:.2f} |'
    )


if __name__ == '__main__':
  cli.run(main, 'experiments/speaker_distance.py', define_flags, takes_arguments=False)
