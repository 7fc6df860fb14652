"""The demo default: a small GCN + BiLSTM (< 1M parameters) that trains in minutes on CPU."""

import os

import ml_collections

from lipjax import cli


def get_config():
  """Returns the small configuration."""
  config = ml_collections.ConfigDict()
  # The demo data set (extraction/demo.py builds it when missing); LIPJAX_DATA_DIR overrides.
  config.data_dir = os.environ.get('LIPJAX_DATA_DIR', cli.DEMO_DATA_DIR)
  config.seed = 0
  config.distributed = False  # jax.distributed.initialize() first (multi-host TPU/GPU)
  # Multi-host without auto-detection (Cloud TPU and SLURM detect these themselves):
  # HOST:PORT of process 0, the number of processes and this one's index.
  config.coordinator_address = ml_collections.config_dict.placeholder(str)
  config.num_processes = ml_collections.config_dict.placeholder(int)
  config.process_id = ml_collections.config_dict.placeholder(int)
  # CPU only: expose cores as pmap devices (-1: one per core, 0: XLA default of one).
  config.cpu_devices = -1

  config.batch_size = 32  # global, over all devices
  config.eval_batch_size = 64
  # About 55 epochs of the demo's 880 training clips: val accuracy levels off before the end
  # (the best checkpoint is kept); longer runs go to memorising training clips.
  config.num_train_steps = 1500
  config.eval_every_steps = 200
  config.checkpoint_every_steps = 200
  config.log_every_steps = 50
  config.keep_checkpoints = 2
  config.patience = 4  # evaluations without a better val accuracy before stopping
  # Early stopping never ends a run before this step: a run that sits at chance for its
  # first evaluations (many classes, few clips a word) is not judged before it starts.
  config.min_train_steps = 0

  config.learning_rate = 3e-3
  config.warmup_steps = 200
  config.weight_decay = 1e-4
  config.label_smoothing = 0.1
  config.grad_clip = 1.0

  config.input = ml_collections.ConfigDict()
  # True: decode the split once and hold it in memory (small data sets); False: read each
  # batch from the shards (any size).
  config.input.cache = True
  config.input.workers = 0  # grain worker processes that read and decode (0: in this process)
  config.input.threads = 1  # grain threads that make batches ahead of training
  config.input.prefetch = 4  # batches made ahead

  config.augment = ml_collections.ConfigDict()
  config.augment.flip = True  # p=0.5 horizontal flip through the mirror permutation
  # 3-D head turns (FaceMesh's z): held-out speakers face the camera at other angles.
  config.augment.yaw_degrees = 30.0
  config.augment.pitch_degrees = 15.0
  config.augment.rotate_degrees = 8.0
  config.augment.scale = 0.08
  config.augment.translate = 0.03
  config.augment.jitter_std = 0.003
  config.augment.time_mask_max = 3  # frames held frozen, flagged in face_mask
  config.augment.speed = 0.15  # resample at a rate in [1 - speed, 1 + speed]
  # Against memorising single clips: a clip's own timing (where the word sits, how long
  # each sound lasts) tells apart the training clips of look-alike words (BAT, PAT, MAT)
  # and nothing else. Measured effects on the demo: experiments/README.md.
  config.augment.time_shift = 3  # move each clip's frames by up to +-time_shift steps
  # Per-part speed changes inside a clip: log-normal std of each part's rate (0: off).
  config.augment.time_warp = 0.5
  config.augment.time_warp_parts = 4
  # Mixup (Zhang et al. 2018): each clip mixed with another, weight max(w, 1 - w),
  # w ~ Beta(alpha, alpha); 0 turns it off.
  config.augment.mixup_alpha = 0.4
  # Landmark-space augmentations of SyncVSR (its values in brackets), each off at 0:
  config.augment.axis_scale = 0.0  # per-axis scale in [1 - a, 1 + a] [0.2]
  config.augment.shear = 0.0  # shear of two axes by up to a x the third [0.2]
  config.augment.smooth_rotation_degrees = 0.0  # 3-D rotation moving over the clip [45]
  config.augment.frame_block_mask = 0.0  # share of frames lost in blocks [0.1]
  config.augment.frame_block_size = 3  # [3]
  config.augment.frame_noise = 0.0  # share of frames replaced by noise [0.1]
  config.augment.frame_noise_std = 0.3  # that noise, in units of the clip's spread [0.3]
  config.augment.point_drop = 0.0  # share of landmarks held still all clip [0.1]
  # Articulation: each node's movement about its clip mean scaled per axis in [1 - a, 1 + a].
  config.augment.motion_scale = 0.0
  # Time-axis CutMix: up to this share of the frames pasted from another clip (not with mixup).
  config.augment.time_cutmix = 0.0

  config.model = ml_collections.ConfigDict()
  config.model.spatial = 'gcn'  # gcn | none (no graph: flattened landmarks into the LSTM)
  config.model.edges = 'anatomical'  # anatomical | knn_distance | knn_index
  config.model.knn_k = 4
  config.model.mask_mode = 'speech'  # speech | frames | none
  config.model.globals_mode = 'globals'  # globals | broadcast
  # lipjax/normalization.py: none | rest | rest_scaled (relative to each clip's rest pose,
  # frames outside speech) | window | window_scaled (to the whole window's mean: needs no
  # silence) | clip_standardised | procrustes | procrustes_frames (to the train mean face).
  # The demo's words are spoken alone, with silence around them: rest_scaled.
  config.model.centre = 'rest_scaled'
  # The speech mask as an input channel of the BiLSTM too (not only the pooling mask).
  config.model.boundary_input = False
  # FaceMesh's z (its depth estimate, from one camera) as a node input; False: the nodes
  # carry x and y only (z still counts in a scaled centring's one overall scale).
  config.model.depth = True
  config.model.velocities = True
  config.model.velocity_scale = 10.0
  config.model.gcn_features = (64, 64)
  config.model.gcn_impl = 'dense'  # dense | jraph (same operator)
  config.model.temporal = 'bilstm'  # bilstm | transformer
  config.model.lstm_hidden = 128
  config.model.lstm_layers = 1
  config.model.lstm_unroll = 1  # scan unroll: measured no gain on CPU at T = 29, slower compile
  # temporal='transformer': pre-LN blocks with rotary positions over the frames. It wants a
  # linear head (head_hidden=()): behind a hidden ReLU layer it sat at chance on 100 words;
  # and learning_rate=1e-3 with dropout_rate=0.1: at 3e-3 and 0.2 it stayed at train accuracy 0.35.
  config.model.transformer_width = 128
  config.model.transformer_layers = 4
  config.model.transformer_heads = 4
  config.model.transformer_mlp_ratio = 4
  config.model.drop_path_rate = 0.1  # stochastic depth of the last block (0 at the first)
  # float32 | bfloat16: compute dtype of the GCN, LSTM and head. bfloat16 is for GPUs/TPUs
  # (CPUs emulate it, slower); parameters, logits and loss stay float32 either way.
  config.model.dtype = 'float32'
  config.model.head_hidden = (128,)
  config.model.dropout_rate = 0.2
  return config
