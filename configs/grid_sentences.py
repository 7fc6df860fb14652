"""GRID's sentences read whole (CTC over characters, Cooke et al. 2006): the sentence reader.

Expects a GRID folder extracted as whole utterances (75 frames, the text and the
words' span as the speech mask; the split by sentence within each speaker, or
`--split_by speaker --test_speakers s1,s2,s20,s22` for LipNet's unseen speakers):

  python -m extraction --input GRID_DIR --out DATA_DIR --examples sentences --max_frames 75
  python -m lipjax.train --config configs/grid_sentences.py --config.data_dir=DATA_DIR --workdir W
  python -m lipjax.evaluate --workdir W --grammar grid

The data set makes the model a sentence reader (models.create_model): the demo's
GCN per frame, a two-layer BiLSTM over all 75 frames and a CTC head over
extraction/tokens.py's 28 characters and blank; the best checkpoint is the one
with the lowest val CER of greedy decoding. Sized for one speaker's ~800 training
sentences on a CPU: batch 16, 2,500 steps (50 epochs, about an hour on 2 shared
cores), the split held in memory.
"""

from configs import small


def get_config():
  """Returns the GRID sentences configuration."""
  config = small.get_config()
  config.data_dir = ''  # --config.data_dir=DATA_DIR (python -m extraction --examples sentences)
  config.batch_size = 16  # 75-frame utterances: 1,200 frame graphs a step, as 41 word windows
  config.eval_batch_size = 64
  config.num_train_steps = 2_500
  config.warmup_steps = 200
  config.eval_every_steps = 250
  config.checkpoint_every_steps = 250
  config.log_every_steps = 50
  # CTC sits at its all-blank plateau (CER 1) for its first few hundred steps; the CER of
  # greedy decoding then falls in steps, so patience is counted only after the plateau.
  config.patience = 6
  config.min_train_steps = 1_250
  config.learning_rate = 2e-3
  config.label_smoothing = 0.0  # cross-entropy's; CTC has none (and reads none)
  config.input.cache = True  # one speaker's 1,000 utterances: ~0.3 GB

  # Mixing two clips mixes their labels: refused for sentences (train.validate).
  config.augment.mixup_alpha = 0.0
  config.augment.time_cutmix = 0.0
  # Time augmentations are sentence-safe (augment.py): the shift pushes only the silence
  # around the speech out of the clip (GRID has ~10-20 still frames each side), speed keeps
  # the last spoken frame inside and enough frames for every token, a warp cuts nothing.
  config.augment.time_shift = 5
  config.augment.speed = 0.1
  config.augment.time_warp = 0.2  # milder than the words': a part squeezed 2x loses letters
  config.augment.time_mask_max = 3  # frames held, as a lost face (LipNet drops/duplicates frames)

  config.model.mask_mode = 'frames'  # pooling's; the CTC head reads every real frame
  # GRID films each sentence with still, closed lips before and after it: the rest pose is
  # the mouth at rest, read from the frames outside the speech mask (the words' span);
  # `predict --start --end` gives it for a new video.
  config.model.centre = 'rest_scaled'
  # No speech mask as an input: a video read by `predict` has no transcript, so the reader
  # must find the speech itself; and the span of the words is not an input LipNet had.
  config.model.boundary_input = False
  config.model.lstm_hidden = 128
  config.model.lstm_layers = 2  # a second BiLSTM layer, as LipNet's two BiGRUs, for spelling
  config.model.head_hidden = ()  # CTC logits straight from the BiLSTM, per frame
  config.model.dropout_rate = 0.3
  return config
