"""The seed model's shape, for comparison: ~33M parameters, meant to overfit a small data set.

Index-space k-NN edges, globals broadcast onto nodes, no temporal mask, and an
over-wide temporal block (BiLSTM + attention + conv1d branches, gated fusion)
with a 1536 -> 768 -> 384 head.
"""

from configs import small


def get_config():
  """Returns the seed-approximating configuration."""
  config = small.get_config()
  config.learning_rate = 3e-4
  config.label_smoothing = 0.0
  config.model.edges = 'knn_index'
  config.model.knn_k = 4
  config.model.globals_mode = 'broadcast'
  config.model.mask_mode = 'none'
  config.model.velocities = False
  config.model.centre = 'none'
  config.model.gcn_features = (128, 128, 128)
  config.model.temporal = 'seed_fusion'
  config.model.lstm_hidden = 1024
  config.model.attention_dim = 1024
  config.model.attention_heads = 8
  config.model.conv_features = 1024
  config.model.conv_layers = 3
  config.model.conv_kernel = 5
  config.model.fusion_dim = 1536
  config.model.head_hidden = (768, 384)
  config.model.dropout_rate = 0.3
  return config
