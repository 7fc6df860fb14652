"""GRID as a source: its layouts, .align files, names, splits, and a generated GRID set extracted."""

import os

import cv2
import numpy as np
import pytest

from extraction import clip as clip_lib
from extraction import grid
from extraction import pipeline
from extraction import schema
from extraction import sources
from extraction import tokens
from extraction import transcripts
from extraction.synthetic import dataset
from extraction.synthetic import faces
from extraction.synthetic import running

# GRID s1's bbaf2n.align, as the corpus ships it (times in 1/25,000 s).
BBAF2N = """0 23750 sil
23750 29500 bin
29500 34000 blue
34000 35500 at
35500 41000 f
41000 47250 two
47250 53000 now
53000 74500 sil
"""


def _video(path) -> None:
  """A stand-in video file: discovery reads names and alignments, never the frames."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(b'not read by discovery')


def _align(path, words=None, text=None) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text if text is not None else grid.align_text(words, 3.0))


def _sentence(name, start=0.5):
  """A sentence's words with 0.2 s each, from `start` (s)."""
  return [
    (w, start + 0.2 * k, start + 0.2 * (k + 1)) for k, w in enumerate(grid.sentence_words(name))
  ]


def test_an_align_file_gives_the_words_in_seconds_without_silences(tmp_path):
  path = tmp_path / 'bbaf2n.align'
  path.write_text(BBAF2N.replace('41000 47250 two', '41000 41500 sp\n41500 47250 two'))
  assert grid.read_align(str(path)) == (
    ('bin', 0.95, 1.18),
    ('blue', 1.18, 1.36),
    ('at', 1.36, 1.42),
    ('f', 1.42, 1.64),
    ('two', 1.66, 1.89),
    ('now', 1.89, 2.12),
  )
  path.write_text(BBAF2N.replace('34000 35500 at', '34000 35500'))
  with pytest.raises(grid.AlignError, match=r'bbaf2n.align:4: expected "START END WORD"'):
    grid.read_align(str(path))
  path.write_text(BBAF2N.replace(' at', ' on'))
  with pytest.raises(
    grid.AlignError, match="words 'bin blue on f two now' are not a GRID sentence"
  ):
    grid.read_align(str(path))


def test_a_name_spells_its_sentence_and_the_grammar_has_51_words():
  assert grid.sentence_words('bbaf2n') == ('bin', 'blue', 'at', 'f', 'two', 'now')
  assert grid.sentence_words('pwiz9p') == ('place', 'white', 'in', 'z', 'nine', 'please')
  assert grid.sentence_name(('lay', 'red', 'with', 'e', 'zero', 'again')) == 'lrwez' + 'a'
  drawn = grid.draw_sentences(200, np.random.default_rng(0))
  assert len({grid.sentence_name(words) for words in drawn}) == 200
  assert all(grid.sentence_words(grid.sentence_name(words)) == words for words in drawn)
  assert len(grid.WORDS) == len(set(grid.WORDS)) == 51
  with pytest.raises(ValueError, match="'bbaw2n' is not a GRID sentence name"):
    grid.sentence_words('bbaw2n')  # GRID has no letter w


def test_the_layouts_grid_is_distributed_in_are_recognised(tmp_path):
  root = tmp_path / 'GRID'
  # As the corpus site ships it (s1.mpg_vcd.zip and its alignments archive) ...
  _video(root / 's1' / 'bbaf2n.mpg')
  _align(root / 'alignments' / 's1' / 'bbaf2n.align', text=BBAF2N)
  # ... the high-quality videos' folders, with the alignments under the speaker ...
  _video(root / 's2' / 'video' / 'mpg_6000' / 'bbaf3s.mpg')
  _align(root / 's2' / 'align' / 'bbaf3s.align', _sentence('bbaf3s'))
  # ... one speaker's align/ archive unpacked at the top, in no speaker's folder ...
  _video(root / 's3' / 'pwiz9p.mpg')
  _align(root / 'align' / 'pwiz9p.align', _sentence('pwiz9p'))
  # ... and another speaker's alignment whose video was not downloaded: ignored.
  _align(root / 'alignments' / 's9' / 'lriezp.align', _sentence('lriezp'))
  clips = sources.discover(str(root))
  assert sources.layout(str(root)) == sources.GRID
  assert len(clips) == 18 and all(c.error is None for c in clips)
  by_id = {c.video_id: c for c in clips}
  f = by_id['s1/bbaf2n@1.42-1.64']
  assert (f.label, f.speaker, f.interval, f.video_path) == (
    'F',
    's1',
    (1.42, 1.64),
    str(root / 's1' / 'bbaf2n.mpg'),
  )
  assert {c.speaker for c in clips} == {'s1', 's2', 's3'}
  assert len({c.split for c in clips if c.video_path.endswith('bbaf3s.mpg')}) == 1


def test_a_missing_or_mismatched_alignment_costs_its_video_only(tmp_path):
  root = tmp_path / 'GRID'
  for name in ('bbaf2n', 'bbaf3s', 'bbaf4p'):
    _video(root / 's1' / f'{name}.mpg')
  _align(root / 'alignments' / 's1' / 'bbaf2n.align', text=BBAF2N)
  _align(root / 'alignments' / 's1' / 'bbaf3s.align', _sentence('lriezp'))  # another sentence
  clips = sources.discover(str(root))
  errors = {c.video_id: c.error for c in clips if c.error is not None}
  assert len(clips) == 6 + 2 and len(errors) == 2
  assert (
    "bbaf3s.align: spells 'lriezp' (lay red in e zero please), not its video" in errors['s1/bbaf3s']
  )
  assert 'bbaf4p.mpg: no bbaf4p.align for speaker s1' in errors['s1/bbaf4p']


def _names(count):
  return [grid.sentence_name(w) for w in grid.draw_sentences(count, np.random.default_rng(1))]


def test_split_by_sentence_is_a_seeded_share_of_each_speakers_sentences():
  sentences = {'s1': _names(40), 's2': _names(20)}
  split_of = grid.assign_splits(sentences, grid.Options())
  counts = {
    speaker: sorted(
      (split, sum(s == split for (sp, _), s in split_of.items() if sp == speaker))
      for split in schema.SPLITS
    )
    for speaker in sentences
  }
  assert counts == {
    's1': [('test', 4), ('train', 32), ('val', 4)],
    's2': [('test', 2), ('train', 16), ('val', 2)],
  }
  assert grid.assign_splits(sentences, grid.Options()) == split_of  # seeded: the same again
  assert grid.assign_splits(sentences, grid.Options(seed=1)) != split_of


def test_split_by_speaker_holds_the_named_speakers_out(tmp_path):
  sentences = {'s1': _names(10), 's2': _names(10), 's3': _names(10), 's20': _names(10)}
  options = grid.Options(split_by='speaker', test_speakers=('s1', 's20'), val_speakers=('s2',))
  split_of = grid.assign_splits(sentences, options)
  assert {sp for (sp, _), s in split_of.items() if s == 'test'} == {'s1', 's20'}
  assert {sp for (sp, _), s in split_of.items() if s == 'val'} == {'s2'}
  # Without val speakers, val is a share of the training speakers' sentences.
  split_of = grid.assign_splits(sentences, grid.Options(split_by='speaker', test_speakers=('s1',)))
  assert sorted(s for (sp, _), s in split_of.items() if sp == 's3') == ['train'] * 9 + ['val']
  assert {s for (sp, _), s in split_of.items() if sp == 's1'} == {'test'}
  root = tmp_path / 'GRID'
  _video(root / 's1' / 'bbaf2n.mpg')
  _align(root / 'alignments' / 's1' / 'bbaf2n.align', text=BBAF2N)
  with pytest.raises(sources.SourceError, match='speaker.s. s22 named as held out have no videos'):
    sources.discover(str(root), grid.Options(split_by='speaker', test_speakers=('s22',)))


def test_bad_grid_options_name_each_problem_and_other_inputs_refuse_them(tmp_path):
  problems = dict(
    grid.Options(split_by='speaker', val_fraction=1.5, val_speakers=('s2',)).problems()
  )
  assert set(problems) == {'val_fraction', 'test_speakers'}
  assert 'must name the held-out speakers' in problems['test_speakers']
  assert (
    'need split_by=speaker' in dict(grid.Options(test_speakers=('s1',)).problems())['test_speakers']
  )
  manifest = tmp_path / 'm.csv'
  manifest.write_text('path,label,split,speaker,start,end\na.mp4,bat,train,s1,0.2,0.6\n')
  with pytest.raises(sources.SourceError, match='GRID options .* apply to a GRID folder'):
    sources.discover(str(manifest), grid.Options(examples='sentences'))


# --- a GRID set written by the generator, extracted -----------------------------------------------

SETTINGS = dataset.Settings(
  seed=5, clips_per_speaker=0, lfw_faces=0, val_speakers=1, test_speakers=1
)
SPEECH = running.RunningSpeech(grid_sentences=2)


@pytest.fixture(scope='module')
def generated_grid(tmp_path_factory):
  """Three speakers (one photo each) saying 2 GRID sentences each, in GRID's layout."""
  faces_dir = tmp_path_factory.mktemp('faces')
  for name, photo in faces.builtin_photos()[:3]:
    cv2.imwrite(str(faces_dir / f'{name}.png'), photo)
  out_dir = str(tmp_path_factory.mktemp('generated') / 'set')
  report = dataset.generate(out_dir, SETTINGS, str(faces_dir), workers=1, speech=SPEECH)
  return os.path.join(out_dir, dataset.GRID_DIR), report


def test_the_generator_writes_grid_sentences_in_grids_layout(generated_grid):
  root, report = generated_grid
  assert report['grid']['speakers'] == 3 and sum(report['grid']['sentences'].values()) == 6
  videos, aligns = grid.find(root)
  assert set(videos) == set(aligns) and len(videos) == 6
  for (speaker, name), align in aligns.items():
    words = grid.read_align(align)
    assert grid.sentence_name([w for w, _, _ in words]) == name  # the file name spells it
    capture = cv2.VideoCapture(videos[speaker, name])
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == grid.FRAMES  # 3 s, as GRID's
    assert 0.3 <= words[0][1] and words[-1][2] < grid.FRAMES / grid.FPS


def test_a_grid_folder_extracts_a_word_window_per_word_and_a_sentence_per_video(
  generated_grid, tmp_path
):
  root, _ = generated_grid
  report = pipeline.run(root, str(tmp_path / 'words'), workers=1, progress=False)
  assert report['written'] == 36 and report['failed'] == 0
  meta = schema.DatasetMeta.load(str(tmp_path / 'words'))
  assert set(meta.class_names) <= {w.upper() for w in grid.WORDS} and not meta.is_sentences
  assert meta.extraction['grid'] == {
    **vars(grid.Options()),
    'test_speakers': [],
    'val_speakers': [],
  }
  from lipjax import data_source

  examples = [
    e
    for split in meta.split_sizes
    for e in data_source.SplitSource(str(tmp_path / 'words'), split).__getitems__(
      range(meta.split_sizes[split])
    )
  ]
  # Each word's window is LRW's: 29 frames centred on the word (clamped to the video), the
  # word's frames its speech mask.
  settings = clip_lib.Settings()
  assert len(examples) == 36
  for example in examples:
    start, end = map(float, example['video_id'].split('@')[1].split('-'))
    window = clip_lib.place_window(clip_lib.Speech(((start, end),)), grid.FRAMES, settings)
    shift = window.first / settings.fps
    expected = transcripts.speech_mask([(start - shift, end - shift)], 29, settings.fps)
    assert example['length'] == 29 and 1 <= expected.sum() < 29
    np.testing.assert_array_equal(example['speech_mask'], expected)
  report = pipeline.run(
    root,
    str(tmp_path / 'sentences'),
    workers=1,
    progress=False,
    settings=clip_lib.Settings(max_frames=grid.FRAMES),
    grid_options=grid.Options(examples='sentences'),
  )
  assert report['written'] == 6 and report['failed'] == 0
  meta = schema.DatasetMeta.load(str(tmp_path / 'sentences'))
  assert meta.is_sentences and meta.token_set == list(tokens.TOKENS) and meta.class_names == []
  videos, aligns = grid.find(root)
  for split, size in meta.split_sizes.items():
    for example in data_source.SplitSource(str(tmp_path / 'sentences'), split).__getitems__(
      range(size)
    ):
      speaker, name = example['video_id'].split('/')
      assert example['text'] == ' '.join(grid.sentence_words(name))
      assert tokens.decode(example['tokens']) == example['text']
      assert example['token_length'] == len(example['text']) and example['length'] == grid.FRAMES
      words = grid.read_align(aligns[speaker, name])
      expected = transcripts.speech_mask([(words[0][1], words[-1][2])], grid.FRAMES, grid.FPS)
      np.testing.assert_array_equal(example['speech_mask'], expected)
