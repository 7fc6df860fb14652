"""LRW scale (500 words, ~500k clips): a wider GCN and a two-layer BiLSTM (< 10M parameters)."""

import os

from configs import small


def get_config():
  """Returns the base configuration."""
  config = small.get_config()
  config.data_dir = os.environ.get('LIPJAX_DATA_DIR', '')  # an LRW data set: --config.data_dir=DIR
  config.batch_size = 128
  config.eval_batch_size = 256
  config.num_train_steps = 120_000
  config.eval_every_steps = 2_000
  config.checkpoint_every_steps = 2_000
  config.log_every_steps = 200
  config.patience = 10
  config.learning_rate = 1e-3
  config.warmup_steps = 2_000
  config.weight_decay = 5e-4
  # LRW (~17 GB of shards) does not fit in host memory: read each batch from the shards.
  config.input.cache = False
  config.model.gcn_features = (96, 128, 128)
  config.model.lstm_hidden = 256
  config.model.lstm_layers = 2
  config.model.head_hidden = (512,)
  config.model.dropout_rate = 0.3
  return config
