"""Networks only: a GCN per frame over the landmark graph, a temporal model, and one of two heads.

Inputs are the batch dict of input_pipeline.py (`landmarks` [B, T, N, 3], `au`,
`geometry`, `frame_mask`, `speech_mask`, `length`). The head is the data set's:
a word classifier (logits [B, C] of the speech-pooled sequence) for a word data
set, a sentence reader (CTC logits [B, T, K] over extraction/tokens.py's tokens,
one row per frame) for a sentence data set. Both share every layer before the head.
No training logic lives here.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import jraph
import numpy as np

from lipjax import graphs as graphs_lib
from lipjax import lstm as lstm_lib
from lipjax import normalization
from lipjax import transformer as transformer_lib

MASK_MODES = ('speech', 'frames', 'none')
GLOBALS_MODES = ('globals', 'broadcast')
SPATIAL_MODES = ('gcn', 'none')
TEMPORAL_MODES = ('bilstm', 'transformer', 'seed_fusion')
# 'classifier': a word per clip; 'ctc': a token distribution per frame (sentences).
HEADS = ('classifier', 'ctc')


DTYPES = ('float32', 'bfloat16')


def compute_dtype(name: str):
  """The jnp dtype of config model.dtype, with an error naming the accepted values."""
  if name not in DTYPES:
    raise ValueError(f'config model.dtype={name!r}; expected one of {DTYPES}')
  return jnp.dtype(name)


def node_features(landmarks, frame_mask, velocities: bool, velocity_scale: float):
  """Per-node inputs: centred xyz and, optionally, scaled frame-to-frame velocities.  # [B, T, N, F]"""
  real = frame_mask[..., None, None]  # [B, T, 1, 1]
  centred = (landmarks - 0.5) * real  # [B, T, N, 3]
  if not velocities:
    return centred
  # Only a step between two real frames is motion; the first frame and padding get zero.
  both_real = real[:, 1:] * real[:, :-1]
  steps = (landmarks[:, 1:] - landmarks[:, :-1]) * both_real * velocity_scale  # [B, T-1, N, 3]
  velocity = jnp.concatenate([jnp.zeros_like(steps[:, :1]), steps], axis=1)  # [B, T, N, 3]
  return jnp.concatenate([centred, velocity], axis=-1)  # [B, T, N, 6]


def pooling_mask(frame_mask, speech_mask, mode: str):
  """The frames that temporal pooling averages over.  # [B, T]

  'speech': speech frames, or all real frames where a clip has no speech frame;
  'frames': real frames; 'none': every step, padding included (the seed's).
  """
  if mode == 'none':
    return jnp.ones_like(frame_mask)
  if mode == 'frames':
    return frame_mask
  if mode == 'speech':
    speech = speech_mask * frame_mask
    has_speech = jnp.sum(speech, axis=1, keepdims=True) > 0  # [B, 1]
    return jnp.where(has_speech, speech, frame_mask)
  raise ValueError(f'config model.mask_mode={mode!r}; expected one of {MASK_MODES}')


class GCNLayer(nn.Module):
  """Graph convolution with symmetric normalisation and self loops on one frame's graph.

  impl='jraph' is jraph.GraphConvolution; impl='dense' is the same operator as a
  dense normalised-adjacency matmul (88 nodes: one small matmul beats gather/scatter).
  """

  features: int
  impl: str = 'dense'
  dtype: jnp.dtype = jnp.float32  # computation; parameters stay float32

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple) -> jraph.GraphsTuple:
    if self.impl == 'jraph':
      return jraph.GraphConvolution(
        update_node_fn=nn.Dense(self.features, dtype=self.dtype),
        add_self_edges=True,
        symmetric_normalization=True,
      )(graph)
    if self.impl != 'dense':
      raise ValueError(f'config model.gcn_impl={self.impl!r}; expected dense or jraph')
    nodes = graph.nodes  # [N, F_in]
    adjacency = graphs_lib.normalized_adjacency(
      graph.senders, graph.receivers, nodes.shape[0]
    ).astype(self.dtype)
    kernel = nn.Dense(self.features, use_bias=False, dtype=self.dtype, name='kernel')
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    # A (X W) == (A X) W: aggregate on whichever side is narrower.
    if nodes.shape[-1] < self.features:
      mixed = kernel(adjacency @ nodes)
    else:
      mixed = adjacency @ kernel(nodes)
    # jraph adds the bias before aggregating, so it arrives scaled by A's row sums.
    row_sums = jnp.sum(adjacency, axis=1, keepdims=True)  # [N, 1]
    mixed = mixed + row_sums * bias.astype(self.dtype)  # [N, F_out]
    return graph._replace(nodes=mixed)


class FrameEncoder(nn.Module):
  """GCN stack over one frame's graph, mean+max node pooling (+ globals), dropout.  # [D]"""

  gcn_features: Sequence[int]
  gcn_impl: str
  dropout_rate: float
  with_globals: bool
  deterministic: bool
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple):
    for features in self.gcn_features:
      graph = GCNLayer(features, self.gcn_impl, self.dtype)(graph)
      graph = graph._replace(nodes=nn.relu(nn.LayerNorm(dtype=self.dtype)(graph.nodes)))
    pooled = [jnp.mean(graph.nodes, axis=0), jnp.max(graph.nodes, axis=0)]  # [F] each
    if self.with_globals:
      pooled.append(graph.globals[0])  # [G]
    # Dropout on the frame embedding, not on every node: per-node masks would draw
    # B*T*N*F random numbers per step, a large share of a CPU training step.
    return nn.Dropout(self.dropout_rate, deterministic=self.deterministic)(
      jnp.concatenate(pooled, axis=-1)
    )


class SeedFusion(nn.Module):
  """The seed's over-wide temporal block: LSTM, attention and conv1d branches, gated fusion.  # [B, D]"""

  lstm_hidden: int
  attention_dim: int
  attention_heads: int
  conv_features: int
  conv_layers: int
  conv_kernel: int
  fusion_dim: int
  dropout_rate: float

  @nn.compact
  def __call__(self, frames, lengths, frame_mask, pool_mask, train: bool):
    lstm_out = lstm_lib.BiLSTM(self.lstm_hidden)(frames, lengths)  # [B, T, 2H]
    attended = nn.Dense(self.attention_dim)(frames)  # [B, T, A]
    attention_mask = nn.make_attention_mask(frame_mask > 0, frame_mask > 0)
    attended = nn.LayerNorm()(
      attended
      + nn.MultiHeadDotProductAttention(
        self.attention_heads, deterministic=not train, dropout_rate=self.dropout_rate
      )(attended, attended, mask=attention_mask)
    )
    convolved = frames
    for _ in range(self.conv_layers):
      convolved = nn.gelu(nn.Conv(self.conv_features, (self.conv_kernel,))(convolved))  # [B, T, C]
    branches = [normalization.masked_mean(x, pool_mask) for x in (lstm_out, attended, convolved)]
    projected = [nn.Dense(self.fusion_dim)(x) for x in branches]  # 3 x [B, fusion]
    gates = nn.softmax(nn.Dense(len(projected))(jnp.concatenate(branches, axis=-1)))  # [B, 3]
    return sum(gates[:, i : i + 1] * p for i, p in enumerate(projected))  # [B, fusion]


class LipReader(nn.Module):
  """Landmark graphs per frame -> GCN -> BiLSTM or transformer -> pooled word logits or CTC logits.

  Every setting but the head comes from config.model (create_model): the configs
  are the one home of their values. Settings of a temporal model not in use may be None.
  """

  num_classes: int  # the head's outputs: words (classifier) or tokens with the blank (ctc)
  senders: Sequence[int]
  receivers: Sequence[int]
  # The train split's mean node positions [N][3] (metadata): the Procrustes reference face.
  reference: Sequence[Sequence[float]]
  spatial: str  # 'none': the no-graph baseline, flattened nodes + globals into the temporal model
  gcn_features: Sequence[int]
  gcn_impl: str
  depth: bool  # z as a node input; False: x and y only (z set to 0.5 after normalisation)
  velocities: bool
  velocity_scale: float
  globals_mode: str
  mask_mode: str
  centre: str  # normalization.CENTRE_MODES
  # The word boundary (speech mask) as an input channel of the temporal model, besides
  # its use as the pooling mask: the temporal model then knows which frames are the word.
  boundary_input: bool
  temporal: str  # TEMPORAL_MODES
  head_hidden: Sequence[int]
  dropout_rate: float
  # float32 | bfloat16: the dtype of the GCN, temporal model and head's matmuls and
  # activations (accelerators); parameters, input normalisation, logits and loss stay float32.
  dtype: str
  lstm_hidden: int | None = None
  lstm_layers: int | None = None
  lstm_unroll: int | None = None
  transformer_width: int | None = None
  transformer_layers: int | None = None
  transformer_heads: int | None = None
  transformer_mlp_ratio: int | None = None
  drop_path_rate: float | None = None
  # temporal='seed_fusion' (configs/seed.py) only.
  attention_dim: int | None = None
  attention_heads: int | None = None
  conv_features: int | None = None
  conv_layers: int | None = None
  conv_kernel: int | None = None
  fusion_dim: int | None = None
  # HEADS; chosen by the data set (create_model), not by config: the parameters of a word
  # classifier keep their names, and its checkpoints load, whatever the sentence reader adds.
  head: str = 'classifier'

  def frame_embeddings(self, batch, train: bool):
    """Per-frame embeddings: the GCN vmapped over batch and time, or flattened nodes.  # [B, T, D]"""
    if self.globals_mode not in GLOBALS_MODES:
      raise ValueError(
        f'config model.globals_mode={self.globals_mode!r}; expected one of {GLOBALS_MODES}'
      )
    b, t, n, _ = batch['landmarks'].shape
    landmarks, globals_ = normalization.normalize(
      batch['landmarks'],
      jnp.concatenate([batch['au'], batch['geometry']], axis=-1),
      batch['frame_mask'],
      batch['speech_mask'],
      self.centre,
      self.reference,
    )  # [B, T, N, 3], [B, T, G]
    if not self.depth:
      landmarks = jnp.concatenate([landmarks[..., :2], jnp.full_like(landmarks[..., 2:], 0.5)], -1)
    nodes = node_features(landmarks, batch['frame_mask'], self.velocities, self.velocity_scale)
    dtype = compute_dtype(self.dtype)
    nodes, globals_ = nodes.astype(dtype), globals_.astype(dtype)
    frame_mask = batch['frame_mask'].astype(dtype)
    if self.spatial == 'none':
      flat = jnp.concatenate([nodes.reshape(b, t, -1), globals_], axis=-1)  # [B, T, N*F + G]
      frames = nn.Dropout(self.dropout_rate, deterministic=not train)(flat)
      return frames * frame_mask[..., None]
    if self.spatial != 'gcn':
      raise ValueError(f'config model.spatial={self.spatial!r}; expected one of {SPATIAL_MODES}')
    if self.globals_mode == 'broadcast':
      nodes = jnp.concatenate(
        [nodes, jnp.broadcast_to(globals_[:, :, None], (b, t, n, globals_.shape[-1]))], axis=-1
      )
    graph = graphs_lib.frame_graphs(
      nodes.reshape(b * t, n, nodes.shape[-1]),
      globals_.reshape(b * t, -1),
      self.senders,
      self.receivers,
    )
    encoder = nn.vmap(
      FrameEncoder,
      in_axes=(graphs_lib.FRAME_GRAPH_AXES,),
      out_axes=0,
      variable_axes={'params': None},
      split_rngs={'params': False, 'dropout': True},
    )
    frames = encoder(
      self.gcn_features,
      self.gcn_impl,
      self.dropout_rate,
      with_globals=self.globals_mode == 'globals',
      deterministic=not train,
      dtype=dtype,
      name='frame_encoder',
    )(graph)  # [B*T, D]
    return frames.reshape(b, t, -1) * frame_mask[..., None]

  def frame_sequence(self, frames, batch, train: bool):
    """The temporal model's output at every frame: BiLSTM or transformer.  # [B, T, D]"""
    if self.temporal == 'bilstm':
      sequence = frames
      for _ in range(self.lstm_layers):
        sequence = lstm_lib.BiLSTM(self.lstm_hidden, self.lstm_unroll, sequence.dtype)(
          sequence, batch['length']
        )
        sequence = nn.Dropout(self.dropout_rate, deterministic=not train)(sequence)
      return sequence  # [B, T, 2H]
    if self.temporal == 'transformer':
      return transformer_lib.TransformerEncoder(
        self.transformer_width,
        self.transformer_layers,
        self.transformer_heads,
        self.transformer_mlp_ratio,
        self.dropout_rate,
        self.drop_path_rate,
        frames.dtype,
        name='transformer',
      )(frames, batch['frame_mask'], train)  # [B, T, W]
    if self.temporal == 'seed_fusion':
      raise ValueError(
        "config model.temporal='seed_fusion' pools over time inside itself; the sentence "
        "reader (CTC) needs an output per frame: use 'bilstm' or 'transformer'"
      )
    raise ValueError(f'config model.temporal={self.temporal!r}; expected one of {TEMPORAL_MODES}')

  @nn.compact
  def __call__(self, batch, train: bool = False):
    if self.head not in HEADS:
      raise ValueError(f'LipReader.head={self.head!r}; expected one of {HEADS}')
    frames = self.frame_embeddings(batch, train)  # [B, T, D]
    if self.boundary_input:
      boundary = (batch['speech_mask'] * batch['frame_mask']).astype(frames.dtype)  # [B, T]
      frames = jnp.concatenate([frames, boundary[..., None]], axis=-1)  # [B, T, D + 1]
    if self.head == 'ctc':
      hidden = self.frame_sequence(frames, batch, train)  # [B, T, D]
    else:
      pool_mask = pooling_mask(batch['frame_mask'], batch['speech_mask'], self.mask_mode)  # [B, T]
      if self.temporal == 'seed_fusion':
        hidden = SeedFusion(
          self.lstm_hidden,
          self.attention_dim,
          self.attention_heads,
          self.conv_features,
          self.conv_layers,
          self.conv_kernel,
          self.fusion_dim,
          self.dropout_rate,
        )(frames, batch['length'], batch['frame_mask'], pool_mask, train)  # [B, fusion]
      else:
        sequence = self.frame_sequence(frames, batch, train)  # [B, T, D]
        hidden = normalization.masked_mean(sequence, pool_mask)  # [B, D]
    # The same hidden layers per clip (classifier) or per frame (ctc: Dense maps the last axis).
    for features in self.head_hidden:
      hidden = nn.Dropout(self.dropout_rate, deterministic=not train)(
        nn.relu(nn.Dense(features, dtype=hidden.dtype)(hidden))
      )
    # Logits in float32 whatever the compute dtype: softmax and loss need the range.
    name = 'classifier' if self.head == 'classifier' else 'ctc_head'
    return nn.Dense(self.num_classes, dtype=jnp.float32, name=name)(hidden)  # [B, C] or [B, T, K]


def create_model(config, meta) -> LipReader:
  """Builds the network from a config; head, outputs and graph edges come from the data set's metadata.

  A sentence data set (meta.is_sentences) gets the CTC head over its token set,
  a word data set the classifier over its classes.
  """
  senders, receivers = graphs_lib.edges_for(meta, config.model.edges, config.model.knn_k)
  fields = {
    key: tuple(value) if isinstance(value, list) else value
    for key, value in config.model.items()
    if key not in ('edges', 'knn_k')
  }
  reference = np.asarray(meta.mean_landmarks, np.float64)
  if reference.shape != (meta.num_nodes, 3):  # metadata written without it
    reference = np.full((meta.num_nodes, 3), 0.5)
  return LipReader(
    num_classes=len(meta.token_set) if meta.is_sentences else meta.num_classes,
    head='ctc' if meta.is_sentences else 'classifier',
    senders=tuple(map(int, senders)),
    receivers=tuple(map(int, receivers)),
    reference=tuple(tuple(float(v) for v in row) for row in reference),
    **fields,
  )


def parameter_counts(params, depth: int = 2) -> list[tuple[str, int]]:
  """Parameter counts per module path down to `depth` levels, parents before children."""
  rows = []

  def count(tree) -> int:
    if hasattr(tree, 'items'):
      return sum(count(v) for v in tree.values())
    return int(np.prod(np.shape(tree)))

  def walk(tree, prefix: str, level: int) -> None:
    for name, sub in tree.items():
      path = f'{prefix}/{name}' if prefix else name
      if hasattr(sub, 'items'):
        rows.append((path, count(sub)))
        if level < depth:
          walk(sub, path, level + 1)
      elif level == 1:
        rows.append((path, count(sub)))

  walk(params, '', 1)
  return rows


def dummy_batch(meta, batch_size: int = 1) -> dict[str, np.ndarray]:
  """A zero batch with a data set's shapes (input_pipeline's batch dict), for model.init."""
  t, n = meta.max_frames, meta.num_nodes
  if meta.is_sentences:
    targets = {
      'tokens': np.zeros((batch_size, meta.max_tokens), np.int32),
      'token_length': np.zeros((batch_size,), np.int32),
    }
  else:
    targets = {'label': np.zeros((batch_size,), np.int32)}
  return {
    'landmarks': np.zeros((batch_size, t, n, 3), np.float32),
    'au': np.zeros((batch_size, t, len(meta.au_names)), np.float32),
    'geometry': np.zeros((batch_size, t, len(meta.geometry_names)), np.float32),
    'frame_mask': np.ones((batch_size, t), np.float32),
    'face_mask': np.ones((batch_size, t), np.float32),
    'speech_mask': np.ones((batch_size, t), np.float32),
    'length': np.full((batch_size,), t, np.int32),
    **targets,
  }
