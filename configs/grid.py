"""GRID's 51 words (Cooke et al. 2006), each read from a window centred on it: real filmed speech.

Expects a GRID folder (speaker folders of videos and .align word timings, as the corpus
is distributed) extracted by

  python -m extraction --input GRID_DIR --out DATA_DIR --workers N

(each word a 29-frame window centred on it, its frames the speech mask; the split by
sentence within each speaker: `--split_by speaker --test_speakers s1,s2,s20,s22` holds
speakers out instead). Then:

  python -m lipjax.train --config configs/grid.py --config.data_dir=DATA_DIR --workdir W

configs/lrw.py's model and input (the word's boundary as an input, centred on the whole
window, no mixup), sized for one GRID speaker's ~4,800 training windows on a CPU: batch
32, 6,000 steps, the split held in memory. What each setting was chosen on:
experiments/README.md, "GRID".
"""

from configs import lrw


def get_config():
  """Returns the GRID words configuration."""
  config = lrw.get_config()
  config.data_dir = ''  # --config.data_dir=DATA_DIR (python -m extraction's output for GRID)
  config.batch_size = 32
  config.eval_batch_size = 128
  config.num_train_steps = 6_000
  config.warmup_steps = 300
  config.eval_every_steps = 250
  config.checkpoint_every_steps = 250
  config.log_every_steps = 50
  config.min_train_steps = 2_000
  config.patience = 8
  config.input.cache = True  # one speaker's windows fit in memory many times over
  return config
