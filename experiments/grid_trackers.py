"""Face trackers compared on real filmed speech (GRID): speed, jitter, and data sets to train on.

python experiments/grid_trackers.py track --input GRID_DIR --out TRACKS --landmarks facemesh|landmarker
    [--face_model F] [--workers 2]
python experiments/grid_trackers.py layout --input GRID_DIR --tracks TRACKS --out DIR [--mirror_average]
python experiments/grid_trackers.py jitter --tracks TRACKS [--tracks TRACKS2 ...]

track: every frame of every GRID video through the tracker, on the frame and (a second
tracker of the same kind) on its mirror image, each estimate kept apart:
TRACKS/SPEAKER/NAME.npz holds `direct` and `mirrored` [T, 468, 3] in pixels (the mirror
image's estimate moved back: each landmark from its mirror landmark, x reflected; NaN rows
where no face was found) and the seconds the tracker took. One pass gives both of
extraction's choices (mirror averaging off, on) without tracking twice. Prints the frames
per second of one worker (the tracker on the frames alone, and with the mirror image).
layout: a GRID folder of links to the videos and alignments, with each video's landmarks
beside it (VIDEO.landmarks.npy: the direct estimate, or the mean of the two with
--mirror_average), which `python -m extraction --input DIR --landmarks file [--ema_alpha A]`
extracts as it would from the tracker itself, cutting each word's window from the one track.
jitter: how much rigid points move from frame to frame on real video after extraction's
per-frame face normalisation (nose bridge, eye corners, forehead: they move with the head,
which normalisation removes, not with speech), in thousandths of the face's size: the
tracker's own noise. Printed per tracks folder, direct and mirror-averaged, before and after
extraction's EMA smoothing.
"""

import os
import shlex
import sys
import time

from absl import flags
import numpy as np

from extraction import cli
from extraction import clip as clip_lib
from extraction import facemesh
from extraction import grid
from extraction import landmark_files
from extraction import normalize
from extraction import roi
from extraction import video
from extraction import workers as workers_lib

FLAGS = flags.FLAGS
PROGRAM = 'experiments/grid_trackers.py'
# FaceMesh points on bone: the nose bridge, the eyes' corners and the forehead.
RIGID = (6, 168, 197, 195, 5, 4, 33, 133, 362, 263, 10, 151, 9, 8)


def _tracker(landmarks: str, model_path: str | None):
  """One tracker of a kind, tracking one view (no mirror averaging: each view is kept)."""
  settings = clip_lib.Settings(landmarks=landmarks, mirror_average=False)
  return facemesh.tracker_for(settings, model_path)


def _init(landmarks: str, model_path: str | None) -> None:
  """Pool initializer: a tracker for the frames and one for their mirror images."""
  os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # MediaPipe's start-up lines
  workers_lib.state['trackers'] = (_tracker(landmarks, model_path), _tracker(landmarks, model_path))


def _track_video(job) -> tuple[str, int, float, float]:
  """Tracks one video's frames and mirror images; writes its npz; (path, frames, seconds x2)."""
  video_path, out_path = job
  direct_tracker, mirror_tracker = workers_lib.state['trackers']
  window = video.read_window(video_path, grid.FPS, 10**6, lambda n: 0)
  mirror_index = roi.mesh_mirror()
  direct = np.full((len(window.frames), roi.NUM_FACEMESH_LANDMARKS, 3), np.nan, np.float32)
  mirrored = direct.copy()
  seconds = [0.0, 0.0]
  direct_tracker.reset()
  mirror_tracker.reset()
  for t, frame in enumerate(window.frames):
    began = time.process_time()
    found = direct_tracker.track(frame)
    seconds[0] += time.process_time() - began
    began = time.process_time()
    flipped = mirror_tracker.track(np.ascontiguousarray(frame[:, ::-1]))
    seconds[1] += time.process_time() - began
    if found is not None:
      direct[t] = found
    if flipped is not None:
      flipped = flipped[mirror_index]
      flipped[:, 0] = frame.shape[1] - flipped[:, 0]
      mirrored[t] = flipped
  os.makedirs(os.path.dirname(out_path), exist_ok=True)
  np.savez(out_path + '.incomplete.npz', direct=direct, mirrored=mirrored, seconds=seconds)
  os.replace(out_path + '.incomplete.npz', out_path)
  return video_path, len(window.frames), seconds[0], seconds[1]


def track(argv) -> None:
  """Tracks every GRID video under --input into --out; prints frames per second per worker."""
  del argv
  cli.require('input', 'out')
  print(f'$ {shlex.join(["python", PROGRAM] + sys.argv[1:])}')
  model_path = facemesh.bundle_for(clip_lib.Settings(landmarks=FLAGS.landmarks), FLAGS.face_model)
  videos, _ = grid.find(FLAGS.input)
  jobs = [
    (path, os.path.join(FLAGS.out, speaker, name + '.npz'))
    for (speaker, name), path in sorted(videos.items())
    if not os.path.exists(os.path.join(FLAGS.out, speaker, name + '.npz'))
  ]
  frames, seconds = 0, np.zeros(2)
  began = time.perf_counter()
  with workers_lib.pool(FLAGS.workers, _init, (FLAGS.landmarks, model_path)) as pool:
    for _, count, direct_s, mirror_s in pool.map(_track_video, jobs, chunksize=4):
      frames += count
      seconds += (direct_s, mirror_s)
  wall = time.perf_counter() - began
  if frames:
    print(
      f'{FLAGS.landmarks}: {len(jobs)} videos, {frames} frames in {wall:.0f} s on '
      f'{FLAGS.workers} workers; per worker: {frames / seconds[0]:.1f} frames/s on the frames, '
      f'{frames / seconds.sum():.1f} with their mirror images (process time)'
    )


def _points(npz, mirror_average: bool) -> np.ndarray:
  """A video's landmarks [T, 468, 3] (NaN: no face): the direct estimate or the mirror average."""
  direct, mirrored = npz['direct'], npz['mirrored']
  if not mirror_average:
    return direct
  # Where only one view found the face, it is the estimate (as FaceMeshTracker does).
  return np.where(
    np.isnan(direct), mirrored, np.where(np.isnan(mirrored), direct, 0.5 * (direct + mirrored))
  )


def _link(source: str, target: str) -> None:
  os.makedirs(os.path.dirname(target), exist_ok=True)
  if not os.path.lexists(target):
    os.symlink(os.path.abspath(source), target)


def layout(argv) -> None:
  """Writes a GRID folder of links with each video's landmarks beside it (for --landmarks file)."""
  del argv
  cli.require('input', 'tracks', 'out')
  videos, aligns = grid.find(FLAGS.input)
  written = 0
  for (speaker, name), path in sorted(videos.items()):
    tracks = os.path.join(FLAGS.tracks[0], speaker, name + '.npz')
    if not os.path.exists(tracks) or (speaker, name) not in aligns:
      continue
    target = os.path.join(FLAGS.out, speaker, os.path.basename(path))
    _link(path, target)
    _link(aligns[speaker, name], os.path.join(FLAGS.out, 'alignments', speaker, name + '.align'))
    with np.load(tracks) as npz:
      landmark_files.write(target, _points(npz, FLAGS.mirror_average))
    written += 1
  print(f'{written} videos -> {FLAGS.out} (mirror average: {FLAGS.mirror_average})')


def _rigid_jitter(points: np.ndarray, alpha: float) -> float | None:
  """RMS frame-to-frame movement of the rigid points after face normalisation (x 1000)."""
  detected = ~np.isnan(points).any(axis=(1, 2))
  if detected.sum() < 2:
    return None
  faces = np.zeros(points.shape, np.float32)
  faces[detected] = normalize.face_normalize(points[detected])
  faces = normalize.smooth_track(faces, detected, alpha) if alpha < 1 else faces[detected]
  steps = np.diff(faces[:, list(RIGID), :2], axis=0)  # [T - 1, R, 2]
  return 1000.0 * float(np.sqrt(np.mean(np.sum(steps**2, axis=-1))))


def jitter(argv) -> None:
  """Prints each tracks folder's rigid-point jitter, direct and mirror-averaged, raw and smoothed."""
  del argv
  cli.require('tracks')
  print(f'$ {shlex.join(["python", PROGRAM] + sys.argv[1:])}')
  alpha = clip_lib.Settings().ema_alpha
  print('| tracks | mirror average | videos | jitter, raw | jitter, EMA 0.7 |')
  print('|---|---|---|---|---|')
  for folder in FLAGS.tracks:
    files = sorted(
      os.path.join(d, f) for d, _, names in os.walk(folder) for f in names if f.endswith('.npz')
    )
    for mirror_average in (False, True):
      raw, smoothed = [], []
      for path in files:
        with np.load(path) as npz:
          points = _points(npz, mirror_average)
        raw.append(_rigid_jitter(points, 1.0))
        smoothed.append(_rigid_jitter(points, alpha))
      raw = [x for x in raw if x is not None]
      smoothed = [x for x in smoothed if x is not None]
      print(
        f'| {folder} | {mirror_average} | {len(raw)} | {np.mean(raw):.2f} | '
        f'{np.mean(smoothed):.2f} |'
      )


def define_track_flags() -> None:
  flags.DEFINE_string('input', None, 'A GRID folder (extraction/grid.py layouts).')
  flags.DEFINE_string('out', None, 'Folder for the tracks (one npz per video).')
  flags.DEFINE_enum('landmarks', 'landmarker', clip_lib.TRACKERS, 'Which tracker.')
  flags.DEFINE_string('face_model', None, "The landmarker's bundle (face_model.resolve).")
  flags.DEFINE_integer('workers', 2, 'Worker processes, one tracker pair each.')


def define_layout_flags() -> None:
  flags.DEFINE_string('input', None, 'The GRID folder that was tracked.')
  flags.DEFINE_multi_string('tracks', None, "track's --out.")
  flags.DEFINE_string('out', None, 'The GRID folder of links and landmark files to write.')
  flags.DEFINE_bool('mirror_average', False, 'Landmarks: mean of the frame and mirror estimates.')


def define_jitter_flags() -> None:
  flags.DEFINE_multi_string('tracks', None, "track's --out folders, one row pair each.")


COMMANDS = {
  'track': cli.Command('Tracks every GRID video and its mirror image.', track, define_track_flags),
  'layout': cli.Command(
    'A GRID folder with landmark files, for --landmarks file.', layout, define_layout_flags
  ),
  'jitter': cli.Command("Rigid points' frame-to-frame jitter.", jitter, define_jitter_flags),
}

if __name__ == '__main__':
  cli.run_commands(PROGRAM, COMMANDS)
