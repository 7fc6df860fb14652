"""The real LRW corpus (500 words cut from running speech): what a user with LRW runs as is.

What it expects: LRW ("Lip Reading in the Wild", lipread_mp4) extracted by
`python -m extraction --input LRW_ROOT --out DATA_DIR --workers N`, where
LRW_ROOT holds WORD/{train,val,test}/WORD_00001.mp4 with LRW's WORD_00001.txt
beside each video (its `Duration:` line gives the word's boundary: the word
sits centred in the 29-frame window, other words spoken on both sides).
Then:

  python -m lipjax.train --config configs/lrw.py --config.data_dir=DATA_DIR --workdir W

About 488,000 training clips: some 17 GB of parsed shards at T = 29, more than a
Colab or TPU host holds, so the input streams from the shards (interleaved
reads, a bounded shuffle buffer; host memory is the buffer's, not the data
set's). The buffer holds a tenth of the split, so it relies on extraction writing
the words mixed along each shard file (extraction/shards.py, record_order); data
whose metadata has no `record_order` (extracted before 2026-11-26's change) is sorted
by word, and training warns: run the same `python -m extraction` again, which
rewrites the shards from its clip cache without re-extracting. Batch 256 = 32 per
core of a Colab TPU v2-8 (or one GPU); 80,000 steps are ~42 epochs. On one H100 a step
takes 13.8 ms (float32): 18 min of step time for the whole schedule, so the input
pipeline, not the step, sets the pace there (experiments/README.md, "configs/lrw.py on one
H100"). The word boundary is the pooling mask (mask_mode 'speech'). Speaker
normalisation cannot read a rest pose from silence (there is none in an LRW clip), so it
is relative to the whole window (centre 'window_scaled'): on 10 words in running speech
(experiments/README.md, "Words in running speech") it gave test 0.602 +- 0.024 over three
seeds against 0.563 +- 0.010 for the rest pose (0.205 without centring); the boundary as a
BiLSTM input as well (boundary_input) did not help there (0.590 with window centring, one
seed), so it stays off. No mixup: on 500 generated words in running speech (experiments/
README.md, "500 words in running speech") mixup at the demo's alpha 0.4 held the run at
chance (loss ln 500 from step 250, test 0.002) where the same run without it left chance at
once (test 0.029 after 1500 steps, still rising; one seed each, 30 training clips a word
against LRW's ~1,000); on 100 words in context, 3 seeds, no mixup gave 0.401 +- 0.005
against 0.309 +- 0.021, and on 10 words 0.615 +- 0.009 against 0.602 +- 0.024.
Early stopping waits for step 10,000 (~5 epochs): a 500-class run that starts slowly is not
judged on its first evaluations.
Under 10M parameters (tests/lipjax/test_models.py checks).
Multi-host (TPU pod slices, SLURM): add --config.distributed=True (README).
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
  # Stream from the shards (base.py): only the shuffle buffer is held in memory.
  config.input.cache = False
  config.input.jit_augment = True
  config.input.shuffle_buffer = 50_000
  config.model.centre = 'window_scaled'  # no silence in an LRW clip: no rest pose to read
  config.model.boundary_input = False  # no gain measured with window centring (see above)
  config.augment.mixup_alpha = 0.0  # held 500 classes at chance (see above)
  config.min_train_steps = 10_000  # no early stop before this step, however patience stands
  return config
