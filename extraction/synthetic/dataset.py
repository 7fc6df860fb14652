"""Synthetic word clips -> LRW-style folders, a CSV manifest and generator.json.

Layout written under OUT:
  WORD/{train,val,test}/WORD_00001.mp4 + WORD_00001.txt
      isolated words (context_words 0): Text/Start/End, the word between silences;
      running speech (context_words K > 0): a num_frames window cut as LRW cuts it,
      the word's centre at the window's centre, and LRW's own transcript
      (Text: WORD / Conf: 4 / Duration: 0.420000 seconds), Duration the word's true length
  _BACKGROUND_/{train,val,test}/_BACKGROUND__00001.mp4 + .txt   (background_fraction F > 0)
      windows of the same cut with no vocabulary word: centred on a context word of 4+
      letters (half of them), on a pause or on a word boundary (a quarter each); round(F x
      word clips per speaker) per speaker. Transcript: LRW's, Text _BACKGROUND_ (schema.
      BACKGROUND_LABEL), Duration the centred word's, or for a pause or boundary the mean
      duration of the two words beside it (word-sized, so it does not give the class away)
  manifest.csv   path,label,split,speaker,start,end of all the above (paths relative to
                 OUT); start/end empty for running speech: read the transcript's Duration
  sentences/{split}_00001.mp4 + .txt   (sentences N > 0: N per speaker)
      whole utterances (vocabulary and context words mixed, silence before and after) with
      the LRS2/LRS3 transcript: Text: THE WHOLE SENTENCE, Conf, a blank line, then
      `WORD START END ASDSCORE` and one `WORD 0.12 0.40 1.0` row per word (seconds from
      the first frame; transcripts.Transcript.words reads them). Flat, not in split
      folders, so that `python -m extraction --input OUT` does not take them for a word.
  sentences.csv  path,split,speaker,frames,text of the sentences
  grid/SPEAKER/NAME.mp4 + grid/alignments/SPEAKER/NAME.align   (grid_sentences N > 0)
      N sentences of GRID's grammar per speaker ("bin blue at f two now", letters said by
      their names), 3 s each as GRID's, in GRID's layout and .align format
      (extraction/grid.py): `python -m extraction --input OUT/grid` reads them as GRID
  generator.json settings, running_speech settings, vocabulary, viseme sequences, the
                 lexicon, speakers per split, ceiling accuracy (over the vocabulary; with
                 background also ceiling_accuracy_with_background); written last, so its
                 presence marks a finished set.
Every clip draws its randomness from its own seed (run seed, word, speaker,
clip number), so a clip's bytes do not depend on worker count or order.
Speakers and splits are the same for words, background and sentences.
"""

import contextlib
import csv
import dataclasses
import json
import os
import sys
import zlib

import cv2
import numpy as np
import tqdm

from extraction import face_model as face_model_lib
from extraction import facemesh
from extraction import grid
from extraction import landmark_files
from extraction import native_stderr
from extraction import schema
from extraction import workers as workers_lib
from extraction.synthetic import faces as faces_lib
from extraction.synthetic import lexicon as lexicon_lib
from extraction.synthetic import phonetics
from extraction.synthetic import render
from extraction.synthetic import running

# Three confusable sets (PP aa DD; FF aa nn) and five distinct words: ceiling 7/10.
DEFAULT_WORDS = ('BAT', 'PAT', 'MAT', 'FAN', 'VAN', 'CHEESE', 'MOON', 'WATCH', 'YES', 'SHOE')
SPLITS = ('train', 'val', 'test')
# Bumped when the same settings would generate a different set (the demo cache checks it).
# 5: faces found by the Face Landmarker (IMAGE mode) instead of the legacy FaceMesh.
GENERATOR_VERSION = 5
MANIFEST_COLUMNS = ('path', 'label', 'split', 'speaker', 'start', 'end')
SENTENCE_COLUMNS = ('path', 'split', 'speaker', 'frames', 'text')
SENTENCES_DIR = 'sentences'
GRID_DIR = 'grid'
# GRID's recordings place the sentence 0.3-1.2 s into its 3 s (the s1 alignments').
GRID_LEAD = (0.3, 1.2)


@dataclasses.dataclass(frozen=True)
class Settings:
  """Everything that decides the generated set (written into generator.json)."""

  words: tuple[str, ...] = DEFAULT_WORDS
  seed: int = 0
  fps: float = 25.0
  num_frames: int = 29  # LRW: 1.16 s at 25 fps
  clips_per_speaker: int = 5  # per word
  variants_per_face: int = 1  # speakers made from each face photo, each drawn as a person
  # Built-in faces: the seven photos of six people, and this many of scikit-image's LFW crops.
  lfw_faces: int = 14
  val_speakers: int = 2
  test_speakers: int = 4
  # 0: every training speaker. N > 0: only the first N of them in a seeded order, the
  # held-out people as without it (the speakers-against-clips experiment).
  train_speakers: int = 0
  # Clips of each word per val or test speaker (0: clips_per_speaker).
  held_out_clips_per_speaker: int = 0
  rate_range: tuple[float, float] = (0.7, 1.15)  # speaking-rate factor per clip
  duration_jitter: float = 0.15  # log-normal std of each viseme's duration
  lead_range: tuple[float, float] = (0.08, 0.5)  # leading silence, seconds
  min_trail: float = 0.08  # shortest trailing silence, seconds
  coarticulation_ms: float = 30.0  # std of the Gaussian smoothing of targets
  # Jaw and lip opening at rest, drawn per clip: people rest with the lips closed
  # or apart (the carphone man, filmed mid-conversation, rests with them apart).
  rest_open_range: tuple[float, float] = (0.0, 0.35)
  head_degrees: float = 3.0  # head-motion amplitudes
  head_scale: float = 0.03
  head_shift: float = 4.0  # pixels
  brightness_jitter: float = 0.08  # per-clip exposure change
  # Opacity of a lip-coloured fill of the outer lip contour (render.paint_mouth); 0: the
  # photo's own lips only, as generator version 4 drew them.
  lip_paint: float = 0.0


# Settings added after GENERATOR_VERSION 4, with the value that draws what version 4 drew:
# a generator.json written before one of them was made with that value.
SETTINGS_ADDED_LATER = {'lip_paint': 0.0}


@dataclasses.dataclass(frozen=True)
class ClipJob:
  """One clip to render: where it goes and what it says."""

  word: str  # a vocabulary word, BACKGROUND_LABEL, or SENTENCE
  split: str
  speaker: str
  take: int
  relpath: str  # WORD/split/WORD_00001.mp4


SENTENCE = 'sentence'  # ClipJob.word of a sentence (lower case: never a vocabulary word)
GRID_SENTENCE = 'grid-sentence'  # ClipJob.word of a GRID sentence (its words: the file name)


def _stable_hash(text: str) -> int:
  """A process-independent 32-bit hash (Python's hash() is salted per process)."""
  return zlib.crc32(text.encode('utf-8'))


def clip_rng(settings: Settings, word: str, speaker: str, take: int) -> np.random.Generator:
  """The random generator of one clip, independent of every other clip."""
  return np.random.default_rng([settings.seed, _stable_hash(word), _stable_hash(speaker), take])


def speech_timing(
  viseme_seq,
  settings: Settings,
  rng: np.random.Generator,
  style: faces_lib.Style = faces_lib.NEUTRAL_STYLE,
):
  """Draws viseme durations and the leading silence; returns (durations [V], start, end)."""
  rate = rng.uniform(*settings.rate_range) * style.rate
  jitter = np.exp(rng.normal(0.0, settings.duration_jitter, size=len(viseme_seq)))
  durations = phonetics.viseme_durations(viseme_seq, rate, jitter)
  clip_s = settings.num_frames / settings.fps
  room = clip_s - settings.lead_range[0] - settings.min_trail
  if durations.sum() > room:  # a long word in a short clip: speak faster
    durations *= room / durations.sum()
  latest = clip_s - settings.min_trail - durations.sum()
  lead = rng.uniform(
    settings.lead_range[0], max(settings.lead_range[0], min(settings.lead_range[1], latest))
  )
  return durations, float(lead), float(lead + durations.sum())


def rest_articulation(opening: float) -> np.ndarray:
  """The articulation channels of a mouth at rest with jaw and lips opened by `opening`.  # [5]"""
  rest = np.zeros(len(phonetics.CHANNELS))
  rest[[phonetics.CHANNELS.index('jaw'), phonetics.CHANNELS.index('lip_open')]] = opening
  return rest


def _rest(settings: Settings, style: faces_lib.Style, rng) -> np.ndarray:
  """A clip's mouth at rest: drawn from rest_open_range, moved by the speaker's habit.  # [5]"""
  return rest_articulation(
    float(np.clip(rng.uniform(*settings.rest_open_range) + style.rest_open, 0, 1))
  )


def coarticulation_s(settings: Settings, style: faces_lib.Style) -> float:
  """The speaker's coarticulation smoothing (std, seconds)."""
  return settings.coarticulation_ms / 1000.0 * style.coarticulation


@dataclasses.dataclass
class Clip:
  """A rendered clip and its ground truth."""

  frames: np.ndarray  # [T, S, S, 3] BGR uint8
  start: float  # speech interval, seconds from the clip start
  end: float
  articulation: np.ndarray  # [T, 5] channels (phonetics.CHANNELS)
  landmarks: np.ndarray  # [T, 468, 2] where the renderer put the landmarks (pixels)
  lip_gap: np.ndarray  # [T] rendered 13-14 gap over 33-263 distance
  # (word, start, end) in seconds from the clip start: the clip's word (its interval is
  # start/end) first, then, for running speech, every spoken word in time order.
  words: tuple = ()


def render_clip(
  renderer: render.FrameRenderer,
  identity: faces_lib.Identity,
  word: str,
  settings: Settings,
  rng: np.random.Generator,
) -> Clip:
  """Renders one clip of a speaker saying a word (no I/O)."""
  viseme_seq = phonetics.visemes(word)
  durations, start, end = speech_timing(viseme_seq, settings, rng, identity.style)
  rest = _rest(settings, identity.style, rng)
  track = phonetics.articulation_track(
    viseme_seq,
    durations,
    start,
    settings.num_frames,
    settings.fps,
    coarticulation_s(settings, identity.style),
    rest,
  )
  return _film(renderer, identity, track, settings, rng, ((word, start, end),))


def _film(
  renderer: render.FrameRenderer,
  identity: faces_lib.Identity,
  track: np.ndarray,
  settings: Settings,
  rng: np.random.Generator,
  words: tuple,
) -> Clip:
  """Films an articulation track [T, 5]: style, head motion, exposure, camera; the first word's interval."""
  num_frames = len(track)
  style = identity.style
  track = track * np.asarray(style.gains, np.float32)  # [T, 5] as this speaker articulates
  motion = render.sample_head_motion(
    rng,
    num_frames,
    settings.fps,
    settings.head_degrees * style.head_motion,
    settings.head_scale * style.head_motion,
    settings.head_shift * style.head_motion,
    style.head_turn,
  )
  motion[:, 1] *= identity.zoom
  exposure = 1.0 + rng.uniform(-1, 1) * settings.brightness_jitter
  camera = render.Camera(
    renderer.image.shape,
    identity.blur_sigma,
    identity.noise_sigma,
    identity.jpeg_quality,
    identity.resolution,
    rng,
  )
  frames, landmarks = [], []
  for articulation, pose in zip(track, motion):
    frame, frame_landmarks = renderer.render(articulation, pose, exposure)
    frames.append(camera.shoot(frame))
    landmarks.append(frame_landmarks)
  landmarks = np.stack(landmarks)
  _, start, end = words[0]
  return Clip(
    np.stack(frames), start, end, track, landmarks, render.lip_gap(landmarks), tuple(words)
  )


def _voice(
  settings: Settings,
  speech: running.RunningSpeech,
  rng,
  style: faces_lib.Style = faces_lib.NEUTRAL_STYLE,
) -> running.Voice:
  """The clip's speaking rate (the speaker's own times the clip's draw) and timing randomness."""
  return running.Voice(
    rng.uniform(*settings.rate_range) * style.rate, settings.duration_jitter, speech
  )


def window_margin(settings: Settings, style: faces_lib.Style = faces_lib.NEUTRAL_STYLE) -> float:
  """Seconds of speech a window's utterance reaches beyond each window edge.

  Three smoothing stds of the speaker, so that no rest beyond the utterance bleeds
  into the window, plus one frame.
  """
  return 3.0 * coarticulation_s(settings, style) + 1.0 / settings.fps


def render_window(
  renderer: render.FrameRenderer,
  identity: faces_lib.Identity,
  centre: str,
  settings: Settings,
  speech: running.RunningSpeech,
  lexicon: lexicon_lib.Lexicon,
  rng: np.random.Generator,
) -> Clip:
  """Renders a window cut from running speech as LRW cuts it (no I/O).

  centre: a vocabulary word, or BACKGROUND_LABEL (a background window centred on a
  context word, a pause or a word boundary, drawn here). The returned clip's
  start/end is the centred interval: the centre word's own interval (its centre
  at the window's centre), or for a pause or boundary a nominal one (see
  running.window_utterance); `words` holds every word's interval in the window.
  """
  voice = _voice(settings, speech, rng, identity.style)
  window_s = settings.num_frames / settings.fps
  margin = window_margin(settings, identity.style)
  if centre == schema.BACKGROUND_LABEL:
    kind = running.BACKGROUND_KINDS[
      rng.choice(len(running.BACKGROUND_KINDS), p=running.BACKGROUND_KIND_PROBABILITIES)
    ]
    if kind == 'word':
      word = lexicon.draw(rng, lexicon_lib.MIN_VOCABULARY_LETTERS)
      utterance, middle, duration = running.window_utterance(
        word, voice, lexicon, rng, window_s, margin, lexicon.visemes[word]
      )
    else:
      utterance, middle, duration = running.window_utterance(
        kind, voice, lexicon, rng, window_s, margin
      )
  else:
    utterance, middle, duration = running.window_utterance(
      centre, voice, lexicon, rng, window_s, margin, phonetics.visemes(centre)
    )
  duration = min(duration, window_s)
  window_start = middle - 0.5 * window_s
  rest = _rest(settings, identity.style, rng)
  track = phonetics.utterance_track(
    utterance.visemes,
    utterance.durations,
    window_start,
    settings.num_frames,
    settings.fps,
    coarticulation_s(settings, identity.style),
    rest,
  )
  centred = (0.5 * (window_s - duration), 0.5 * (window_s + duration))
  return _film(
    renderer,
    identity,
    track,
    settings,
    rng,
    ((centre, *centred),) + utterance.shifted(window_start),
  )


def render_sentence(
  renderer: render.FrameRenderer,
  identity: faces_lib.Identity,
  settings: Settings,
  speech: running.RunningSpeech,
  lexicon: lexicon_lib.Lexicon,
  rng: np.random.Generator,
) -> Clip:
  """Renders a whole utterance with silence before and after (no I/O).

  The clip's `words` are the spoken words with their times in the clip (its
  start/end: the first word's). Its length is the utterance's plus a leading and
  a trailing silence, each drawn from lead_range.
  """
  voice = _voice(settings, speech, rng, identity.style)
  utterance = running.sentence_utterance(settings.words, voice, lexicon, rng)
  lead, trail = rng.uniform(*settings.lead_range, size=2)
  num_frames = int(np.ceil((lead + utterance.duration + trail) * settings.fps))
  rest = _rest(settings, identity.style, rng)
  track = phonetics.utterance_track(
    utterance.visemes,
    utterance.durations,
    -lead,
    num_frames,
    settings.fps,
    coarticulation_s(settings, identity.style),
    rest,
  )
  return _film(renderer, identity, track, settings, rng, utterance.shifted(-lead))


def grid_visemes(word: str) -> tuple[str, ...]:
  """A GRID word's visemes: a letter said by its name, the other words as CMUdict says them."""
  return phonetics.letter_name_visemes(word) if len(word) == 1 else phonetics.visemes(word)


def render_grid_sentence(
  renderer: render.FrameRenderer,
  identity: faces_lib.Identity,
  settings: Settings,
  speech: running.RunningSpeech,
  words,
  rng: np.random.Generator,
) -> Clip:
  """Renders a GRID sentence in a GRID-length video (3 s), silence before and after (no I/O)."""
  voice = _voice(settings, speech, rng, identity.style)
  utterance = running.words_utterance(words, grid_visemes, voice, rng)
  num_frames = int(round(grid.FRAMES / grid.FPS * settings.fps))
  seconds = num_frames / settings.fps
  durations = np.asarray(utterance.durations)
  room = seconds - GRID_LEAD[0] - settings.min_trail
  if durations.sum() > room:  # a slow speaker: fit the sentence in the 3 s, as GRID's do
    durations = durations * (room / durations.sum())
    utterance = dataclasses.replace(
      utterance,
      durations=durations,
      words=tuple(
        (w, a * room / utterance.duration, b * room / utterance.duration)
        for w, a, b in utterance.words
      ),
    )
  latest = seconds - settings.min_trail - float(durations.sum())
  lead = float(rng.uniform(GRID_LEAD[0], max(GRID_LEAD[0], min(GRID_LEAD[1], latest))))
  track = phonetics.utterance_track(
    utterance.visemes,
    durations,
    -lead,
    num_frames,
    settings.fps,
    coarticulation_s(settings, identity.style),
    _rest(settings, identity.style, rng),
  )
  return _film(renderer, identity, track, settings, rng, utterance.shifted(-lead))


def grid_align_path(relpath: str) -> str:
  """Where a generated GRID video's .align goes: grid/alignments/SPEAKER/NAME.align."""
  _, speaker, file = relpath.split('/')
  return f'{GRID_DIR}/alignments/{speaker}/{file[: -len(".mp4")]}.align'


def plan_grid_sentences(
  settings: Settings, speakers: dict[str, list[str]], count: int
) -> list[ClipJob]:
  """`count` different GRID sentences per speaker, drawn from the speaker's own seed."""
  jobs = []
  for split in SPLITS:
    for speaker in speakers[split]:
      rng = np.random.default_rng([settings.seed, _stable_hash(speaker), _stable_hash(GRID_DIR)])
      for take, words in enumerate(grid.draw_sentences(count, rng)):
        relpath = f'{GRID_DIR}/{speaker}/{grid.sentence_name(words)}.mp4'
        jobs.append(ClipJob(GRID_SENTENCE, split, speaker, take, relpath))
  return jobs


def write_video(path: str, frames: np.ndarray, fps: float) -> None:
  """Writes BGR frames [T, H, W, 3] as an mp4v .mp4 (OSError naming the file on failure)."""
  height, width = frames.shape[1:3]
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
  if not writer.isOpened():
    raise OSError(f'{path}: OpenCV could not open an mp4v video writer')
  for frame in frames:
    writer.write(frame)
  writer.release()


def transcript_text(word: str, start: float, end: float) -> str:
  """The transcript file's text: word and speech interval in seconds."""
  return f'Text: {word}\nStart: {start:.2f}\nEnd: {end:.2f}\n'


def lrw_transcript_text(word: str, duration: float) -> str:
  """LRW's transcript: the word, centred in the clip, lasts `duration` seconds."""
  return f'Text: {word}\nConf: 4\nDuration: {duration:.6f} seconds\n'


def sentence_transcript_text(words) -> str:
  """LRS2/LRS3's transcript: the sentence, then a table of (word, start, end) in seconds."""
  rows = ''.join(f'{w} {start:.2f} {end:.2f} 1.0\n' for w, start, end in words)
  return f'Text: {" ".join(w for w, _, _ in words)}\nConf: 4\n\nWORD START END ASDSCORE\n{rows}'


def assign_splits(
  person_of: dict[str, str], settings: Settings, kind_of: dict[str, str] | None = None
) -> dict[str, str]:
  """Holds whole people out of training, val and test people apart, each kind in both. speaker -> split.

  A speaker is a variant of a real person's photo, so all of a person's speakers
  share one split: no val or test face is a variant of a training face, and no test
  face is a variant of a val face (early stopping must not select on the test
  people). `kind_of` (person -> kind of face, default one kind) spreads the
  held-out people over the kinds: in turn, each kind with at least three people
  gives one person to test, then one to val, until test has test_speakers speakers
  and val val_speakers (whole people: a split may get a few more), and every kind
  keeps a person for training. People of a kind are taken in a seeded order; kinds
  of fewer than three people are trained on only (they cannot be on both sides).
  """
  if settings.val_speakers < 1 or settings.test_speakers < 1:
    raise ValueError('val_speakers and test_speakers must each be at least 1')
  people = sorted(set(person_of.values()))
  kind_of = kind_of or {}
  speakers_of = {p: sorted(s for s, q in person_of.items() if q == p) for p in people}
  rng = np.random.default_rng([settings.seed, _stable_hash('splits')])
  by_kind = {}
  for person in (people[i] for i in rng.permutation(len(people))):
    by_kind.setdefault(kind_of.get(person, ''), []).append(person)
  kinds = sorted((k for k in by_kind if len(by_kind[k]) >= 3), key=lambda k: (-len(by_kind[k]), k))
  want = {'test': settings.test_speakers, 'val': settings.val_speakers}
  have = {'test': 0, 'val': 0}
  taken = {kind: 0 for kind in kinds}
  held = {}
  while any(have[split] < want[split] for split in want):
    before = len(held)
    for kind in kinds:
      for split in ('test', 'val'):
        if have[split] >= want[split] or taken[kind] >= len(by_kind[kind]) - 1:
          continue
        person = by_kind[kind][taken[kind]]
        taken[kind] += 1
        held[person] = split
        have[split] += len(speakers_of[person])
    if len(held) == before:
      raise ValueError(
        f'{len(person_of)} speakers of {len(people)} people cannot hold out whole people for val '
        f'({settings.val_speakers}) and test ({settings.test_speakers}) speakers apart and keep '
        'one person of each kind for training (a kind needs 3 people to be held out); add faces '
        'or variants'
      )
  return {speaker: held.get(person, 'train') for speaker, person in person_of.items()}


def background_clips_per_speaker(settings: Settings, speech: running.RunningSpeech) -> int:
  """Background windows per speaker: background_fraction of the speaker's word clips."""
  return round(speech.background_fraction * settings.clips_per_speaker * len(settings.words))


def plan_clips(
  settings: Settings, split_of: dict[str, str], speech: running.RunningSpeech | None = None
) -> list[ClipJob]:
  """Lists every clip, numbered per word and split in LRW style (WORD_00001 ...).

  Then the background windows (label BACKGROUND_LABEL) and the sentences
  (sentences/SPLIT_00001.mp4), each numbered per split in the same speaker order; GRID
  sentences (grid/SPEAKER/NAME.mp4) first.
  """
  speech = speech or running.RunningSpeech()
  takes = [(word, settings.clips_per_speaker) for word in settings.words]
  takes.append((schema.BACKGROUND_LABEL, background_clips_per_speaker(settings, speech)))
  takes.append((SENTENCE, speech.sentences))
  speakers = {split: sorted(s for s, sp in split_of.items() if sp == split) for split in SPLITS}
  if settings.train_speakers < 0 or settings.held_out_clips_per_speaker < 0:
    raise ValueError('train_speakers and held_out_clips_per_speaker must be 0 or more')
  if settings.train_speakers > len(speakers['train']):
    raise ValueError(
      f'train_speakers={settings.train_speakers}: there are {len(speakers["train"])} training '
      'speakers; add faces or variants'
    )
  if settings.train_speakers:
    order = np.random.default_rng([settings.seed, _stable_hash('train_speakers')])
    kept = order.permutation(len(speakers['train']))[: settings.train_speakers]
    speakers['train'] = [speakers['train'][i] for i in sorted(kept)]
  held_out = settings.held_out_clips_per_speaker
  jobs = []
  if speech.grid_sentences:
    jobs += plan_grid_sentences(settings, speakers, speech.grid_sentences)
  for word, count in takes:
    for split in SPLITS:
      number = 0
      if split != 'train' and held_out and word in settings.words:
        count = held_out
      for speaker in speakers[split]:
        for take in range(count):
          number += 1
          if word == SENTENCE:
            relpath = f'{SENTENCES_DIR}/{split}_{number:05d}.mp4'
          else:
            relpath = f'{word}/{split}/{word}_{number:05d}.mp4'
          jobs.append(ClipJob(word, split, speaker, take, relpath))
  return jobs


_VARIATION_TRIES = 5  # draws of a variation before a speaker is given up (the face was lost)


def _photos(settings: Settings, faces_dir: str | None) -> list[tuple[str, np.ndarray, str, str]]:
  """(name, photo, person, kind) of every face photo: a folder's, or the built-in ones."""
  if faces_dir:
    return [(n, p, n, faces_lib.KIND_FOLDER) for n, p in faces_lib.folder_photos(faces_dir)]
  photos = faces_lib.builtin_photos() + faces_lib.lfw_photos(faces_lib.LFW_FACES)
  return [(n, p, faces_lib.builtin_person(n), faces_lib.photo_kind(n)) for n, p in photos]


def build_identities(
  settings: Settings, faces_dir: str | None, face_model: str | None = None
) -> tuple[list[faces_lib.Identity], list[str], dict]:
  """Finds faces (the Face Landmarker once each) and draws speakers from them.

  Returns (identities, skipped-photo messages, speaker -> variation). Variant 0 of
  each face is the photo as it was taken (with a speaking style of its own);
  further variants draw everything (faces.sample_variation). A variation the detector
  cannot find the face in is drawn again (up to _VARIATION_TRIES times). Built-in
  faces: the seven photos, then the first `lfw_faces` LFW crops it finds a
  face in (those it does not are skipped without a message; --faces ignores it).
  face_model: the Face Landmarker's bundle; None: face_model.resolve finds it.
  """
  if not 0 <= settings.lfw_faces <= faces_lib.LFW_FACES:
    raise ValueError(f'--lfw_faces must be in [0, {faces_lib.LFW_FACES}], got {settings.lfw_faces}')
  model_path = face_model_lib.resolve(face_model)
  # MediaPipe prints its start-up lines (glog) to file descriptor 2: kept off the terminal.
  with native_stderr.silenced():
    detector = facemesh.FaceLandmarkerDetector(model_path)
    try:
      identities, variations, skipped, lfw_found = [], {}, [], 0
      for name, photo, person, kind in _photos(settings, faces_dir):
        if kind == faces_lib.KIND_LFW:
          if lfw_found == settings.lfw_faces:
            continue
          found, _ = faces_lib.load_faces([(name, photo)], detector)
          lfw_found += len(found)
        else:
          found, missing = faces_lib.load_faces([(name, photo)], detector)
          skipped += missing
        for face in found:
          for variant in range(settings.variants_per_face):
            speaker = f'{face.name}-{variant}'
            for attempt in range(_VARIATION_TRIES):
              rng = np.random.default_rng([settings.seed, _stable_hash(speaker), attempt])
              if variant == 0:
                variation = faces_lib.photo_variation(rng)
              else:
                variation = faces_lib.sample_variation(rng)
              try:
                identity = faces_lib.make_identity(face, speaker, variation, detector)
              except faces_lib.NoFaceError as error:
                message = str(error)
                continue
              identities.append(dataclasses.replace(identity, person=person, kind=kind))
              variations[speaker] = variation
              break
            else:
              skipped.append(message)
    finally:
      detector.close()
  if not identities:
    raise ValueError('the face landmarker found no usable face in any photo: ' + '; '.join(skipped))
  return identities, skipped, variations


def make_renderer(identity: faces_lib.Identity, lip_paint: float = 0.0) -> render.FrameRenderer:
  """The frame renderer of one speaker (their face, landmarks and mouth asymmetry)."""
  return render.FrameRenderer(
    identity.image, identity.landmarks, identity.style.asymmetry, lip_paint
  )


_THREAD_COUNT_VARIABLES = ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')


@contextlib.contextmanager
def _one_blas_thread_per_worker():
  """Worker processes spawned inside start numpy with one BLAS thread (the parent keeps its own).

  Otherwise every worker's numpy starts a BLAS thread per core, and the workers' BLAS
  threads fight over the cores the pool already gives one worker each.
  """
  saved = {name: os.environ.get(name) for name in _THREAD_COUNT_VARIABLES}
  os.environ.update({name: '1' for name in _THREAD_COUNT_VARIABLES})
  try:
    yield
  finally:
    for name, value in saved.items():
      if value is None:
        os.environ.pop(name, None)
      else:
        os.environ[name] = value


def _init_worker(identities, settings, out_dir, speech=None, lexicon=None, save_landmarks=False):
  """Pool initializer: one renderer per identity, built once per worker process."""
  cv2.setNumThreads(1)
  workers_lib.state.update(
    identities={identity.speaker: identity for identity in identities},
    renderers={},
    settings=settings,
    out_dir=out_dir,
    speech=speech or running.RunningSpeech(),
    lexicon=lexicon,
    save_landmarks=save_landmarks,
  )


def _renderer(speaker):
  """The worker's cached renderer of one speaker."""
  renderers = workers_lib.state['renderers']
  if speaker not in renderers:
    renderers[speaker] = make_renderer(
      workers_lib.state['identities'][speaker], workers_lib.state['settings'].lip_paint
    )
  return renderers[speaker]


def _make_clip(job: ClipJob) -> dict:
  """Renders and writes one clip; returns its manifest row (sentences.csv row for a sentence)."""
  state = workers_lib.state
  settings, out_dir, speech = state['settings'], state['out_dir'], state['speech']
  identity = state['identities'][job.speaker]
  rng = clip_rng(settings, job.word, job.speaker, job.take)
  renderer = _renderer(job.speaker)
  if job.word == GRID_SENTENCE:
    return _make_grid_sentence(job, renderer, identity)
  if job.word == SENTENCE:
    clip = render_sentence(renderer, identity, settings, speech, state['lexicon'], rng)
    text = sentence_transcript_text(clip.words)
  elif speech.context_words > 0:
    clip = render_window(renderer, identity, job.word, settings, speech, state['lexicon'], rng)
    text = lrw_transcript_text(job.word, clip.end - clip.start)
  else:
    clip = render_clip(renderer, identity, job.word, settings, rng)
    text = transcript_text(job.word, clip.start, clip.end)
  video_path = os.path.join(out_dir, job.relpath)
  os.makedirs(os.path.dirname(video_path), exist_ok=True)
  write_video(video_path, clip.frames, settings.fps)
  if state['save_landmarks']:
    landmark_files.write(video_path, clip.landmarks)  # where the renderer put them
  with open(video_path[: -len('.mp4')] + '.txt', 'w') as f:
    f.write(text)
  if job.word == SENTENCE:
    return {
      'path': job.relpath,
      'split': job.split,
      'speaker': job.speaker,
      'frames': len(clip.frames),
      'text': ' '.join(w for w, _, _ in clip.words),
    }
  # Running speech: empty start/end, so the manifest and the folder both read the
  # transcript's Duration (one home for the interval, no second rounding).
  isolated = speech.context_words == 0
  return {
    'path': job.relpath,
    'label': job.word,
    'split': job.split,
    'speaker': job.speaker,
    'start': f'{clip.start:.2f}' if isolated else '',
    'end': f'{clip.end:.2f}' if isolated else '',
  }


def _make_grid_sentence(job: ClipJob, renderer, identity) -> dict:
  """Renders and writes one GRID sentence and its .align; returns its row."""
  state = workers_lib.state
  settings, out_dir = state['settings'], state['out_dir']
  name = os.path.basename(job.relpath)[: -len('.mp4')]
  rng = clip_rng(settings, name, job.speaker, job.take)
  clip = render_grid_sentence(
    renderer, identity, settings, state['speech'], grid.sentence_words(name), rng
  )
  video_path = os.path.join(out_dir, job.relpath)
  os.makedirs(os.path.dirname(video_path), exist_ok=True)
  write_video(video_path, clip.frames, settings.fps)
  if state['save_landmarks']:
    landmark_files.write(video_path, clip.landmarks)
  align = grid_align_path(job.relpath)
  os.makedirs(os.path.dirname(os.path.join(out_dir, align)), exist_ok=True)
  with open(os.path.join(out_dir, align), 'w') as f:
    f.write(grid.align_text(clip.words, len(clip.frames) / settings.fps))
  return {
    'path': job.relpath,
    'split': job.split,
    'speaker': job.speaker,
    'frames': len(clip.frames),
    'text': ' '.join(w for w, _, _ in clip.words),
    'align': align,
  }


PROGRESS_FILE = '.generate-progress.jsonl'


class Progress:
  """An unfinished generate run's record, so that running it again goes on where it stopped.

  `out_dir/.generate-progress.jsonl`: the first line is the run's plan (generator
  version, settings, running speech, faces, face model), each further line the manifest row of
  a clip whose video and transcript were both written. Every clip has its own seeded
  random stream (`clip_rng`), so a clip rendered after a restart is the clip an
  uninterrupted run makes, byte for byte. A record with another plan (or none) starts
  the run over; a finished run removes its record (generator.json marks it done).
  """

  def __init__(self, out_dir: str, plan: dict):
    self.path = os.path.join(out_dir, PROGRESS_FILE)
    self.rows: dict[str, dict] = {}
    plan = json.loads(json.dumps(plan))  # tuples -> lists, as read back
    lines = []
    if os.path.exists(self.path):
      with open(self.path) as f:
        lines = f.read().splitlines()
    if lines and _json_or_none(lines[0]) == plan:
      for line in lines[1:]:
        row = _json_or_none(line)  # None: a line cut short by a kill
        if row is not None and all(
          os.path.exists(os.path.join(out_dir, path)) for path in _written(row)
        ):
          self.rows[row['path']] = row
      self._file = open(self.path, 'a')
      if lines[-1] and _json_or_none(lines[-1]) is None:
        self._file.write('\n')  # end the cut line so the next row starts on its own
    else:
      self._file = open(self.path, 'w')
      self._file.write(json.dumps(plan) + '\n')
    self._file.flush()
    self.resumed = len(self.rows)

  def add(self, row: dict) -> None:
    """Records one written clip (video and transcript both on disk)."""
    self.rows[row['path']] = row
    self._file.write(json.dumps(row) + '\n')
    self._file.flush()

  def finish(self) -> None:
    """The run is done (generator.json written): its record goes."""
    self._file.close()
    os.remove(self.path)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self._file.close()


def _written(row: dict) -> tuple[str, str]:
  """The files a clip's row stands for: its video and its transcript (a GRID sentence's .align)."""
  transcript = row.get('align') or row['path'][: -len('.mp4')] + '.txt'
  return row['path'], transcript


def _json_or_none(line: str):
  try:
    return json.loads(line)
  except json.JSONDecodeError:
    return None


def vocabulary_info(words) -> dict:
  """Phones, visemes, confusable groups and ceiling accuracy of a vocabulary."""
  return {
    'words': list(words),
    'phones': {w: list(phonetics.phones(w)) for w in words},
    'visemes': {w: list(phonetics.visemes(w)) for w in words},
    'confusable_groups': [g for g in phonetics.viseme_groups(words) if len(g) > 1],
    'ceiling_accuracy': phonetics.ceiling_accuracy(words),
  }


def running_info(
  settings: Settings, speech: running.RunningSpeech, lexicon: lexicon_lib.Lexicon | None
) -> dict:
  """generator.json's account of running speech: settings, lexicon, background and its ceiling."""
  info = {'running_speech': dataclasses.asdict(speech)}
  if lexicon is not None:
    info['lexicon'] = {
      'source': f'wordfreq {lexicon_lib.wordfreq_version()} ({lexicon_lib.LANGUAGE}), '
      'ASCII letters, pronounced by CMUdict',
      'size': len(lexicon.words),
      'excluded_vocabulary_and_look_alikes': list(lexicon.excluded),
    }
  if background_clips_per_speaker(settings, speech):
    word_clips = settings.clips_per_speaker * len(settings.words)
    background = background_clips_per_speaker(settings, speech)
    info['background'] = {
      'label': schema.BACKGROUND_LABEL,
      'kinds': dict(zip(running.BACKGROUND_KINDS, running.BACKGROUND_KIND_PROBABILITIES)),
      'clips_per_speaker': background,
      'duration_rule': "a centred word's own duration; for a pause or boundary, the mean "
      'duration of the two words beside it',
      # No background window holds a vocabulary word or a look-alike of one, so a perfect
      # lip reader tells background apart: it adds only correct answers to the ceiling.
      'ceiling_accuracy_with_background': (
        phonetics.ceiling_accuracy(settings.words) * word_clips + background
      )
      / (word_clips + background),
    }
  return info


def generate(
  out_dir: str,
  settings: Settings,
  faces_dir: str | None = None,
  workers: int | None = None,
  speech: running.RunningSpeech | None = None,
  save_landmarks: bool = False,
  face_model: str | None = None,
) -> dict:
  """Generates the whole data set into out_dir; returns the generator.json contents.

  save_landmarks: also write where the renderer put each clip's 468 landmarks, beside its
  video (extraction/landmark_files.py), so `python -m extraction --landmarks file` can
  extract the set without FaceMesh.
  face_model: the bundle of the Face Landmarker that finds the faces (build_identities).
  """
  speech = speech or running.RunningSpeech()
  words = tuple(w.upper() for w in settings.words)
  if len(set(words)) != len(words) or not words:
    raise ValueError(f'the vocabulary must be non-empty with distinct words, got {words}')
  if schema.BACKGROUND_LABEL in words:
    raise ValueError(f'{schema.BACKGROUND_LABEL} is the reserved background class, not a word')
  if not 0.0 <= settings.lip_paint <= 1.0:
    raise ValueError(f'--lip_paint must be in [0, 1] (an opacity), got {settings.lip_paint}')
  settings = dataclasses.replace(settings, words=words)
  speech.check(settings.num_frames, settings.fps)
  info = vocabulary_info(words)  # fails early on a word missing from CMUdict
  lexicon = (
    lexicon_lib.context_lexicon(words, speech.lexicon_size) if speech.uses_lexicon() else None
  )
  face_model = face_model_lib.resolve(face_model)
  face_model_sha256 = face_model_lib.digest(face_model)
  identities, skipped, variations = build_identities(settings, faces_dir, face_model)
  person_of = {i.speaker: i.person for i in identities}
  split_of = assign_splits(person_of, settings, {i.person: i.kind for i in identities})
  jobs = plan_clips(settings, split_of, speech)
  os.makedirs(out_dir, exist_ok=True)
  marker = os.path.join(out_dir, 'generator.json')
  if os.path.exists(marker):
    os.remove(marker)  # an interrupted run must not look finished
  plan = {
    'generator_version': GENERATOR_VERSION,
    'settings': dataclasses.asdict(settings),
    'running_speech': dataclasses.asdict(speech),
    'faces': None if faces_dir is None else os.path.abspath(faces_dir),
    'landmark_files': save_landmarks,
    # The faces' landmarks, and so every frame, depend on the bundle that found them.
    'face_model_sha256': face_model_sha256,
  }
  progress = Progress(out_dir, plan)
  todo = [job for job in jobs if job.relpath not in progress.rows]
  workers = max(1, min(workers or 1, len(todo)))
  desc = f'synthetic clips -> {out_dir}'
  if progress.resumed:
    tqdm.tqdm.write(
      f'{out_dir}: going on with an unfinished run of the same settings, '
      f'{progress.resumed} of {len(jobs)} clips already made',
      file=sys.stderr,
    )
  bar = tqdm.tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc, unit='clip')
  init_args = (identities, settings, out_dir, speech, lexicon, save_landmarks)
  with progress, bar:
    # Worker processes even for --workers 1: this process's numpy has a BLAS thread per
    # core, and rendering here on a busy machine was measured at ~3% of a core (30-60 s a
    # clip instead of ~0.3 s: BLAS threads waiting on each other for a turn of a core).
    if todo:
      with (
        _one_blas_thread_per_worker(),
        workers_lib.pool(workers, _init_worker, init_args) as pool,
      ):
        for row in pool.map(_make_clip, todo, chunksize=4):
          progress.add(row)
          bar.update()
  rows = [progress.rows[job.relpath] for job in jobs]
  grid_rows = [r for r in rows if 'align' in r]
  sentence_rows = [r for r in rows if 'text' in r and 'align' not in r]
  rows = [r for r in rows if 'text' not in r]
  with open(os.path.join(out_dir, 'manifest.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
  if sentence_rows:
    with open(os.path.join(out_dir, 'sentences.csv'), 'w', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=SENTENCE_COLUMNS)
      writer.writeheader()
      writer.writerows(sentence_rows)
  report = {
    'settings': dataclasses.asdict(settings),
    'faces': 'built-in' if faces_dir is None else os.path.abspath(faces_dir),
    'skipped_photos': skipped,
    'viseme_table': 'MPEG-4 visemes (ISO/IEC 14496-2); see extraction/synthetic/phonetics.py',
    **info,
    'generator_version': GENERATOR_VERSION,
    'face_model_sha256': face_model_sha256,
    'speakers': {split: sorted(s for s, sp in split_of.items() if sp == split) for split in SPLITS},
    'people': {
      split: sorted({person_of[s] for s, sp in split_of.items() if sp == split}) for split in SPLITS
    },
    'kinds': {
      split: sorted({i.kind for i in identities if split_of[i.speaker] == split})
      for split in SPLITS
    },
    'split_rule': 'whole people held out of training, val and test people apart; each kind of '
    'face with 3+ people gives test, then val, one person in turn (dataset.assign_splits)',
    'speaker_table': {
      i.speaker: {
        'person': i.person,
        'photo': i.source,
        'kind': i.kind,
        'variant': int(i.speaker.rsplit('-', 1)[1]),
        'split': split_of[i.speaker],
      }
      for i in identities
    },
    'speaker_sources': {i.speaker: i.source for i in identities},
    'speaker_variations': variations,
    'clips': {split: sum(r['split'] == split for r in rows) for split in SPLITS},
    'manifest': 'manifest.csv',
    'landmark_files': save_landmarks,
    **running_info(settings, speech, lexicon),
  }
  if sentence_rows:
    report['sentences'] = {
      split: sum(r['split'] == split for r in sentence_rows) for split in SPLITS
    }
    report['sentence_manifest'] = 'sentences.csv'
  if grid_rows:
    report['grid'] = {
      'folder': GRID_DIR,
      'sentences': {split: sum(r['split'] == split for r in grid_rows) for split in SPLITS},
      'speakers': len({r['speaker'] for r in grid_rows}),
    }
  with open(marker, 'w') as f:
    json.dump(report, f, indent=1)
  progress.finish()
  return report
