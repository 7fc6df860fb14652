"""The real LRW corpus (500 words cut from running speech), as a user with LRW runs it.

Expects LRW ("Lip Reading in the Wild", lipread_mp4) extracted by
`python -m extraction --input LRW_ROOT --out DATA_DIR --workers N`, where LRW_ROOT holds
WORD/{train,val,test}/WORD_00001.mp4 with LRW's WORD_00001.txt beside each video (its
`Duration:` line gives the word's boundary, centred in the 29-frame window). Then:

  python -m lipjax.train --config configs/lrw.py --config.data_dir=DATA_DIR --workdir W

About 488,000 training clips (~17 GB of shards): the input reads each batch from the
shards (grain, the whole split shuffled by index; host memory is the batches in flight).
Batch 256 = 32 per core of a TPU v2-8, or one GPU. Under 10M parameters
(tests/lipjax/test_models.py checks). Multi-host: add --config.distributed=True (README).
What each setting below was chosen on: experiments/README.md.
"""

from configs import base


def get_config():
  """Returns the LRW configuration."""
  config = base.get_config()
  config.data_dir = ''  # --config.data_dir=DATA_DIR (python -m extraction's output for LRW)
  config.batch_size = 256  # global: 32 per core on a TPU v2-8
  config.eval_batch_size = 512
  config.num_train_steps = 80_000
  config.eval_every_steps = 2_000
  config.checkpoint_every_steps = 2_000
  config.learning_rate = 2e-3
  config.warmup_steps = 3_000
  config.input.cache = False  # as base.py: read each batch from the shards
  config.model.centre = 'window_scaled'  # no silence in an LRW clip: no rest pose to read
  config.model.boundary_input = True  # the word's frames as an input: +0.12 on 100 words in context
  config.augment.mixup_alpha = 0.0  # held 500 generated words at chance
  config.min_train_steps = 10_000  # no early stop before this step, however patience stands
  return config
