"""A whole extraction run: clips -> worker processes -> per-clip cache -> shards -> metadata.

One pass per video: a worker task is a video with all its examples (GRID's six
words, a manifest's rows naming one video); it is decoded and tracked once over the
span of their windows (clip.extract_windows), and each example is cut from that.

Resumable: each clip's result (arrays, or the reason it failed) is cached under
OUT/.cache/ by a key of its inputs, its video's other examples and the settings,
written atomically by the worker that made it. A rerun after a kill skips cached
clips and builds the shards from the cache in a fixed order, so it yields the same shards.

Partitionable: with num_shards=N, the clips of the k-th video of each split (in
sorted order) go to shard k % N (within a file, records follow shards.record_order). `shard_index=i`
processes only shard i (one array job), writes that shard of every split and a
part record under OUT/.parts/; whichever job finds all N parts present writes
the tfds metadata and the merged report.
Each part carries a fingerprint of the whole input (every clip's cache key, so
its row, its files and the settings) and the class list: a part left in OUT by
a run over another manifest is never merged; its job must run again.
Without shard_index one process pool does every shard.
Shards are ArrayRecord unless file_format='tfrecord' (extraction/shards.py); the
format is part of the input's fingerprint, so parts of two formats never merge.
"""

import concurrent.futures
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import time

import numpy as np

from extraction import clip as clip_lib
from extraction import face_model as face_model_lib
from extraction import features
from extraction import grid
from extraction import landmark_files
from extraction import native_stderr
from extraction import roi
from extraction import schema
from extraction import shards
from extraction import sources
from extraction import tokens
from extraction import transcripts
from extraction import workers as workers_lib

REPORT_NAME = 'extraction_report.json'
_CACHE_DIR = '.cache'
_PARTS_DIR = '.parts'
_METADATA_FILES = (
  'dataset_info.json',
  'features.json',
  'metadata.json',
)  # tfds's, shards.write_metadata


def _file_stamp(path: str | None) -> list:
  if not path or not os.path.exists(path):
    return [path, None]
  stat = os.stat(path)
  return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


def cache_key(
  clip: sources.Clip, settings: clip_lib.Settings, siblings=(), face_model_sha256: str = ''
) -> str:
  """A stable hash of everything a clip's result depends on.

  siblings: the ids of the other examples of the clip's video, whose windows the one
  tracking pass over the video also spans (empty for a video of one example).
  face_model_sha256: the Face Landmarker bundle's digest (settings.landmarks 'landmarker').
  """
  stamped = dataclasses.asdict(settings)
  # A setting added later, at the value every extraction before it used, is left out:
  # the keys of caches made before it stay valid.
  for name, before in clip_lib.ADDED_LATER.items():
    if stamped[name] == before:
      del stamped[name]
  landmark_file = []
  if settings.landmarks == clip_lib.LANDMARK_FILE:
    landmark_file = [_file_stamp(landmark_files.path_for(clip.video_path))]
  blob = json.dumps(
    [
      dataclasses.asdict(clip),
      _file_stamp(clip.video_path),
      _file_stamp(clip.transcript_path),
      *landmark_file,
      stamped,
      schema.SCHEMA_VERSION,
      roi.ROI_INDICES,
      features.AU_NAMES,
      features.GEOMETRY_NAMES,
      *([sorted(siblings)] if siblings else []),
      *([face_model_sha256] if face_model_sha256 else []),
    ],
    sort_keys=True,
    default=str,
  )
  return hashlib.sha1(blob.encode()).hexdigest()


def _cache_paths(out_dir: str, key: str) -> tuple[str, str]:
  base = os.path.join(out_dir, _CACHE_DIR, key[:2], key)
  return base + '.npz', base + '.error.json'


def usable_cores() -> list[int]:
  """The cores this process may run on (a cluster job's cpuset, not the machine's count)."""
  if not hasattr(os, 'sched_getaffinity'):  # macOS and Windows: no affinity API
    return list(range(os.cpu_count() or 1))
  return sorted(os.sched_getaffinity(0))


def _pin(slot: int | None, workers: int) -> None:
  """Pins the calling thread, and every thread it starts later, to one usable core.

  MediaPipe runs each FaceMesh graph on threads of its own; left to float, they
  wake each other across cores, and with one worker per core two graphs fight
  for both; pinned, each graph keeps its core's caches (experiments/bench_extraction.py
  measures the difference).
  Nothing is pinned when there are more workers than cores, no slot is given, or
  the platform has no affinity API (macOS).
  """
  cores = usable_cores()
  if slot is not None and workers <= len(cores) and hasattr(os, 'sched_setaffinity'):
    os.sched_setaffinity(0, {cores[slot % len(cores)]})


def _init_worker(
  settings: clip_lib.Settings,
  face_model_path: str | None = None,
  quiet_native_logs: bool = False,
  ready=None,
  slots=None,
  workers: int = 1,
) -> None:
  """Pins this worker to its own core and creates its face tracker once (if it reads frames)."""
  workers_lib.state['ready'] = ready
  if slots is not None:
    with slots.get_lock():
      slot, slots.value = slots.value, slots.value + 1
    _pin(slot, workers)
  if quiet_native_logs:
    # MediaPipe's C++ side prints a dozen warnings per process that no setting silences.
    # A pool worker reports every result and error through its return value, so its
    # stderr carries nothing else worth keeping.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
  from extraction import facemesh

  logging.getLogger('absl').setLevel(logging.ERROR)
  _close_tracker()  # a second run in the same process
  workers_lib.state['tracker'] = facemesh.tracker_for(settings, face_model_path)


def _close_tracker() -> None:
  """Closes this process's FaceMesh tracker, if it has one."""
  tracker = workers_lib.state.pop('tracker', None)
  if tracker is not None:
    tracker.close()


def _wait_until_all_started() -> None:
  """Blocks until every pool worker has run its initializer (one call per worker)."""
  workers_lib.state['ready'].wait()


def _speech(clip: sources.Clip) -> clip_lib.Speech:
  """Where a clip's speech lies: its manifest interval, else the transcript beside its video."""
  if clip.error:
    raise clip_lib.ClipError(clip.error)
  if clip.interval is not None:
    return clip_lib.Speech(intervals=(clip.interval,), whole=clip.text is not None)
  if not clip.transcript_path or not os.path.isfile(clip.transcript_path):
    raise clip_lib.ClipError(
      f'{clip.transcript_path}: no transcript beside the video (or give start/end in a manifest)'
    )
  try:
    transcript = transcripts.read(clip.transcript_path)
  except transcripts.TranscriptError as error:
    raise clip_lib.ClipError(str(error)) from error
  if transcript.text and transcript.text != clip.label:
    raise clip_lib.ClipError(
      f'{clip.transcript_path}: transcript says {transcript.text!r} '
      f'but the clip is labelled {clip.label!r}'
    )
  return clip_lib.Speech(transcript=transcript, whole=clip.text is not None)


def _extract_video(clips: list[sources.Clip], settings: clip_lib.Settings) -> tuple[list, int]:
  """Extracts the examples of one video: (a ClipArrays or an error reason per clip, frames tracked).

  One decode and one tracking pass serve every clip whose speech could be placed.
  """
  results, speeches = [], []
  for clip in clips:
    try:
      speeches.append(_speech(clip))
      results.append(None)
    except clip_lib.ClipError as error:
      results.append(str(error))
  placed = [k for k, result in enumerate(results) if result is None]
  if not placed:
    return results, 0
  video_path = clips[placed[0]].video_path
  try:
    arrays, track = clip_lib.extract_windows(
      video_path, workers_lib.state['tracker'], settings, speeches
    )
  except clip_lib.ClipError as error:
    arrays, track = [str(error)] * len(placed), None
  except Exception as error:
    # Any other failure (a codec crash, a corrupt container) costs this video's clips only.
    arrays, track = [f'{video_path}: {type(error).__name__}: {error}'] * len(placed), None
  for k, result in zip(placed, arrays):
    results[k] = str(result) if isinstance(result, clip_lib.ClipError) else result
  return results, track.frames_tracked if track is not None else 0


def _process(
  clips: list[sources.Clip], wanted: list[bool], settings: clip_lib.Settings, out_dir: str, keys
) -> tuple[int, int]:
  """Worker task: extracts one video's clips into the cache; returns (frames tracked, clips written).

  clips: every example of the video (the tracking pass spans all their windows, so a clip's
  result does not depend on which of its siblings were cached before); only the wanted
  ones are written.
  """
  results, frames_tracked = _extract_video(clips, settings)
  for clip, key, result, want in zip(clips, keys, results, wanted):
    if not want:
      continue
    array_path, error_path = _cache_paths(out_dir, key)
    os.makedirs(os.path.dirname(array_path), exist_ok=True)
    if isinstance(result, str):
      _atomic_json(
        error_path,
        {'video_id': clip.video_id, 'path': clip.video_path, 'split': clip.split, 'reason': result},
      )
      continue
    tmp = array_path + '.incomplete.npz'
    np.savez(
      tmp,
      source_frames=result.source_frames,
      cut=result.cut,
      resampled=result.resampled,
      **{name: getattr(result, name) for name in schema.CLIP_KEYS},
    )
    os.replace(tmp, array_path)
  return frames_tracked, sum(wanted)


def _atomic_json(path: str, content) -> None:
  tmp = path + '.incomplete'
  with open(tmp, 'w') as f:
    json.dump(content, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


def _is_cached(out_dir: str, key: str) -> bool:
  """True if a clip's result (arrays or failure) is in the cache; reads nothing."""
  return any(os.path.exists(path) for path in _cache_paths(out_dir, key))


def _load_cached(out_dir: str, key: str):
  """Returns ('ok', ClipArrays) or ('error', reason) or (None, None) if not cached."""
  array_path, error_path = _cache_paths(out_dir, key)
  if os.path.exists(array_path):
    with np.load(array_path) as data:
      return 'ok', clip_lib.ClipArrays(
        source_frames=int(data['source_frames']),
        cut=bool(data['cut']),
        resampled=bool(data['resampled']),
        **{name: data[name] for name in schema.CLIP_KEYS},
      )
  if os.path.exists(error_path):
    with open(error_path) as f:
      return 'error', json.load(f)['reason']
  return None, None


def _shard_of(clips: list[sources.Clip], num_shards: int) -> list[int]:
  """Shard of each clip: its video's position within its split, modulo num_shards.

  The examples of one video (in one split) share a shard, so one array job decodes
  and tracks each video; for a corpus of one example a video, clip k goes to shard k % N.
  """
  count, position, out = {}, {}, []
  for clip in clips:
    video = (clip.split, clip.video_path)
    if video not in position:
      position[video] = count.get(clip.split, 0)
      count[clip.split] = position[video] + 1
    out.append(position[video] % num_shards)
  return out


def _videos(clips: list[sources.Clip]) -> dict[str, list[int]]:
  """The usable clips of each video (indices into clips), in order."""
  videos = {}
  for k, clip in enumerate(clips):
    if clip.error is None:
      videos.setdefault(clip.video_path, []).append(k)
  return videos


def _tasks(clips, keys, needed, videos) -> list[tuple[list, list[bool], list[str]]]:
  """One task per video with a clip to extract: all its clips (their windows set the tracked
  span), which of them to write, their keys; a malformed row is a task of its own."""
  tasks = [
    ([clips[k] for k in members], [needed[k] for k in members], [keys[k] for k in members])
    for members in videos.values()
    if any(needed[k] for k in members)
  ]
  tasks += [
    ([clip], [True], [key])
    for clip, key, need in zip(clips, keys, needed)
    if clip.error is not None and need
  ]
  return tasks


def _run_workers(todo, settings, out_dir, workers, progress, face_model_path=None) -> dict:
  """Extracts uncached clips in a process pool, a task per video; returns timing figures.

  todo: (the video's clips, which of them to write, their cache keys) per video.
  frames_processed counts the frames the landmarks were found for (tracked once per video).
  """
  from tqdm import tqdm

  timing = {
    'startup_seconds': 0.0,
    'process_seconds': 0.0,
    'shutdown_seconds': 0.0,
    'frames_processed': 0,
  }
  if not todo:
    return timing
  terminal = native_stderr.unsilenced_stream()  # the bar's, while native stderr is silenced
  bar = tqdm(
    total=sum(sum(wanted) for _, wanted, _ in todo),
    desc='extract',
    unit='clip',
    disable=not progress,
    file=terminal,
  )
  started = time.perf_counter()
  if workers == 1:
    # In this process: pin it (and the FaceMesh threads it starts) for the run, then let go.
    cores = usable_cores()
    _pin(0, 1)
    absl_level = logging.getLogger('absl').level  # _init_worker quiets it, for this run only
    try:
      # MediaPipe's threads and FFmpeg print to stderr at any moment of the run; here, as in a pool
      # worker, none of it reaches the terminal (a clip's failure goes to the report).
      with native_stderr.silenced():
        _init_worker(settings, face_model_path)
        timing['startup_seconds'] = time.perf_counter() - started
        started = time.perf_counter()
        for clips, wanted, keys in todo:
          frames, written = _process(clips, wanted, settings, out_dir, keys)
          timing['frames_processed'] += frames
          bar.update(written)
        timing['process_seconds'] = time.perf_counter() - started
        _close_tracker()  # no FaceMesh thread is left to print once stderr is back
    finally:
      logging.getLogger('absl').setLevel(absl_level)
      if hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, cores)
  else:
    ready, slots = workers_lib.CONTEXT.Barrier(workers), workers_lib.CONTEXT.Value('i', 0)
    init_args = (settings, face_model_path, True, ready, slots, workers)
    with workers_lib.pool(workers, _init_worker, init_args) as pool:
      # Every worker imports mediapipe and builds its graph (seconds) before the clock starts:
      # each barrier task blocks its worker until all have arrived, so no worker takes two.
      for barrier_task in [pool.submit(_wait_until_all_started) for _ in range(workers)]:
        barrier_task.result()
      timing['startup_seconds'] = time.perf_counter() - started
      started = time.perf_counter()
      futures = [
        pool.submit(_process, clips, wanted, settings, out_dir, keys)
        for clips, wanted, keys in todo
      ]
      try:
        for future in concurrent.futures.as_completed(futures):
          frames, written = future.result()
          timing['frames_processed'] += frames
          bar.update(written)
      except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
      timing['process_seconds'] = time.perf_counter() - started
      started = time.perf_counter()
    # Joining the workers (each tears down MediaPipe and TensorFlow) is start-up's twin:
    # a fixed cost per run, reported apart from the steady-state rate.
    timing['shutdown_seconds'] = time.perf_counter() - started
  bar.close()
  terminal.close()
  return timing


def _write_part(
  out_dir, clips, keys, shard_ids, index, num_shards, class_names, settings, file_format, max_tokens
) -> dict:
  """Writes shard `index` of every split from the cache; returns the part record.

  max_tokens > 0: a sentence data set (per_class counts the words of its utterances).
  """
  feature_spec = schema.features(settings.max_frames, class_names, max_tokens)
  label_index = {name: k for k, name in enumerate(class_names)}
  part = {'shard_index': index, 'num_shards': num_shards, 'splits': {}}
  for split in schema.SPLITS:
    members = [(c, k) for c, k, s in zip(clips, keys, shard_ids) if c.split == split and s == index]
    members = [members[i] for i in shards.record_order([c.video_id for c, _ in members])]
    if not any(c.split == split for c in clips):
      continue
    stats = {
      'written': 0,
      'skipped': [],
      'cut': 0,
      'resampled': 0,
      'frames': 0,
      'face_frames': 0,
      'speech_frames': 0,
      'per_class': {},
    }
    landmark_sum = np.zeros((schema.NUM_NODES, 3))
    speakers = set()

    def examples(members, stats, landmark_sum, speakers):
      for clip, key in members:
        status, result = _load_cached(out_dir, key)
        if status != 'ok':
          stats['skipped'].append(
            {
              'video_id': clip.video_id,
              'path': clip.video_path,
              'reason': result or 'not extracted',
            }
          )
          continue
        length = len(result.landmarks)
        stats['written'] += 1
        stats['cut'] += int(result.cut)
        stats['resampled'] += int(result.resampled)
        stats['frames'] += length
        stats['face_frames'] += int(result.face_mask.sum())
        stats['speech_frames'] += int(result.speech_mask.sum())
        for label in clip.text.upper().split() if max_tokens else [clip.label]:
          stats['per_class'][label] = stats['per_class'].get(label, 0) + 1
        landmark_sum[:] += result.landmarks.sum(axis=0)
        speakers.add(clip.speaker)
        yield result.to_example(
          label_index.get(clip.label, 0),
          clip.speaker,
          clip.video_id,
          settings.max_frames,
          text=clip.text if max_tokens else None,
          max_tokens=max_tokens,
        )

    path = shards.shard_path(out_dir, split, index, num_shards, file_format)
    count, num_bytes = shards.write_shard(
      path, examples(members, stats, landmark_sum, speakers), feature_spec
    )
    stats.update(
      count=count, bytes=num_bytes, speakers=sorted(speakers), landmark_sum=landmark_sum.tolist()
    )
    part['splits'][split] = stats
  return part


def _landmarker(settings: clip_lib.Settings, face_model: str | None) -> tuple[str | None, dict]:
  """(the Face Landmarker bundle's path, what the metadata records of it) when the settings use it.

  The record (the bundle's SHA-256 and the mediapipe that ran it) tells which model made a
  data set; the digest is in every clip's cache key, so another bundle extracts anew.
  """
  if settings.landmarks != clip_lib.LANDMARKER:
    return None, {}
  path = face_model_lib.resolve(face_model)
  return path, {
    'sha256': face_model_lib.digest(path),
    'file': os.path.basename(path),
    'mediapipe': importlib.metadata.version('mediapipe'),
  }


def _max_tokens(clips: list[sources.Clip]) -> int:
  """The padded token length of a sentence input (its longest usable utterance); 0 for words."""
  if not any(c.text is not None for c in clips):
    return 0
  usable = [c for c in clips if c.error is None]
  if not usable:
    raise sources.SourceError('no usable sentence: every example is malformed')
  return max(len(tokens.encode(c.text)) for c in usable)


def _row_entry(clip: sources.Clip) -> dict:
  """A bad input row as the report lists it."""
  return {'video_id': clip.video_id, 'path': clip.video_path, 'reason': clip.error}


def _unsplit_rows(clips: list[sources.Clip]) -> list[dict]:
  """Rows in no known split: no split's skipped list shows them, so the report lists them apart."""
  return [_row_entry(c) for c in clips if c.split not in schema.SPLITS]


def _too_few_classes(input_path: str, clips, class_names) -> str:
  """The error for an input whose usable clips name fewer than 2 classes, with the bad rows' reasons."""
  reasons = [c.error for c in clips if c.error is not None]
  if class_names:
    message = (
      f'{input_path}: only one class ({class_names[0]!r}) among the usable clips; '
      'a word classifier needs at least 2'
    )
  else:
    message = f'{input_path}: no usable clip; every row is malformed'
  if reasons:
    shown = '; '.join(reasons[:3]) + (f'; and {len(reasons) - 3} more' if len(reasons) > 3 else '')
    message += f' ({len(reasons)} bad: {shown}; all in {REPORT_NAME})'
  return message


def _too_few_written(input_path: str, written_classes, failed: int) -> str:
  """The error for an extraction whose written clips span fewer than 2 classes."""
  found = f'only {written_classes[0]!r}' if written_classes else 'none'
  return (
    f'{input_path}: the clips extracted span fewer than 2 classes ({found}; {failed} '
    f'clips failed, reasons in {REPORT_NAME}); no data set written'
  )


def _refuse(out_dir: str, input_path: str, message: str, **report) -> None:
  """Raises the error as a SourceError, with a report of it unless out_dir holds a data set's."""
  if not os.path.exists(os.path.join(out_dir, _METADATA_FILES[0])):  # keep a finished set's report
    os.makedirs(out_dir, exist_ok=True)
    _atomic_json(
      os.path.join(out_dir, REPORT_NAME),
      {'input': os.path.abspath(input_path), 'complete': False, 'error': message, **report},
    )
  raise sources.SourceError(message)


def input_fingerprint(keys: list[str], class_names, num_shards: int, file_format: str) -> str:
  """A hash of every clip's cache key (its row, files, the settings), the classes and the shards."""
  blob = json.dumps([keys, list(class_names), num_shards, file_format])
  return hashlib.sha1(blob.encode()).hexdigest()


def _part_path(out_dir: str, index: int, num_shards: int) -> str:
  return os.path.join(out_dir, _PARTS_DIR, f'part-{index:05d}-of-{num_shards:05d}.json')


def _read_parts(out_dir: str, num_shards: int, fingerprint: str) -> tuple[list[dict], list[int]]:
  """Returns (the part records made from this input, indices of parts made from another)."""
  parts, stale = [], []
  for index in range(num_shards):
    path = _part_path(out_dir, index, num_shards)
    if not os.path.exists(path):
      continue
    with open(path) as f:
      part = json.load(f)
    if part.get('fingerprint') == fingerprint:
      parts.append(part)
    else:
      stale.append(index)
  return parts, stale


def _merge_report(parts: list[dict], class_names, settings, input_path, rejected) -> dict:
  """Merges part records into the extraction report (per split and in total)."""
  splits = {}
  for split in schema.SPLITS:
    records = [p['splits'][split] for p in parts if split in p['splits']]
    if not records:
      continue
    frames = sum(r['frames'] for r in records)
    per_class = {}
    for r in records:
      for label, n in r['per_class'].items():
        per_class[label] = per_class.get(label, 0) + n
    splits[split] = {
      'written': sum(r['written'] for r in records),
      'skipped': [s for r in records for s in r['skipped']],
      'cut_to_max_frames': sum(r['cut'] for r in records),
      'resampled_fps': sum(r['resampled'] for r in records),
      'frames': frames,
      'face_detection_rate': sum(r['face_frames'] for r in records) / max(frames, 1),
      'speech_fraction': sum(r['speech_frames'] for r in records) / max(frames, 1),
      'speakers': sorted({s for r in records for s in r['speakers']}),
      'per_class': dict(sorted(per_class.items())),
    }
  return {
    'input': os.path.abspath(input_path),
    'settings': dataclasses.asdict(settings),
    'classes': list(class_names),
    'splits': splits,
    'rejected': rejected,
    'written': sum(s['written'] for s in splits.values()),
    'failed': sum(len(s['skipped']) for s in splits.values()) + len(rejected),
  }


def _remove_other_formats(out_dir: str, file_format: str) -> None:
  """Deletes shards of another file format: an earlier extraction into out_dir, now replaced."""
  for name in os.listdir(out_dir):
    for other in shards.FILE_FORMATS:
      if (
        other != file_format and name.startswith(f'{schema.DATASET_NAME}-') and f'.{other}-' in name
      ):
        os.remove(os.path.join(out_dir, name))


def _finalize(
  out_dir,
  parts,
  class_names,
  settings,
  input_path,
  rejected,
  file_format,
  max_tokens,
  grid_options,
  landmarker,
) -> dict:
  """Writes tfds metadata and the merged report once every part is present."""
  shard_lengths, num_bytes = {}, {}
  landmark_sum, train_frames = np.zeros((schema.NUM_NODES, 3)), 0
  for part in sorted(parts, key=lambda p: p['shard_index']):
    for split, stats in part['splits'].items():
      shard_lengths.setdefault(split, []).append(stats['count'])
      num_bytes[split] = num_bytes.get(split, 0) + stats['bytes']
      if split == 'train':
        landmark_sum += np.array(stats['landmark_sum'])
        train_frames += stats['frames']
  report = _merge_report(parts, class_names, settings, input_path, rejected)
  written_classes = sorted({label for s in report['splits'].values() for label in s['per_class']})
  for split, lengths in shard_lengths.items():
    if sum(lengths) == 0 or len(written_classes) < 2:
      # A split whose every clip failed has no files for tfds; a data set of fewer than 2 classes none.
      for index in range(len(lengths)):
        os.remove(shards.shard_path(out_dir, split, index, len(lengths), file_format))
  if len(written_classes) < 2:
    for name in _METADATA_FILES:  # an earlier run's, describing shards just overwritten
      if os.path.exists(os.path.join(out_dir, name)):
        os.remove(os.path.join(out_dir, name))
    _refuse(
      out_dir, input_path, _too_few_written(input_path, written_classes, report['failed']), **report
    )
  senders, receivers = roi.anatomical_edges()
  meta = schema.DatasetMeta.for_roi(
    class_names=class_names,
    max_frames=settings.max_frames,
    fps=settings.fps,
    senders=senders,
    receivers=receivers,
    mean_landmarks=(landmark_sum / max(train_frames, 1)).tolist(),
    extraction={
      'settings': dataclasses.asdict(settings),
      'input': report['input'],
      'num_shards': len(parts),
      'record_order': shards.RECORD_ORDER,
      'file_format': file_format,
      **({'grid': dataclasses.asdict(grid_options)} if grid_options else {}),
      **({'face_model': landmarker} if landmarker else {}),
    },
    **({'token_set': list(tokens.TOKENS), 'max_tokens': max_tokens} if max_tokens else {}),
  )
  _remove_other_formats(out_dir, file_format)  # tfds describes a folder of one format
  shards.write_metadata(out_dir, meta, shard_lengths, num_bytes, file_format)
  _atomic_json(os.path.join(out_dir, REPORT_NAME), report)
  return report


def run(
  input_path: str,
  out_dir: str,
  workers: int | None = None,
  settings: clip_lib.Settings | None = None,
  num_shards: int = 1,
  shard_index: int | None = None,
  progress: bool = True,
  file_format: str = shards.ARRAY_RECORD,
  grid_options: grid.Options | None = None,
  face_model: str | None = None,
) -> dict:
  """Extracts a corpus into shards + metadata; returns the report.

  The report's `complete` is False when this was one array job and other
  shards are still missing (metadata is then written by the last job).
  grid_options: the examples and splits of a GRID folder (extraction/grid.py).
  face_model: the Face Landmarker's bundle (settings.landmarks 'landmarker'); None: found by
  face_model.resolve (LIPJAX_FACE_MODEL, the user cache, else one download).
  """
  if num_shards < 1:
    raise ValueError(f'num_shards must be >= 1, got {num_shards}')
  if shard_index is not None and not 0 <= shard_index < num_shards:
    raise ValueError(f'shard_index must be in [0, {num_shards}), got {shard_index}')
  settings = settings or clip_lib.Settings()
  settings.check()
  shards.check_file_format(file_format)
  if workers is not None and workers < 1:
    raise ValueError(f'workers must be at least 1, got {workers}')
  workers = workers or len(usable_cores())
  face_model_path, landmarker = _landmarker(settings, face_model)
  if sources.layout(input_path) == sources.GRID:
    grid_options = grid_options or grid.Options()
  clips = sources.discover(input_path, grid_options)
  max_tokens = _max_tokens(clips)
  class_names = sorted({c.label for c in clips if c.error is None and c.label})
  if max_tokens:
    class_names = []  # a sentence data set: its utterances are token sequences, not classes
  elif len(class_names) < 2:
    _refuse(
      out_dir,
      input_path,
      _too_few_classes(input_path, clips, class_names),
      rejected=[_row_entry(c) for c in clips if c.error is not None],
    )
  videos = _videos(clips)
  digest = landmarker.get('sha256', '')
  keys = [
    cache_key(c, settings, [clips[j].video_id for j in videos[c.video_path] if j != k], digest)
    if c.error is None
    else cache_key(c, settings, face_model_sha256=digest)
    for k, c in enumerate(clips)
  ]
  shard_ids = _shard_of(clips, num_shards)
  mine = range(num_shards) if shard_index is None else [shard_index]
  needed = [s in mine and not _is_cached(out_dir, k) for k, s in zip(keys, shard_ids)]
  todo = _tasks(clips, keys, needed, videos)
  os.makedirs(out_dir, exist_ok=True)
  logging.info(
    '%d clips of %d videos (%d cached), %s -> %s',
    sum(s in mine for s in shard_ids),
    len({c.video_path for c, s in zip(clips, shard_ids) if s in mine}),
    sum(s in mine for s in shard_ids) - sum(needed),
    f'sentences of up to {max_tokens} tokens' if max_tokens else f'{len(class_names)} classes',
    out_dir,
  )
  timing = _run_workers(todo, settings, out_dir, workers, progress, face_model_path)

  parts_dir = os.path.join(out_dir, _PARTS_DIR)
  os.makedirs(parts_dir, exist_ok=True)
  fingerprint = input_fingerprint(keys, class_names, num_shards, file_format)
  for index in mine:
    part = _write_part(
      out_dir,
      clips,
      keys,
      shard_ids,
      index,
      num_shards,
      class_names,
      settings,
      file_format,
      max_tokens,
    )
    part['fingerprint'] = fingerprint
    _atomic_json(_part_path(out_dir, index, num_shards), part)
  parts, stale = _read_parts(out_dir, num_shards, fingerprint)
  if stale:
    logging.warning(
      '%s: shard(s) %s were written by a run over another input or with other '
      'settings; not merged: rerun those --shard_index jobs to redo them',
      out_dir,
      ', '.join(map(str, stale)),
    )
  if len(parts) < num_shards:
    return {
      'complete': False,
      'parts_done': len(parts),
      'num_shards': num_shards,
      'stale_parts': stale,
      **timing,
    }
  report = _finalize(
    out_dir,
    parts,
    class_names,
    settings,
    input_path,
    _unsplit_rows(clips),
    file_format,
    max_tokens,
    grid_options,
    landmarker,
  )
  report.update(complete=True, workers=workers, **timing)
  if timing['process_seconds']:
    report['frames_per_second'] = timing['frames_processed'] / timing['process_seconds']
  _atomic_json(os.path.join(out_dir, REPORT_NAME), report)
  return report
