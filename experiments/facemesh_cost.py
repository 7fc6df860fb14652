"""What FaceMesh costs each held-out person: one set of videos extracted twice, two models.

python experiments/facemesh_cost.py --facemesh_data data/ctx100m --rendered_data data/ctx100r \\
  [--facemesh_run RUN_A --rendered_run RUN_B] [--splits val,test]

--facemesh_data: a generated set extracted with FaceMesh (`python -m extraction`);
--rendered_data: the same videos extracted from the landmarks the generator rendered
(`generate --save_landmarks`, `python -m extraction --landmarks file`); the two runs:
workdirs trained on each. Per held-out person of --splits:
  fidelity  correlation of the two extractions' motion (the 88 ROI landmarks' x and y
            about each clip's mean frame, every frame of every clip of the person):
            how closely FaceMesh follows the mouth the generator drew
  accuracy  of each run on the person's clips (best checkpoint, lipjax.evaluate)
and the correlations over people of fidelity with the FaceMesh run's accuracy and
with the accuracy FaceMesh loses (rendered minus FaceMesh). Then, per articulation measure
(MEASURES: lip opening, mouth width, jaw, lip thickness, corners), FaceMesh against drawn:
  correlation  of the measure's movement about each clip's mean
  gain         the slope of FaceMesh's movement on the drawn one (1: read at full size)
averaged over each split's people. Without the runs: fidelity and measures only.
"""

import shlex
import sys
import time

from absl import app
from absl import flags
import landmark_fidelity  # experiments/: the articulation measures
import numpy as np

from extraction import cli
from extraction import roi
from lipjax import data_source
from lipjax import evaluate

FLAGS = flags.FLAGS
PROGRAM = 'experiments/facemesh_cost.py'
# Articulation measures on extraction's normalised ROI landmarks [T, 88, 3] -> [T].
MEASURES = landmark_fidelity.measures(roi.node)


def motion(landmarks: np.ndarray, length: int) -> np.ndarray:
  """A clip's ROI landmarks [T, 88, 3] -> x, y motion about its mean frame [length, 88, 2]."""
  xy = landmarks[:length, :, :2]
  return xy - xy.mean(axis=0)


def paired_clips(facemesh_data: str, rendered_data: str, split: str):
  """Yields (speaker, FaceMesh landmarks, drawn landmarks), each [length, 88, 3], per clip."""
  found = data_source.SplitSource(facemesh_data, split)
  drawn = data_source.SplitSource(rendered_data, split)
  drawn_of = {e['video_id']: e for e in drawn.__getitems__(range(len(drawn)))}
  for example in found.__getitems__(range(len(found))):
    other = drawn_of.get(example['video_id'])
    if other is None:
      raise ValueError(
        f'{rendered_data} ({split}) has no clip {example["video_id"]!r} of {facemesh_data}: '
        'extract the same videos twice (--landmarks file for the second)'
      )
    length = int(example['length'])
    yield example['speaker'], example['landmarks'][:length], other['landmarks'][:length]


def person_fidelity(clips) -> dict[str, float]:
  """speaker -> correlation of the two extractions' motion over the speaker's clips (paired_clips)."""
  pairs = {}  # speaker -> ([found motion], [drawn motion])
  for speaker, found, drawn in clips:
    mine, theirs = pairs.setdefault(speaker, ([], []))
    mine.append(motion(found, len(found)).ravel())
    theirs.append(motion(drawn, len(drawn)).ravel())
  return {
    speaker: float(np.corrcoef(np.concatenate(a), np.concatenate(b))[0, 1])
    for speaker, (a, b) in sorted(pairs.items())
  }


def measure_agreement(clips) -> dict[str, tuple]:
  """measure -> (correlation, gain) of FaceMesh's movement against the drawn one, mean over people."""
  moves = {}  # (speaker, measure) -> ([found], [drawn]) movements about each clip's mean
  for speaker, found, drawn in clips:
    for name, measure in MEASURES.items():
      a, b = measure(found), measure(drawn)
      mine, theirs = moves.setdefault((speaker, name), ([], []))
      mine.append(a - a.mean())
      theirs.append(b - b.mean())
  per_person = {}  # measure -> [(correlation, gain)]
  for (_, name), (mine, theirs) in moves.items():
    a, b = np.concatenate(mine), np.concatenate(theirs)
    per_person.setdefault(name, []).append((np.corrcoef(a, b)[0, 1], (a @ b) / (b @ b)))
  return {name: tuple(np.mean(values, axis=0)) for name, values in per_person.items()}


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('facemesh_data', None, 'The generated set, extracted with FaceMesh.')
  flags.DEFINE_string('rendered_data', None, 'The same videos, extracted with --landmarks file.')
  flags.DEFINE_string('facemesh_run', None, 'Workdir of a run trained on --facemesh_data.')
  flags.DEFINE_string('rendered_run', None, 'Workdir of a run trained on --rendered_data.')
  flags.DEFINE_list('splits', ['val', 'test'], 'Held-out splits whose people to compare.')


def main(argv: list[str]) -> None:
  """Prints the per-person table, the correlations, the measures' table and the command."""
  del argv  # takes no arguments
  cli.require('facemesh_data', 'rendered_data')
  runs = (FLAGS.facemesh_run, FLAGS.rendered_run)
  if bool(runs[0]) != bool(runs[1]):
    raise app.UsageError('--facemesh_run and --rendered_run go together')
  print(f'$ {shlex.join(["python", PROGRAM] + sys.argv[1:])}')
  print(time.strftime('%Y-%m-%d %H:%M'))
  rows = []  # (split, speaker, fidelity, FaceMesh accuracy, rendered accuracy)
  agreement = []  # per split: measure -> (correlation, gain)
  for split in FLAGS.splits:
    clips = list(paired_clips(FLAGS.facemesh_data, FLAGS.rendered_data, split))
    fidelity = person_fidelity(clips)
    agreement.append(measure_agreement(clips))
    reports = [
      evaluate.evaluate_workdir(run, split, data_dir)
      for run, data_dir in zip(runs, (FLAGS.facemesh_data, FLAGS.rendered_data))
      if run
    ]
    for speaker, value in fidelity.items():
      accuracies = [r['per_speaker'][speaker]['accuracy'] for r in reports] or [np.nan, np.nan]
      rows.append((split, speaker, value, *accuracies))
  print('\n| split | person | fidelity | accuracy, FaceMesh | accuracy, rendered |')
  print('|---|---|---|---|---|')
  for split, speaker, value, mesh, drawn in rows:
    print(f'| {split} | {speaker} | {value:.3f} | {mesh:.2f} | {drawn:.2f} |')
  for split in FLAGS.splits:
    mine = np.array([r[2:] for r in rows if r[0] == split])
    print(
      f'| {split} mean | {len(mine)} people | {mine[:, 0].mean():.3f} | {mine[:, 1].mean():.3f} '
      f'| {mine[:, 2].mean():.3f} |'
    )
  if runs[0]:
    fidelity, mesh, drawn = np.array([r[2:] for r in rows]).T
    print(
      f'\nover {len(rows)} people: r(fidelity, FaceMesh accuracy) = '
      f'{np.corrcoef(fidelity, mesh)[0, 1]:.2f}; r(fidelity, accuracy FaceMesh loses) = '
      f'{np.corrcoef(fidelity, drawn - mesh)[0, 1]:.2f}'
    )
  print('\nper articulation measure, FaceMesh against drawn, mean over people: correlation / gain')
  print('| measure | ' + ' | '.join(FLAGS.splits) + ' |')
  print('|---|' + '---|' * len(FLAGS.splits))
  for name in MEASURES:
    cells = ' | '.join(f'{a[name][0]:.2f} / {a[name][1]:.2f}' for a in agreement)
    print(f'| {name} | {cells} |')


if __name__ == '__main__':
  cli.run(main, PROGRAM, define_flags, takes_arguments=False, description=__doc__)
