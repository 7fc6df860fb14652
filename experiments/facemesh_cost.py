"""What FaceMesh costs each held-out person: one set of videos extracted twice, two models.

python experiments/facemesh_cost.py --facemesh_data data/ctx100m --rendered_data data/ctx100r \\
  --facemesh_run RUN_A --rendered_run RUN_B [--splits val,test]

--facemesh_data: a generated set extracted with FaceMesh (`python -m extraction`);
--rendered_data: the same videos extracted from the landmarks the generator rendered
(`generate --save_landmarks`, `python -m extraction --landmarks file`); the two runs:
workdirs trained on each. Per held-out person of --splits:
  fidelity  correlation of the two extractions' motion (the 88 ROI landmarks' x and y
            about each clip's mean frame, every frame of every clip of the person):
            how closely FaceMesh follows the mouth the generator drew
  accuracy  of each run on the person's clips (best checkpoint, lipjax.evaluate)
and the correlations over people of fidelity with the FaceMesh run's accuracy and
with the accuracy FaceMesh loses (rendered minus FaceMesh).
"""

import shlex
import sys
import time

from absl import flags
import numpy as np

from extraction import cli
from lipjax import data_source
from lipjax import evaluate

FLAGS = flags.FLAGS
PROGRAM = 'experiments/facemesh_cost.py'


def motion(landmarks: np.ndarray, length: int) -> np.ndarray:
  """A clip's ROI landmarks [T, 88, 3] -> x, y motion about its mean frame [length, 88, 2]."""
  xy = landmarks[:length, :, :2]
  return xy - xy.mean(axis=0)


def person_fidelity(facemesh_data: str, rendered_data: str, split: str) -> dict[str, float]:
  """speaker -> correlation of the two extractions' motion over the speaker's clips."""
  found = data_source.SplitSource(facemesh_data, split)
  drawn = data_source.SplitSource(rendered_data, split)
  drawn_of = {e['video_id']: e for e in drawn.__getitems__(range(len(drawn)))}
  pairs = {}  # speaker -> ([found motion], [drawn motion])
  for example in found.__getitems__(range(len(found))):
    other = drawn_of.get(example['video_id'])
    if other is None:
      raise ValueError(
        f'{rendered_data} ({split}) has no clip {example["video_id"]!r} of {facemesh_data}: '
        'extract the same videos twice (--landmarks file for the second)'
      )
    length = int(example['length'])
    mine, theirs = pairs.setdefault(example['speaker'], ([], []))
    mine.append(motion(example['landmarks'], length).ravel())
    theirs.append(motion(other['landmarks'], length).ravel())
  return {
    speaker: float(np.corrcoef(np.concatenate(a), np.concatenate(b))[0, 1])
    for speaker, (a, b) in sorted(pairs.items())
  }


def define_flags() -> None:
  """Command-line flags; defined only when run as a program (absl flags are process-global)."""
  flags.DEFINE_string('facemesh_data', None, 'The generated set, extracted with FaceMesh.')
  flags.DEFINE_string('rendered_data', None, 'The same videos, extracted with --landmarks file.')
  flags.DEFINE_string('facemesh_run', None, 'Workdir of a run trained on --facemesh_data.')
  flags.DEFINE_string('rendered_run', None, 'Workdir of a run trained on --rendered_data.')
  flags.DEFINE_list('splits', ['val', 'test'], 'Held-out splits whose people to compare.')


def main(argv: list[str]) -> None:
  """Prints the per-person table, the correlations and the command."""
  del argv  # takes no arguments
  cli.require('facemesh_data', 'rendered_data', 'facemesh_run', 'rendered_run')
  print(f'$ {shlex.join(["python", PROGRAM] + sys.argv[1:])}')
  print(time.strftime('%Y-%m-%d %H:%M'))
  rows = []  # (split, speaker, fidelity, FaceMesh accuracy, rendered accuracy)
  for split in FLAGS.splits:
    fidelity = person_fidelity(FLAGS.facemesh_data, FLAGS.rendered_data, split)
    reports = [
      evaluate.evaluate_workdir(run, split, data_dir)
      for run, data_dir in (
        (FLAGS.facemesh_run, FLAGS.facemesh_data),
        (FLAGS.rendered_run, FLAGS.rendered_data),
      )
    ]
    for speaker, value in fidelity.items():
      mesh, drawn = (r['per_speaker'][speaker]['accuracy'] for r in reports)
      rows.append((split, speaker, value, mesh, drawn))
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
  fidelity, mesh, drawn = np.array([r[2:] for r in rows]).T
  print(
    f'\nover {len(rows)} people: r(fidelity, FaceMesh accuracy) = '
    f'{np.corrcoef(fidelity, mesh)[0, 1]:.2f}; r(fidelity, accuracy FaceMesh loses) = '
    f'{np.corrcoef(fidelity, drawn - mesh)[0, 1]:.2f}'
  )


if __name__ == '__main__':
  cli.run(main, PROGRAM, define_flags, takes_arguments=False, description=__doc__)
