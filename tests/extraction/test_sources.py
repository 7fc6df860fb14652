"""Finding clips in LRW folders and CSV manifests."""

import pytest

from extraction import sources


def test_lrw_folder_gives_label_split_and_transcript(tmp_path):
  for split in ('train', 'val'):
    (tmp_path / 'ABOUT' / split).mkdir(parents=True)
    (tmp_path / 'ABOUT' / split / 'ABOUT_00001.mp4').write_bytes(b'x')
  (tmp_path / 'ABOUT' / 'train' / 'notes.md').write_text('ignored')
  clips = sources.discover(str(tmp_path))
  assert [(c.label, c.split, c.video_id) for c in clips] == [
    ('ABOUT', 'train', 'ABOUT/train/ABOUT_00001'),
    ('ABOUT', 'val', 'ABOUT/val/ABOUT_00001'),
  ]
  assert clips[0].transcript_path.endswith('ABOUT_00001.txt')


def test_lrw_folder_rejects_unknown_split(tmp_path):
  (tmp_path / 'ABOUT' / 'dev').mkdir(parents=True)
  with pytest.raises(sources.SourceError, match='split folder must be one of'):
    sources.discover(str(tmp_path))


def test_manifest_rows_with_problems_become_clip_errors(tmp_path):
  manifest = tmp_path / 'm.csv'
  manifest.write_text(
    'path,label,split,speaker,start,end\n'
    'a.mp4,bat,train,s1,0.2,0.6\n'
    'b.mp4,pat,holdout,s2,,\n'
    'c.mp4,mat,test,,x,1\n'
    'a.mp4,bat,train,s1,0.2,0.6\n'
  )
  clips = {c.video_id + str(c.error is None): c for c in sources.discover(str(manifest))}
  good = clips['aTrue']
  assert (good.label, good.speaker, good.interval, good.transcript_path) == (
    'BAT',
    's1',
    (0.2, 0.6),
    None,
  )
  assert "m.csv:3: split 'holdout'" in clips['bFalse'].error
  assert 'm.csv:4: start/end must be seconds' in clips['cFalse'].error
  assert clips['cFalse'].speaker == sources.UNKNOWN_SPEAKER
  assert 'duplicate path' in clips['aFalse'].error


def test_manifest_without_required_columns_is_an_input_error(tmp_path):
  manifest = tmp_path / 'm.csv'
  manifest.write_text('file,word\na.mp4,bat\n')
  with pytest.raises(sources.SourceError, match='m.csv: manifest header must have columns'):
    sources.discover(str(manifest))


def test_missing_input_is_an_input_error(tmp_path):
  with pytest.raises(sources.SourceError, match='no such folder or manifest'):
    sources.discover(str(tmp_path / 'nothing'))


def test_manifest_saved_by_excel_with_a_byte_order_mark_is_read(tmp_path):
  manifest = tmp_path / 'm.csv'
  manifest.write_text(
    'path,label,split,speaker,start,end\na.mp4,bat,train,s1,0.2,0.6\n', encoding='utf-8-sig'
  )
  assert manifest.read_bytes().startswith(b'\xef\xbb\xbf')
  (clip,) = sources.discover(str(manifest))
  assert (clip.video_id, clip.label, clip.interval, clip.error) == ('a', 'BAT', (0.2, 0.6), None)


def test_control_characters_in_a_label_or_speaker_are_a_row_error_not_a_new_class(tmp_path):
  manifest = tmp_path / 'm.csv'
  manifest.write_text(
    'path,label,split,speaker,start,end\n'
    'a.mp4,bat,train,s1,0.2,0.6\n'
    'b.mp4,"ba\nt",train,s1,0.2,0.6\n'
    'c.mp4,bat,train,"s\t2",0.2,0.6\n'
    'd.mp4,b\x00at,train,s1,0.2,0.6\n'
  )  # rows count records, as a spreadsheet does
  clips = {c.video_id: c for c in sources.discover(str(manifest))}
  assert clips['a'].error is None
  assert "m.csv:3: label 'BA\\nT' holds control characters" in clips['b'].error
  assert "m.csv:4: speaker 's\\t2' holds control characters" in clips['c'].error
  assert "m.csv:5: label 'B\\x00AT' holds control characters" in clips['d'].error
  assert {c.label for c in clips.values() if c.error is None} == {'BAT'}


def test_lrw_word_folder_with_a_control_character_is_a_clip_error(tmp_path):
  for word in ('ABOUT', 'AB\nOUT'):
    (tmp_path / word / 'train').mkdir(parents=True)
    (tmp_path / word / 'train' / 'x_00001.mp4').write_bytes(b'x')
  errors = {c.label: c.error for c in sources.discover(str(tmp_path))}
  assert (
    errors['ABOUT'] is None
    and "word folder name 'AB\\nOUT' holds control characters" in errors['AB\nOUT']
  )


def test_manifest_rows_naming_one_video_are_its_intervals_and_a_repeat_is_an_error(tmp_path):
  manifest = tmp_path / 'm.csv'
  manifest.write_text(
    'path,label,split,speaker,start,end\n'
    's1/bbaf2n.mpg,bin,train,s1,0.95,1.18\n'
    's1/bbaf2n.mpg,blue,train,s1,1.18,1.36\n'
    's1/bbaf2n.mpg,blue,train,s1,1.18,1.36\n'
    's1/bbaf3s.mpg,bin,train,s1,0.9,1.1\n'
  )
  clips = sources.discover(str(manifest))
  good = sorted((c.video_id, c.label, c.interval) for c in clips if c.error is None)
  assert good == [
    ('s1/bbaf2n@0.95-1.18', 'BIN', (0.95, 1.18)),
    ('s1/bbaf2n@1.18-1.36', 'BLUE', (1.18, 1.36)),
    ('s1/bbaf3s', 'BIN', (0.9, 1.1)),  # the only row of its video keeps the plain id
  ]
  (repeat,) = [c.error for c in clips if c.error is not None]
  assert "duplicate path 's1/bbaf2n' and interval 1.18-1.36 s (first at row 3)" in repeat
