"""Words in running speech: the lexicon, context windows cut as LRW cuts them, background
windows, sentences, and their extraction (extraction/synthetic/{lexicon,running}.py)."""

import csv
import json
import os
import subprocess
import sys

from commands import run_module
import cv2
import numpy as np
import pytest

from extraction import clip as clip_lib
from extraction import pipeline
from extraction import schema
from extraction import sources
from extraction import transcripts
from extraction.synthetic import dataset
from extraction.synthetic import faces
from extraction.synthetic import lexicon
from extraction.synthetic import phonetics
from extraction.synthetic import running
from lipjax import metrics_log

pytest.importorskip('wordfreq', reason="the lexicon needs wordfreq (pip install -e '.[extract]')")

WORDS = ('ABOUT', 'WATCH')
# Three photos, one speaker each: train, val and test get one speaker apiece.
SETTINGS = dataset.Settings(
  words=WORDS, seed=3, clips_per_speaker=1, variants_per_face=1, val_speakers=1, test_speakers=1
)
SPEECH = running.RunningSpeech(context_words=2, background_fraction=1.0, sentences=1)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WINDOW_S = SETTINGS.num_frames / SETTINGS.fps
FRAME_S = 1.0 / SETTINGS.fps


def _rows(path):
  with open(path) as f:
    return list(csv.DictReader(f))


@pytest.fixture(scope='module')
def faces_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp('faces')
  for name, photo in faces.builtin_photos()[:3]:
    cv2.imwrite(str(folder / f'{name}.png'), photo)
  return str(folder)


@pytest.fixture(scope='module')
def generated(tmp_path_factory, faces_dir):
  """2 words + background windows in running speech, and sentences: 3 speakers, 15 videos."""
  out_dir = str(tmp_path_factory.mktemp('running') / 'set')
  report = dataset.generate(out_dir, SETTINGS, faces_dir, workers=1, speech=SPEECH)
  return out_dir, report


@pytest.fixture(scope='module')
def lexicon_of_words():
  return lexicon.context_lexicon(WORDS, SPEECH.lexicon_size)


@pytest.fixture(scope='module')
def identities(faces_dir):
  """The generated set's speakers by name."""
  found, _, _ = dataset.build_identities(SETTINGS, faces_dir)
  return {i.speaker: i for i in found}


def _rerender(row, lexicon_of_words, identities):
  """Renders a manifest row's clip again in memory (same seed -> same clip)."""
  identity = identities[row['speaker']]
  renderer = dataset.make_renderer(identity)
  label = row.get('label', dataset.SENTENCE)
  rng = dataset.clip_rng(SETTINGS, label, row['speaker'], 0)  # one take per speaker here
  if label == dataset.SENTENCE:
    return dataset.render_sentence(renderer, identity, SETTINGS, SPEECH, lexicon_of_words, rng)
  return dataset.render_window(renderer, identity, label, SETTINGS, SPEECH, lexicon_of_words, rng)


# --- the lexicon ---------------------------------------------------------------------------------


def test_vocabulary_size_is_deterministic_letters_only_and_pronounceable():
  words = lexicon.vocabulary(100)
  assert len(words) == 100 == len(set(words))
  # wordfreq's English list, most frequent first (pinned in constraints.txt).
  assert words[:6] == ('THAT', 'WITH', 'THIS', 'HAVE', 'FROM', 'YOUR')
  for word in words:
    assert word.isascii() and word.isalpha() and word.isupper() and len(word) >= 4, word
    assert phonetics.visemes(word)  # CMUdict pronounces it
  assert lexicon.vocabulary(10) == words[:10]
  # --words and --vocabulary_size exclude each other.
  result = run_module(
    'extraction.synthetic', 'generate', '--out', 'x', '--words', 'BAT', '--vocabulary_size', '5'
  )
  assert result.returncode == 2 and 'At most one of (words, vocabulary_size)' in result.stderr


def test_context_lexicon_never_holds_a_vocabulary_word_or_a_look_alike():
  vocabulary = ('BAT', 'MOON', 'ABOUT')
  context = lexicon.context_lexicon(vocabulary, 3000)
  looks = {phonetics.visemes(w) for w in vocabulary}
  assert not set(context.words) & set(vocabulary)
  assert all(context.visemes[w] not in looks for w in context.words)
  assert {'ABOUT', 'BAD', 'MATT'} <= set(context.excluded)  # BAD and MATT look like BAT
  assert 'THE' in context.words and abs(context.probabilities.sum() - 1) < 1e-9
  rng = np.random.default_rng(0)
  assert all(len(context.draw(rng, 4)) >= 4 for _ in range(50))


# --- planning: windows and sentences -------------------------------------------------------------


@pytest.mark.parametrize('centre', ['ABOUT', 'WATCH', 'pause', 'boundary'])
def test_window_is_running_speech_in_every_frame(lexicon_of_words, centre):
  """The utterance covers the window; pauses are short; no two frames in a row rest."""
  margin = dataset.window_margin(SETTINGS)
  for seed in range(40):
    rng = np.random.default_rng(seed)
    voice = dataset._voice(SETTINGS, SPEECH, rng)
    target = phonetics.visemes(centre) if centre.isupper() else None
    utterance, middle, duration = running.window_utterance(
      centre, voice, lexicon_of_words, rng, WINDOW_S, margin, target
    )
    window_start = middle - 0.5 * WINDOW_S
    words = utterance.shifted(window_start)
    assert words[0][1] <= -margin and words[-1][2] >= WINDOW_S + margin
    gaps = [b[1] - a[2] for a, b in zip(words, words[1:])]
    assert min(gaps) >= -1e-9 and max(gaps) <= SPEECH.pause_range[1] + 1e-9
    if centre.isupper():
      assert sum(w == centre for w, _, _ in words) == 1  # never in its own context
      (start, end) = next((s, e) for w, s, e in words if w == centre)
      assert (start + end) / 2 == pytest.approx(WINDOW_S / 2, abs=1e-9)
      assert end - start == pytest.approx(duration)
      assert sum(1 for w, s, _ in words if s < start) >= SPEECH.context_words
      assert sum(1 for w, s, _ in words if s > start) >= SPEECH.context_words
    else:
      assert not {w for w, _, _ in words} & set(WORDS)
    rest = dataset.rest_articulation(rng.uniform(0.0, 0.35))
    track = phonetics.utterance_track(
      utterance.visemes, utterance.durations, window_start, 29, 25.0, 0.03, rest
    )  # [29, 5]
    at_rest = np.abs(track - rest).max(axis=1) < 1e-3
    assert not (at_rest[1:] & at_rest[:-1]).any(), (seed, at_rest)


def test_isolated_word_track_rests_where_a_window_does_not():
  """The same check fails on an isolated word: it is the check's teeth."""
  seq = phonetics.visemes('WATCH')
  durations = phonetics.viseme_durations(seq, 1.0, np.ones(len(seq)))
  track = phonetics.articulation_track(seq, durations, 0.4, 29, 25.0, 0.03)
  at_rest = np.abs(track).max(axis=1) < 1e-3
  assert (at_rest[1:] & at_rest[:-1]).any()


def test_utterance_track_of_one_word_matches_the_isolated_track():
  """A window over a single word, from before it to after it, is the isolated word's track."""
  seq = phonetics.visemes('ABOUT')
  durations = phonetics.viseme_durations(seq, 1.0, np.ones(len(seq)))
  rest = dataset.rest_articulation(0.2)
  isolated = phonetics.articulation_track(seq, durations, 0.4, 29, 25.0, 0.03, rest)
  window = phonetics.utterance_track(seq, durations, -0.4, 29, 25.0, 0.03, rest)
  np.testing.assert_allclose(window, isolated, atol=1e-5)


# --- the generated set ---------------------------------------------------------------------------


def test_context_transcript_gives_the_rendered_word_boundary(
  generated, lexicon_of_words, identities
):
  out_dir, _ = generated
  rows = [r for r in _rows(os.path.join(out_dir, 'manifest.csv')) if r['label'] in WORDS]
  assert len(rows) == 2 * 3 and all(r['start'] == r['end'] == '' for r in rows)
  for row in rows[:2]:
    with open(os.path.join(out_dir, row['path'][:-4] + '.txt')) as f:
      text = f.read()
    assert text.startswith(f'Text: {row["label"]}\nConf: 4\nDuration: ') and text.endswith(
      ' seconds\n'
    )
    transcript = transcripts.parse(text)
    ((start, end),) = transcript.speech_intervals(WINDOW_S)
    clip = _rerender(row, lexicon_of_words, identities)
    # The renderer's true interval of the target word (among all the words it spoke).
    (true_start, true_end) = next((s, e) for w, s, e in clip.words[1:] if w == row['label'])
    assert abs(start - true_start) < FRAME_S and abs(end - true_end) < FRAME_S
    assert (start, end) == pytest.approx((true_start, true_end), abs=1e-5)
    # Speech in every frame: the utterance spans the whole window, and the mouth moves.
    times = np.arange(SETTINGS.num_frames) / SETTINGS.fps
    assert clip.words[1][1] < times[0] and clip.words[-1][2] > times[-1]
    assert np.ptp(clip.lip_gap) > 0.05
    frames = cv2.VideoCapture(os.path.join(out_dir, row['path']))
    assert int(frames.get(cv2.CAP_PROP_FRAME_COUNT)) == SETTINGS.num_frames
    frames.release()


def test_background_windows_are_labelled_and_read_by_extraction(generated):
  out_dir, report = generated
  rows = _rows(os.path.join(out_dir, 'manifest.csv'))
  background = [r for r in rows if r['label'] == schema.BACKGROUND_LABEL]
  # round(F x clips per speaker x words) = 2 per speaker, numbered per split.
  assert len(background) == 2 * 3
  assert {r['path'] for r in background if r['split'] == 'train'} == {
    f'{schema.BACKGROUND_LABEL}/train/{schema.BACKGROUND_LABEL}_0000{n}.mp4' for n in (1, 2)
  }
  for row in background:
    transcript = transcripts.read(os.path.join(out_dir, row['path'][:-4] + '.txt'))
    assert transcript.text == schema.BACKGROUND_LABEL
    assert 0 < transcript.centred_duration < WINDOW_S
  # Both readers take the label; the sentences' folder is not taken for a word class.
  for clips in (
    sources.discover(out_dir),
    sources.discover(os.path.join(out_dir, 'manifest.csv')),
  ):
    assert all(c.error is None for c in clips)
    assert sorted({c.label for c in clips}) == sorted(WORDS + (schema.BACKGROUND_LABEL,))
    assert len(clips) == 12
  info = report['background']
  assert info['label'] == schema.BACKGROUND_LABEL and info['clips_per_speaker'] == 2
  ceiling = phonetics.ceiling_accuracy(WORDS)
  assert report['ceiling_accuracy'] == ceiling == 1.0
  assert info['ceiling_accuracy_with_background'] == pytest.approx((ceiling * 2 + 2) / 4)
  with open(os.path.join(out_dir, 'generator.json')) as f:
    assert json.load(f)['running_speech']['context_words'] == 2


def test_sentence_transcripts_parse_back_to_the_words_spoken(
  generated, lexicon_of_words, identities
):
  out_dir, report = generated
  rows = _rows(os.path.join(out_dir, 'sentences.csv'))
  assert report['sentences'] == {'train': 1, 'val': 1, 'test': 1}
  assert sorted(r['path'] for r in rows) == [
    f'sentences/{s}_00001.mp4' for s in ('test', 'train', 'val')
  ]
  for row in rows:
    transcript = transcripts.read(os.path.join(out_dir, row['path'][:-4] + '.txt'))
    clip = _rerender(row, lexicon_of_words, identities)
    assert transcript.text == row['text'] == ' '.join(w for w, _, _ in clip.words)
    assert [w for w, _, _ in transcript.words] == [w for w, _, _ in clip.words]
    np.testing.assert_allclose(
      [(s, e) for _, s, e in transcript.words], [(s, e) for _, s, e in clip.words], atol=0.0051
    )
    assert set(row['text'].split()) & set(WORDS)  # at least one vocabulary word
    assert len(clip.frames) == int(row['frames'])
    assert clip.words[0][1] > 0 and clip.words[-1][2] < len(clip.frames) / SETTINGS.fps
    lo, hi = SPEECH.sentence_words
    assert lo <= len(clip.words) <= hi


def test_two_words_of_one_video_in_a_manifest_are_two_examples_of_one_decode(generated, tmp_path):
  out_dir, _ = generated
  (row,) = [r for r in _rows(os.path.join(out_dir, 'sentences.csv')) if r['split'] == 'train']
  video = os.path.join(out_dir, row['path'])
  words = transcripts.read(video[:-4] + '.txt').words
  first, last = words[0], words[1]  # neighbours: their windows overlap
  manifest = tmp_path / 'words.csv'
  manifest.write_text(
    'path,label,split,speaker,start,end\n'
    + ''.join(
      f'{video},W{k},train,{row["speaker"]},{s},{e}\n' for k, (_, s, e) in enumerate((first, last))
    )
  )
  report = pipeline.run(str(manifest), str(tmp_path / 'data'), workers=1, progress=False)
  assert report['written'] == 2 and report['failed'] == 0
  # One tracking pass over the span of both windows, not one per window.
  settings = clip_lib.Settings()
  windows = [
    clip_lib.place_window(clip_lib.Speech(((s, e),)), int(row['frames']), settings)
    for _, s, e in (first, last)
  ]
  span = max(w.stop for w in windows) - min(w.first for w in windows)
  assert report['frames_processed'] == span < sum(w.stop - w.first for w in windows)
  from lipjax import data_source

  source = data_source.SplitSource(str(tmp_path / 'data'), 'train')
  examples = {e['video_id']: e for e in source.__getitems__(range(len(source)))}
  stem = os.path.splitext(video)[0]
  for k, (_, s, e) in enumerate((first, last)):
    example = examples[f'{stem}@{s:g}-{e:g}']
    assert example['label'] == k
    # Each example's speech mask marks its own word, centred in its window.
    placed = windows[k].intervals[0][0] - windows[k].first / SETTINGS.fps
    expected = transcripts.speech_mask(
      [(placed, placed + e - s)], windows[k].stop - windows[k].first, SETTINGS.fps
    )
    np.testing.assert_array_equal(example['speech_mask'][: len(expected)], expected)


def test_extraction_writes_shards_of_words_and_background(generated, tmp_path):
  out_dir, _ = generated
  data_dir = str(tmp_path / 'data')
  report = pipeline.run(out_dir, data_dir, workers=1, progress=False)
  assert report['written'] == 12 and report['failed'] == 0
  assert sorted(report['classes']) == sorted(WORDS + (schema.BACKGROUND_LABEL,))
  meta = schema.DatasetMeta.load(data_dir)
  assert schema.BACKGROUND_LABEL in meta.class_names
  assert sum(meta.split_sizes.values()) == 12


@pytest.mark.slow
def test_configs_lrw_trains_on_an_extracted_lrw_layout_folder(generated, tmp_path):
  """What a user with LRW runs: the generator's LRW-layout folder -> extraction -> configs/lrw.py."""
  out_dir, _ = generated
  data_dir, workdir = str(tmp_path / 'data'), str(tmp_path / 'run')
  pipeline.run(out_dir, data_dir, workers=1, progress=False)
  steps = 2
  result = subprocess.run(
    [sys.executable, '-m', 'lipjax.train', '--config', 'configs/lrw.py', '--workdir', workdir]
    + [f'--config.{key}={value}' for key, value in LRW_SMOKE_OVERRIDES.items()]
    + [f'--config.data_dir={data_dir}', f'--config.num_train_steps={steps}'],
    capture_output=True,
    text=True,
    timeout=600,
    cwd=REPO,
    env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'},
  )
  assert result.returncode == 0, result.stderr[-3000:]
  config = json.loads(open(os.path.join(workdir, 'config.json')).read())
  # The config as shipped: streaming input, window centring, the boundary as the pooling mask.
  assert config['input']['cache'] is False
  assert config['model']['centre'] == 'window_scaled' and config['model']['mask_mode'] == 'speech'
  (record,) = metrics_log.read(workdir)
  assert record['step'] == steps and np.isfinite(record['train_loss'])
  assert record['val_examples'] == 4  # the val speaker's 2 words + 2 background windows
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', 'best', str(steps)))


# configs/lrw.py shrunk to this 12-clip set: batch sizes and intervals only, the model untouched.
LRW_SMOKE_OVERRIDES = {
  'batch_size': 4,
  'eval_batch_size': 4,
  'eval_every_steps': 2,
  'checkpoint_every_steps': 2,
  'log_every_steps': 1,
  'warmup_steps': 1,
}


def test_bad_running_speech_settings_are_one_line_errors(tmp_path):
  out = str(tmp_path / 'x')
  for flags in (
    ['--background_fraction', '0.5'],
    ['--words', '_BACKGROUND_'],
    ['--pause_probability', '2'],
  ):
    result = run_module('extraction.synthetic', 'generate', '--out', out, *flags)
    assert result.returncode == 2, flags
    assert result.stderr.startswith('extraction.synthetic generate: error: '), flags
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    if flags[0] == '--background_fraction':
      assert 'needs --context_words K > 0' in result.stderr
  assert not os.path.exists(out)


def test_the_generators_sentences_manifest_extracts_as_a_sentence_data_set(generated, tmp_path):
  out_dir, _ = generated
  rows = {r['path']: r for r in _rows(os.path.join(out_dir, 'sentences.csv'))}
  longest = max(int(r['frames']) for r in rows.values())
  data_dir = str(tmp_path / 'sentences')
  report = pipeline.run(
    os.path.join(out_dir, 'sentences.csv'),
    data_dir,
    workers=1,
    progress=False,
    settings=clip_lib.Settings(max_frames=longest),
  )
  assert report['written'] == 3 and report['failed'] == 0
  meta = schema.DatasetMeta.load(data_dir)
  assert meta.is_sentences and meta.class_names == []
  from lipjax import data_source

  for split in ('train', 'val', 'test'):
    (example,) = data_source.SplitSource(data_dir, split).__getitems__([0])
    row = rows[example['video_id'] + '.mp4']
    assert example['text'] == row['text'].lower() and example['length'] == int(row['frames'])
  # A window too short for an utterance is reported, not cut short: here every one.
  with pytest.raises(sources.SourceError, match='no data set written'):
    pipeline.run(
      os.path.join(out_dir, 'sentences.csv'), str(tmp_path / 'short'), workers=1, progress=False
    )
  with open(tmp_path / 'short' / pipeline.REPORT_NAME) as f:
    short = json.load(f)
  reasons = [s['reason'] for split in short['splits'].values() for s in split['skipped']]
  assert len(reasons) == 3
  assert all('does not fit in a window of max_frames=29' in r for r in reasons)
