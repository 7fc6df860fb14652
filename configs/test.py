"""Tiny configuration for tests: trains a few steps in seconds on CPU."""

from configs import small


def get_config():
  """Returns the test configuration (data_dir is set by the test)."""
  config = small.get_config()
  config.data_dir = ''
  config.batch_size = 8
  config.eval_batch_size = 8
  config.num_train_steps = 6
  config.eval_every_steps = 3
  config.checkpoint_every_steps = 2
  config.log_every_steps = 2
  config.patience = 100
  config.learning_rate = 1e-2
  config.warmup_steps = 2
  config.input.prefetch = 2
  config.model.gcn_features = (16, 16)
  config.model.lstm_hidden = 16
  config.model.head_hidden = (16,)
  config.model.dropout_rate = 0.1
  return config
