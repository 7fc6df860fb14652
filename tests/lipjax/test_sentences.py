"""The sentence reader: CTC loss by hand, reading texts, and training, evaluating and predicting.

The data are made up (extraction/random_examples.py's sentences: a few words in a
row, each moving its own quarter of the face at its own rate); the parts are real:
shards, the training loop, orbax checkpoints, the command lines.
"""

import json
import os
import shutil
import subprocess
import sys

from checkpoint_files import checkpoint_progress
from checkpoint_files import latest
from checkpoint_files import read_metrics
from conftest import checkpoint_steps
from conftest import sentence_config
from conftest import SENTENCE_SPLITS
import jax
import numpy as np
import pytest

from extraction import random_examples
from extraction import tokens
from lipjax import data_source
from lipjax import evaluate
from lipjax import models
from lipjax import sentences
from lipjax import train
from lipjax import workdir as workdir_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(args, timeout=300):
  """Runs `python args...` from the repo root; returns the CompletedProcess."""
  return subprocess.run(
    [sys.executable] + args,
    cwd=REPO,
    env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2'),
    capture_output=True,
    text=True,
    timeout=timeout,
    check=False,
  )


# --- the loss and the readings, by hand ---------------------------------------------------


def test_ctc_loss_of_one_token_in_two_frames_by_hand():
  # Tokens: blank, a, b. Frame 0 softmax (1/4, 2/4, 1/4), frame 1 (3/5, 1/5, 1/5).
  logits = np.log([[[1.0, 2.0, 1.0], [3.0, 1.0, 1.0]]]).astype(np.float32)  # [1, 2, 3]
  # 'a' in two frames: a a (2/4 * 1/5) + a _ (2/4 * 3/5) + _ a (1/4 * 1/5) = 0.45.
  loss = sentences.ctc_loss(logits, np.ones((1, 2)), np.array([[1]]), np.array([1]))
  np.testing.assert_allclose(loss, [-np.log(0.45)], rtol=1e-5)
  # 'ab' has one path, a b: 2/4 * 1/5.
  loss = sentences.ctc_loss(logits, np.ones((1, 2)), np.array([[1, 2]]), np.array([2]))
  np.testing.assert_allclose(loss, [-np.log(0.1)], rtol=1e-5)


def test_ctc_loss_ignores_padded_frames_and_tokens():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(1, 5, tokens.NUM_TOKENS)).astype(np.float32)
  ids = tokens.encode('bin')[None]  # [1, 3]
  plain = sentences.ctc_loss(logits, np.ones((1, 5)), ids, np.array([3]))
  # Three more frames of anything, marked padding, and two more blank-padded token slots.
  padded_logits = np.concatenate([logits, 50 * rng.normal(size=(1, 3, tokens.NUM_TOKENS))], 1)
  padded_ids, _ = tokens.pad(ids[0], 5)
  padded = sentences.ctc_loss(
    padded_logits.astype(np.float32), (np.arange(8) < 5)[None], padded_ids[None], np.array([3])
  )
  np.testing.assert_allclose(padded, plain, rtol=1e-5)
  assert float(plain[0]) > 0
  # An evaluation batch's padding: no frames, no tokens, no cost.
  empty = sentences.ctc_loss(
    padded_logits.astype(np.float32), np.zeros((1, 8)), padded_ids[None] * 0, [0]
  )
  np.testing.assert_allclose(empty, [0.0], atol=1e-6)


def test_read_decodes_greedy_and_beam_and_only_beam_takes_a_lexicon():
  # Two utterances over [blank, space, a, b, ...]: frames spell 'b', 'a' / 'a', 'a' (blank between).
  log_probs = np.full((2, 3, tokens.NUM_TOKENS), np.log(1e-3), np.float32)
  b, a = tokens.encode('ba')
  log_probs[0, 0, b] = log_probs[0, 1, a] = log_probs[0, 2, tokens.BLANK_ID] = 0.0
  log_probs[1, 0, a] = log_probs[1, 1, tokens.BLANK_ID] = log_probs[1, 2, a] = 0.0
  assert sentences.read(log_probs, [3, 3], 'greedy') == ['ba', 'aa']
  assert sentences.read(log_probs, [3, 3], 'beam', beam_width=4) == ['ba', 'aa']
  assert sentences.read(log_probs, [3, 2], 'greedy') == ['ba', 'a']
  with pytest.raises(ValueError, match='greedy decoding takes neither'):
    sentences.read(log_probs, [3, 3], 'greedy', lexicon=['ba'])


def test_lexicon_file_and_grammar_names(tmp_path):
  lexicon = tmp_path / 'words.txt'
  lexicon.write_text('# GRID adverbs\nNow\nsoon  # one word a line\n\nagain\nnow\n')
  assert sentences.read_lexicon(str(lexicon)) == ('again', 'now', 'soon')
  lexicon.write_text('now\nbin 2\n')
  with pytest.raises(ValueError, match=r'words.txt:2: .* holds a space'):
    sentences.read_lexicon(str(lexicon))
  lexicon.write_text('now\n2\n')
  with pytest.raises(ValueError, match=r'words.txt:2: cannot encode .2.'):
    sentences.read_lexicon(str(lexicon))
  with pytest.raises(FileNotFoundError, match='does not exist'):
    sentences.read_lexicon(str(tmp_path / 'missing.txt'))
  assert len(sentences.grammar_named('grid')) == 6
  with pytest.raises(ValueError, match="no grammar 'lrw'; known: grid"):
    sentences.grammar_named('lrw')


# --- the model and the config checks ------------------------------------------------------


def test_a_sentence_data_set_gets_the_ctc_head_over_its_tokens(sentence_dataset, dataset):
  meta = sentence_dataset[1]
  config = sentence_config(sentence_dataset[0])
  config.model.head_hidden = (8,)
  model = models.create_model(config, meta)
  batch = models.dummy_batch(meta, 2)
  params = model.init(jax.random.PRNGKey(0), batch)['params']
  logits = model.apply({'params': params}, batch)
  assert logits.shape == (2, meta.max_frames, tokens.NUM_TOKENS) and logits.dtype == np.float32
  assert params['ctc_head']['kernel'].shape == (8, tokens.NUM_TOKENS)
  assert 'classifier' not in params
  # The word data set's model keeps its classifier, with the same encoder and hidden layer.
  word_params = models.create_model(config, dataset[1]).init(
    jax.random.PRNGKey(0), models.dummy_batch(dataset[1], 2)
  )['params']
  assert set(word_params) == set(params) - {'ctc_head'} | {'classifier'}
  assert jax.tree.map(np.shape, word_params['frame_encoder']) == jax.tree.map(
    np.shape, params['frame_encoder']
  )


@pytest.mark.parametrize(
  'key,value,message',
  [
    ('augment.mixup_alpha', 0.4, r'config.augment.mixup_alpha=0.4: it mixes two clips'),
    ('augment.time_cutmix', 0.2, r'config.augment.time_cutmix=0.2: it mixes two clips'),
    ('model.temporal', 'seed_fusion', r"temporal='seed_fusion' pools over time"),
  ],
)
def test_a_sentence_config_that_cannot_train_is_refused_before_anything_is_written(
  sentence_dataset, tmp_path, key, value, message
):
  config = sentence_config(sentence_dataset[0])
  section, name = key.split('.')
  config[section][name] = value
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  assert not (tmp_path / 'w').exists()


# --- a trained sentence reader ------------------------------------------------------------

STEPS = 8


@pytest.fixture(scope='module')
def sentence_run(tmp_path_factory, sentence_dataset):
  """A sentence workdir trained STEPS steps with the test config's time augmentations on."""
  config = sentence_config(sentence_dataset[0])
  config.num_train_steps = STEPS
  config.eval_every_steps = config.checkpoint_every_steps = 4
  # Speed, time shift and time warp stay on (configs/test.py's): the sentence-safe versions.
  assert config.augment.speed > 0 and config.augment.time_shift > 0
  workdir = str(tmp_path_factory.mktemp('sentence_run') / 'workdir')
  last = train.train_and_evaluate(config, workdir)
  return {'config': config, 'workdir': workdir, 'last': last}


def test_training_records_ctc_loss_and_greedy_error_rates(sentence_run):
  workdir = sentence_run['workdir']
  records = read_metrics(workdir)
  assert [r['step'] for r in records] == [4, 8]
  for record in records:
    assert {'train_loss', 'val_loss', 'val_wer', 'val_cer', 'val_examples'} <= set(record)
    assert 'val_accuracy' not in record and 'train_accuracy' not in record
    assert record['val_examples'] == SENTENCE_SPLITS['val']
    assert 0 < record['val_cer'] and np.isfinite(record['val_loss'])
  assert records[-1] == sentence_run['last']
  names = set(os.listdir(workdir))
  assert {'training_curves.png', 'tensorboard', 'dataset_meta.json'} <= names
  # The best checkpoint is the first evaluation with the lowest val CER, its progress says so.
  best = min(records, key=lambda r: r['val_cer'])
  assert checkpoint_steps(workdir, 'best') == [best['step']]
  progress = checkpoint_progress(workdir, 'best', best['step'])
  assert progress['best_val_cer'] == best['val_cer'] and 'best_val_accuracy' not in progress


def test_restarted_sentence_run_continues_identically(sentence_run, tmp_path):
  workdir = str(tmp_path / 'restarted')
  shutil.copytree(sentence_run['workdir'], workdir)
  # As if the run had stopped after its step-4 checkpoint: the same command resumes there.
  shutil.rmtree(os.path.join(workdir, 'checkpoints', 'latest', str(STEPS)))
  train.train_and_evaluate(sentence_run['config'], workdir)
  straight_params, straight_progress = latest(sentence_run['workdir'])
  resumed_params, resumed_progress = latest(workdir)
  assert resumed_progress == straight_progress
  for a, b in zip(straight_params, resumed_params):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  straight, resumed = read_metrics(sentence_run['workdir']), read_metrics(workdir)
  assert [r['step'] for r in resumed] == [4, 8]
  for key in ('train_loss', 'val_loss', 'val_cer', 'val_wer'):
    assert resumed[-1][key] == pytest.approx(straight[-1][key], rel=1e-5), key


def test_a_sentence_workdir_refuses_a_word_data_set(sentence_run, dataset, test_config, tmp_path):
  workdir = str(tmp_path / 'copy')
  shutil.copytree(sentence_run['workdir'], workdir)
  test_config.num_train_steps = STEPS + 2
  with pytest.raises(workdir_lib.WorkdirError, match=r'holds a sentence reader \(CTC\), .* word'):
    train.train_and_evaluate(test_config, workdir)


def test_word_only_programs_refuse_a_sentence_workdir_in_one_line(sentence_run):
  from lipjax import diagnose

  with pytest.raises(workdir_lib.WorkdirError, match=r'lipjax.diagnose reads word classifiers'):
    diagnose.diagnose_workdir(sentence_run['workdir'])
  assert not os.path.exists(os.path.join(sentence_run['workdir'], 'report.md'))


def test_evaluate_reports_each_decoding_per_speaker_with_misreadings(sentence_run, tmp_path):
  lexicon = tmp_path / 'words.txt'
  lexicon.write_text('\n'.join(random_examples.SENTENCE_WORDS) + '\n')
  report = evaluate.evaluate_workdir(sentence_run['workdir'], 'test', lexicon=str(lexicon))
  assert report['examples'] == SENTENCE_SPLITS['test']
  assert list(report['decodings']) == ['greedy', 'beam', 'beam+lexicon']
  source = data_source.SplitSource(sentence_run['config'].data_dir, 'test')
  stored = source.__getitems__(range(len(source)))
  references = [e['text'] for e in stored]
  assert [u['reference'] for u in report['utterances']] == references
  for name, rates in report['decodings'].items():
    readings = [u[name] for u in report['utterances']]
    assert rates['wer'] == pytest.approx(metrics_wer(references, readings))
    assert sorted(report['per_speaker'][name]) == ['spk0', 'spk1', 'spk2', 'spk3']
    misread = [u for u in report['utterances'] if u[name] != u['reference']]
    assert len(report['errors'][name]) == min(len(misread), evaluate.SHOWN_ERRORS)
  for utterance in report['utterances']:  # the lexicon's readings are its words or nothing
    assert set(utterance['beam+lexicon'].split()) <= set(random_examples.SENTENCE_WORDS)
  with open(os.path.join(sentence_run['workdir'], 'eval_test.json')) as f:
    assert json.load(f)['decodings'] == report['decodings']


def metrics_wer(references, hypotheses):
  """lipjax.metrics' corpus WER (the one definition)."""
  from lipjax import metrics

  return metrics.word_error_rate(references, hypotheses)


def test_predictor_reads_what_evaluate_reads(sentence_run):
  from lipjax import predict

  report = evaluate.evaluate_workdir(sentence_run['workdir'], 'val')
  source = data_source.SplitSource(sentence_run['config'].data_dir, 'val')
  examples = [data_source.model_example(e) for e in source.__getitems__(range(len(source)))]
  predictor = predict.Predictor(sentence_run['workdir'])
  for decoder in ('greedy', 'beam'):
    read = predictor.read(examples, batch_size=4, decoder=decoder)
    assert read == [u[decoder] for u in report['utterances']], decoder


@pytest.mark.slow
def test_evaluate_cli_prints_wer_and_cer_of_each_decoding(sentence_run):
  result = run_python(
    ['-m', 'lipjax.evaluate', '--workdir', sentence_run['workdir'], '--grammar', 'grid']
  )
  assert result.returncode == 0, result.stderr[-3000:]
  summary = result.stdout.splitlines()[0]
  for name in ('greedy', 'beam', 'beam+grammar:grid'):
    assert f'{name} WER ' in summary and ' CER ' in summary
  assert f'on {SENTENCE_SPLITS["test"]} utterances' in summary
  with open(os.path.join(sentence_run['workdir'], 'eval_test.json')) as f:
    report = json.load(f)
  # GRID's grammar: six words, one of each slot, whatever the model says; nothing where the
  # made-up utterance is shorter (down to 10 frames) than the grammar's shortest reading.
  counts = [len(u['beam+grammar:grid'].split()) for u in report['utterances']]
  assert set(counts) == {0, 6}, counts


@pytest.mark.slow
def test_predict_cli_prints_the_sentence_of_a_video(sentence_run, tmp_path):
  from extraction.synthetic.faces import carphone_path

  lexicon = tmp_path / 'words.txt'
  lexicon.write_text('\n'.join(random_examples.SENTENCE_WORDS) + '\n')
  video = carphone_path()
  result = run_python(
    ['-m', 'lipjax.predict', video, '--workdir', sentence_run['workdir'], '--lexicon', str(lexicon)]
  )
  assert result.returncode == 0, result.stderr[-3000:]
  (line,) = [row for row in result.stdout.splitlines() if row.startswith(f'{video}: ')]
  text = line[len(f'{video}: ') :]
  assert set(text.split()) <= set(random_examples.SENTENCE_WORDS)
  word_only = run_python(
    ['-m', 'lipjax.predict', video, '--workdir', sentence_run['workdir'], '--top_k', '2']
  )
  assert word_only.returncode == 2 and 'Traceback' not in word_only.stderr
  assert word_only.stderr.strip().splitlines()[-1].startswith('lipjax.predict: error: --top_k')


# --- learning -----------------------------------------------------------------------------

LEARN_STEPS = 300


@pytest.mark.slow
def test_a_few_hundred_steps_read_the_made_up_sentences(sentence_dataset, tmp_path):
  config = sentence_config(sentence_dataset[0])
  for key in ('time_warp', 'speed', 'time_shift', 'yaw_degrees', 'pitch_degrees'):
    config.augment[key] = type(config.augment[key])(0)
  config.num_train_steps = LEARN_STEPS
  config.eval_every_steps = config.checkpoint_every_steps = 50
  workdir = str(tmp_path / 'learned')
  train.train_and_evaluate(config, workdir)
  records = read_metrics(workdir)
  best = min(records, key=lambda r: r['val_cer'])
  # Reading nothing is CER 1; reading every sentence as its likeliest word, about 0.7. A head
  # or loss wired wrong (labels unpadded, frames reversed, logits of the pooled clip) stays
  # at the all-blank plateau, CER 1, WER 1.
  # Measured: CER 0.065, WER 0.18 at step 250 (val, 13 sentences).
  assert best['val_cer'] < 0.3 and best['val_wer'] < 0.5, records
  report = evaluate.evaluate_workdir(workdir, 'test')
  assert report['decodings']['greedy']['cer'] < 0.3 and report['decodings']['beam']['cer'] < 0.3
