"""Input pipeline on real shards: augmentations, determinism, resumption, eval padding."""

import itertools

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from extraction import roi
from extraction import shards
from lipjax import input_pipeline


def test_flip_maps_node_k_to_its_mirror_with_x_mirrored():
  rng = np.random.default_rng(0)
  landmarks = rng.random((3, 88, 3)).astype(np.float32)  # [T, N, 3]
  frame_mask = np.array([1, 1, 0], np.float32)
  perm = roi.mirror_perm()
  flipped = input_pipeline.flip_landmarks(landmarks, frame_mask, perm).numpy()
  for k in range(88):
    np.testing.assert_allclose(flipped[:2, perm[k], 0], 1.0 - landmarks[:2, k, 0], rtol=1e-6)
    np.testing.assert_allclose(flipped[:2, perm[k], 1:], landmarks[:2, k, 1:], rtol=1e-6)
  assert np.all(flipped[2] == 0)  # padding stays zero


def test_flip_twice_is_identity():
  rng = np.random.default_rng(1)
  landmarks = rng.random((4, 88, 3)).astype(np.float32)
  frame_mask = np.ones(4, np.float32)
  perm = roi.mirror_perm()
  twice = input_pipeline.flip_landmarks(
    input_pipeline.flip_landmarks(landmarks, frame_mask, perm), frame_mask, perm
  )
  np.testing.assert_allclose(twice, landmarks, atol=1e-6)


def toy_batch():
  """Two clips, lengths 4 and 6 of T = 6, whose values are their frame index + 1."""
  t = np.arange(6, dtype=np.float32) + 1
  frame_mask = np.array([[1, 1, 1, 1, 0, 0], [1] * 6], np.float32)
  ramp = t[None] * frame_mask  # [2, 6]
  return {
    'landmarks': tf.constant(np.broadcast_to(ramp[..., None, None], (2, 6, 88, 3)).copy()),
    'au': tf.constant(np.broadcast_to(ramp[..., None], (2, 6, 18)).copy()),
    'geometry': tf.constant(np.broadcast_to(ramp[..., None], (2, 6, 10)).copy()),
    'frame_mask': tf.constant(frame_mask),
    'face_mask': tf.constant(frame_mask),
    'speech_mask': tf.constant(frame_mask),
    'length': tf.constant([4, 6], tf.int32),
    'label': tf.constant([0, 1], tf.int32),
  }


def test_speed_perturbation_resamples_and_updates_masks():
  batch = toy_batch()
  same = input_pipeline.speed_perturb(batch, tf.constant([1.0, 1.0]))
  np.testing.assert_allclose(same['landmarks'], batch['landmarks'])
  fast = input_pipeline.speed_perturb(batch, tf.constant([2.0, 2.0]))
  np.testing.assert_array_equal(fast['length'], [2, 3])
  np.testing.assert_allclose(fast['au'][1, :, 0], [1, 3, 5, 0, 0, 0])
  np.testing.assert_array_equal(fast['frame_mask'][0], [1, 1, 0, 0, 0, 0])
  slow = input_pipeline.speed_perturb(batch, tf.constant([0.5, 0.5]))
  np.testing.assert_array_equal(slow['length'], [6, 6])
  np.testing.assert_allclose(slow['au'][0, :, 0], [1, 1.5, 2, 2.5, 3, 3.5])


def test_time_warp_stretches_parts_keeping_ends_length_and_masks():
  batch = toy_batch()
  batch['speech_mask'] = tf.constant([[0, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 0]], tf.float32)
  same = input_pipeline.time_warp(batch, tf.zeros([2, 4]))
  np.testing.assert_allclose(same['landmarks'], batch['landmarks'], atol=1e-6)
  np.testing.assert_array_equal(same['speech_mask'], batch['speech_mask'])
  # Two parts; the first plays 3x as fast as the second. Clip 0 (4 frames, 3 steps):
  # the output's first half (t = 0 .. 1.5) covers 3/4 of the clip, source times
  # 0, 1.5, 2.5, 3 -> values 1, 2.5, 3.5, 4. Clip 1 gets the mirror image.
  warped = input_pipeline.time_warp(batch, tf.math.log(tf.constant([[3.0, 1.0], [1.0, 3.0]])))
  np.testing.assert_allclose(warped['au'][0, :, 0], [1, 2.5, 3.5, 4, 0, 0], rtol=1e-6)
  np.testing.assert_allclose(warped['au'][1, :, 0], [1, 1.5, 2, 3, 4.5, 6], rtol=1e-6)
  np.testing.assert_array_equal(warped['length'], [4, 6])
  np.testing.assert_array_equal(warped['frame_mask'], batch['frame_mask'])
  # Masks take the nearest source frame: clip 1 reads frames 0, 0/1, 1, 2, 3/4, 5.
  np.testing.assert_array_equal(warped['speech_mask'][1], [0, 0, 0, 1, 1, 0])


def test_time_mask_holds_the_previous_frame_and_flags_face_mask():
  masked = input_pipeline.time_mask(toy_batch(), tf.constant([1, 0]), tf.constant([2, 0]))
  np.testing.assert_allclose(masked['au'][0, :, 0], [1, 1, 1, 4, 0, 0])
  np.testing.assert_array_equal(masked['face_mask'][0], [1, 0, 0, 1, 0, 0])
  np.testing.assert_allclose(masked['au'][1], toy_batch()['au'][1])


def test_time_shift_moves_frames_and_masks_holding_the_end_frames():
  batch = toy_batch()
  batch['speech_mask'] = tf.constant([[0, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 0]], tf.float32)
  shifted = input_pipeline.time_shift(batch, tf.constant([1, -2]))
  np.testing.assert_allclose(shifted['au'][0, :, 0], [1, 1, 2, 3, 0, 0])  # padding stays padding
  np.testing.assert_allclose(shifted['landmarks'][1, :, 0, 0], [3, 4, 5, 6, 6, 6])
  np.testing.assert_array_equal(shifted['speech_mask'], [[0, 0, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]])
  np.testing.assert_array_equal(shifted['frame_mask'], batch['frame_mask'])
  same = input_pipeline.time_shift(batch, tf.constant([0, 0]))
  np.testing.assert_allclose(same['geometry'], batch['geometry'])


def test_mixup_mixes_real_frames_unions_speech_and_names_both_labels():
  batch = toy_batch()
  batch['au'] = batch['au'] * tf.constant([1.0, 10.0])[:, None, None]
  batch['speech_mask'] = tf.constant([[0, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0]], tf.float32)
  mixed = input_pipeline.mix_clips(batch, tf.constant([1, 0]), tf.constant([0.75, 1.0]))
  # Clip 0 is 3/4 itself + 1/4 clip 1 on its 4 real frames; its padding stays zero.
  np.testing.assert_allclose(mixed['au'][0, :, 0], [3.25, 6.5, 9.75, 13, 0, 0], rtol=1e-6)
  np.testing.assert_allclose(mixed['au'][1], batch['au'][1])  # weight 1: unchanged
  np.testing.assert_array_equal(mixed['speech_mask'], [[0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0]])
  np.testing.assert_array_equal(mixed['mix_label'], [1, 0])
  np.testing.assert_array_equal(mixed['label'], batch['label'])
  np.testing.assert_allclose(mixed['mix_weight'], [0.75, 1.0])


def test_affine_keeps_padding_zero_and_identity_parameters_change_nothing():
  batch = toy_batch()
  landmarks = batch['landmarks'] / 10.0
  same = input_pipeline.affine_landmarks(
    landmarks, batch['frame_mask'], tf.zeros(2), tf.ones(2), tf.zeros((2, 2))
  )
  np.testing.assert_allclose(same, landmarks, atol=1e-6)
  moved = input_pipeline.affine_landmarks(
    landmarks, batch['frame_mask'], tf.fill([2], 0.1), tf.fill([2], 1.1), tf.fill([2, 2], 0.02)
  )
  assert np.all(moved.numpy()[0, 4:] == 0) and not np.allclose(moved, landmarks)


def take(iterator, n):
  return list(itertools.islice(iterator, n))


@pytest.mark.parametrize(
  'cache, jit_augment',
  [(True, False), (False, False), (False, True)],
  ids=['cached', 'streamed', 'streamed_jit'],
)
def test_train_batches_are_deterministic_resumable_and_device_shaped(
  test_config, dataset, cache, jit_augment
):
  _, meta = dataset
  test_config.batch_size = 8
  test_config.input.cache = cache
  test_config.input.jit_augment = jit_augment
  first = take(input_pipeline.train_iterator(test_config, meta, 0, 2), 9)  # crosses an epoch
  again = take(input_pipeline.train_iterator(test_config, meta, 0, 2), 9)
  resumed = take(input_pipeline.train_iterator(test_config, meta, 7, 2), 2)
  assert first[0]['landmarks'].shape == (2, 4, 12, 88, 3)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a['landmarks'], b['landmarks'])
  for a, b in zip(first[7:], resumed):
    np.testing.assert_array_equal(a['landmarks'], b['landmarks'])
    np.testing.assert_array_equal(a['label'], b['label'])
  # A new epoch is a new order.
  assert not np.array_equal(first[0]['label'], first[6]['label']) or not np.array_equal(
    first[0]['landmarks'], first[6]['landmarks']
  )


NO_AUGMENTATION = ml_collections.ConfigDict(
  {
    'flip': False,
    'yaw_degrees': 0.0,
    'pitch_degrees': 0.0,
    'rotate_degrees': 0.0,
    'scale': 0.0,
    'translate': 0.0,
    'jitter_std': 0.0,
    'time_mask_max': 0,
    'speed': 0.0,
    'time_warp': 0.0,
    'time_shift': 0,
    'mixup_alpha': 0.0,
  }
)


def test_augmentation_can_be_switched_off(test_config, dataset):
  _, meta = dataset
  test_config.augment = NO_AUGMENTATION
  batch = take(input_pipeline.train_iterator(test_config, meta, 0, 1), 1)[0]
  clean = [
    e
    for e in input_pipeline.load_examples(test_config.data_dir, 'train', False).as_numpy_iterator()
  ]
  by_landmarks = {e['landmarks'].tobytes() for e in clean}
  assert all(x.tobytes() in by_landmarks for x in batch['landmarks'][0])
  np.testing.assert_array_equal(batch['mix_label'], batch['label'])  # mixup off: weight 1
  assert np.all(batch['mix_weight'] == 1.0)


def test_eval_batches_count_every_example_once(test_config, dataset):
  _, meta = dataset
  batches = list(input_pipeline.eval_dataset(test_config, 'val', 2).as_numpy_iterator())
  example_mask = np.concatenate([b['example_mask'].reshape(-1) for b in batches])
  assert example_mask.sum() == meta.split_sizes['val'] == 13
  assert len(example_mask) == 16 and batches[-1]['landmarks'].shape[:2] == (2, 4)
  assert np.all(batches[-1]['landmarks'].reshape(8, -1)[example_mask[8:] == 0] == 0)


@pytest.mark.parametrize('cache', [True, False], ids=['cached', 'streamed'])
def test_hosts_read_disjoint_halves_with_equal_batch_counts(test_config, dataset, cache):
  _, meta = dataset
  test_config.augment = NO_AUGMENTATION  # so that a clip's landmarks identify it
  test_config.input.cache = cache
  per_epoch = input_pipeline.steps_per_epoch(meta, test_config.batch_size, host_count=2)
  hosts = [
    take(input_pipeline.train_iterator(test_config, meta, 0, 1, index, 2), per_epoch)
    for index in (0, 1)
  ]
  assert per_epoch == 6 and hosts[0][0]['label'].shape == (1, 4)
  seen = [{clip.tobytes() for batch in host for clip in batch['landmarks'][0]} for host in hosts]
  assert len(seen[0]) == len(seen[1]) == 24 and not seen[0] & seen[1]


def test_cached_hosts_slice_the_one_host_global_batches_with_their_augmentation(
  test_config, dataset
):
  # Augmentation (mixup across the batch included) is drawn for the global batch.
  _, meta = dataset
  one_host = take(input_pipeline.train_iterator(test_config, meta, 0, 2), 7)  # [2, 4, ...]
  hosts = [take(input_pipeline.train_iterator(test_config, meta, 0, 1, i, 2), 7) for i in (0, 1)]
  for step, batch in enumerate(one_host):
    for key, value in batch.items():
      for index in (0, 1):  # host i's one device gets what device i of one host got
        assert hosts[index][step][key].tobytes() == value[index : index + 1].tobytes(), key
  eval_one = list(input_pipeline.eval_dataset(test_config, 'val', 2).as_numpy_iterator())
  eval_hosts = [
    list(input_pipeline.eval_dataset(test_config, 'val', 1, i, 2).as_numpy_iterator())
    for i in (0, 1)
  ]
  assert len(eval_hosts[0]) == len(eval_hosts[1]) == len(eval_one) == 2
  for b, batch in enumerate(eval_one):
    for index in (0, 1):
      np.testing.assert_array_equal(eval_hosts[index][b]['landmarks'][0], batch['landmarks'][index])


def test_turn_head_is_a_rotation_about_the_face_centre():
  rng = np.random.default_rng(3)
  landmarks = rng.uniform(0.2, 0.8, (2, 5, 7, 3)).astype(np.float32)
  mask = np.ones((2, 5), np.float32)
  yaw, pitch = np.array([0.4, -0.3], np.float32), np.array([0.0, 0.2], np.float32)
  turned = input_pipeline.turn_head(landmarks, mask, yaw, pitch).numpy()
  # Distances to the centre and between nodes are kept; the points did move.
  np.testing.assert_allclose(
    np.linalg.norm(turned - 0.5, axis=-1), np.linalg.norm(landmarks - 0.5, axis=-1), rtol=1e-5
  )
  np.testing.assert_allclose(
    np.linalg.norm(turned[..., 0, :] - turned[..., 1, :], axis=-1),
    np.linalg.norm(landmarks[..., 0, :] - landmarks[..., 1, :], axis=-1),
    rtol=1e-5,
  )
  assert np.abs(turned - landmarks).max() > 0.05
  # A pure yaw keeps heights; turning back undoes it.
  np.testing.assert_allclose(turned[0, ..., 1], landmarks[0, ..., 1], atol=1e-6)
  back = input_pipeline.turn_head(turned, mask, -yaw, np.zeros(2, np.float32)).numpy()
  np.testing.assert_allclose(back[0], landmarks[0], atol=1e-5)
  # Padding stays zero.
  mask[1, 3:] = 0
  assert not input_pipeline.turn_head(landmarks, mask, yaw, pitch).numpy()[1, 3:].any()


def test_decoding_a_batch_of_records_matches_parsing_each_example(dataset):
  data_dir, meta = dataset
  records = tf.data.TFRecordDataset(input_pipeline.host_files(data_dir, 'val', 0, 1, 0)[0]).batch(5)
  decoded = input_pipeline.decode_batch(next(iter(records)), meta.max_frames)
  parsed = next(iter(shards.read_split(data_dir, 'val').map(input_pipeline.parse_example).batch(5)))
  assert set(decoded) == set(parsed)
  for key in parsed:
    assert decoded[key].dtype == parsed[key].dtype, key
    np.testing.assert_array_equal(decoded[key], parsed[key], err_msg=key)


def test_streamed_epoch_sees_every_example_once_without_augmentation(test_config, dataset):
  _, meta = dataset
  test_config.augment = NO_AUGMENTATION
  test_config.input.cache = False
  per_epoch = input_pipeline.steps_per_epoch(meta, test_config.batch_size)
  batches = take(input_pipeline.train_iterator(test_config, meta, 0, 1), per_epoch)
  clips = [clip.tobytes() for batch in batches for clip in batch['landmarks'][0]]
  assert len(clips) == len(set(clips)) == per_epoch * test_config.batch_size == 48


def test_hosts_split_files_when_they_balance_and_records_otherwise(dataset):
  data_dir, _ = dataset  # train: 2 shard files of 24 examples
  files, keep_every = input_pipeline.host_files(data_dir, 'train', 1, 2, min_examples=24)
  assert len(files) == 1 and files[0].endswith('00001-of-00002') and not keep_every
  files, keep_every = input_pipeline.host_files(data_dir, 'train', 1, 3, min_examples=16)
  assert len(files) == 2 and keep_every  # 3 hosts, 2 files: every host reads both


def only(**switches):
  """An augment config with everything off but the given settings."""
  return ml_collections.ConfigDict(dict(NO_AUGMENTATION.to_dict(), **switches))


def clean_train_examples(config):
  """The train split's parsed examples as stored (no augmentation)."""
  return list(input_pipeline.load_examples(config.data_dir, 'train', False).as_numpy_iterator())


def test_each_epoch_is_the_whole_train_split_in_a_new_order(test_config, dataset):
  _, meta = dataset
  test_config.augment = NO_AUGMENTATION  # so that a clip's landmarks identify it
  per_epoch = input_pipeline.steps_per_epoch(meta, test_config.batch_size)
  batches = take(input_pipeline.train_iterator(test_config, meta, 0, 1), 2 * per_epoch)
  index = {e['landmarks'].tobytes(): i for i, e in enumerate(clean_train_examples(test_config))}
  order = [index[clip.tobytes()] for batch in batches for clip in batch['landmarks'][0]]
  first, second = order[:48], order[48:]
  assert sorted(first) == sorted(second) == list(range(48))
  assert first != second and first != list(range(48))


def test_flip_in_the_training_stream_mirrors_about_half_the_clips(test_config, dataset):
  _, meta = dataset
  test_config.augment = only(flip=True)
  batches = take(input_pipeline.train_iterator(test_config, meta, 0, 1), 2)
  clean = clean_train_examples(test_config)
  as_stored = {e['landmarks'].tobytes() for e in clean}
  mirrored = {
    input_pipeline.flip_landmarks(e['landmarks'], e['frame_mask'], meta.mirror_perm)
    .numpy()
    .tobytes()
    for e in clean
  }
  kinds = []
  for clip in (c for batch in batches for c in batch['landmarks'][0]):
    assert (clip.tobytes() in as_stored) != (clip.tobytes() in mirrored)
    kinds.append(clip.tobytes() in mirrored)
  assert 4 <= sum(kinds) <= 12  # of 16 clips, p = 0.5 each (fixed seed)
  assert kinds[:8] != kinds[8:]  # each step draws its own flips


def test_mixup_in_the_training_stream_keeps_each_clips_own_label_the_majority(test_config, dataset):
  _, meta = dataset
  test_config.augment = only(mixup_alpha=0.4)
  batches = take(input_pipeline.train_iterator(test_config, meta, 0, 1), 3)
  weights = np.concatenate([b['mix_weight'].reshape(-1) for b in batches])
  assert np.all((weights >= 0.5) & (weights <= 1.0))
  assert np.any(weights < 0.9)  # and clips really are mixed
  clean = clean_train_examples(test_config)
  first_frames = np.stack([e['landmarks'][0] for e in clean])  # [48, N, 3]: real in every clip
  labels = np.array([e['label'] for e in clean])
  for batch in batches:
    for clip, label, partner_label, weight in zip(
      batch['landmarks'][0], batch['label'][0], batch['mix_label'][0], batch['mix_weight'][0]
    ):
      # Which stored clips, weight of one and 1 - weight of the other, make this first frame?
      blends = weight * first_frames[:, None] + (1 - weight) * first_frames[None]  # [48, 48, N, 3]
      own, partner = np.nonzero(np.abs(blends - clip[0]).max(axis=(2, 3)) < 1e-5)
      assert any(labels[o] == label and labels[p] == partner_label for o, p in zip(own, partner))


def test_extraction_mixes_the_words_along_a_shard_so_a_small_shuffle_buffer_draws_them_all(
  carphone_run, caplog
):
  import tensorflow_datasets as tfds

  from configs import test as test_config_lib
  from extraction import schema

  data_dir = carphone_run['data_dir']  # train: 8 clips, 4 EARLY then 4 LATE in manifest order
  stored = list(tfds.as_numpy(shards.read_split(data_dir, 'train')))
  ids = sorted(e['video_id'].decode() for e in stored)
  assert [e['video_id'].decode() for e in stored] == [ids[i] for i in shards.record_order(ids)]
  labels = [int(e['label']) for e in stored]
  assert sorted(labels) == [0] * 4 + [1] * 4
  # In the manifest's (word-sorted) order the file would change word once.
  assert sum(a != b for a, b in zip(labels, labels[1:])) >= 3
  # Streamed through a 2-record shuffle buffer, the first batch still holds both words.
  config = test_config_lib.get_config()
  config.data_dir, config.batch_size = data_dir, 4
  config.input.cache, config.input.shuffle_buffer = False, 2
  config.augment = NO_AUGMENTATION
  meta = schema.DatasetMeta.load(data_dir)
  assert meta.extraction['record_order'] == shards.RECORD_ORDER
  with caplog.at_level('WARNING'):
    batch = next(input_pipeline.train_iterator(config, meta, 0, 1))
  assert sorted(set(batch['label'].ravel().tolist())) == [0, 1]
  assert 'mixed order' not in caplog.text  # the metadata says so: no warning


def test_a_small_shuffle_buffer_over_shards_of_unknown_order_warns(test_config, dataset, caplog):
  data_dir, meta = dataset  # written without extraction: no record order in its metadata
  test_config.input.shuffle_buffer = 47  # of 48 training clips
  with caplog.at_level('WARNING'):
    next(input_pipeline.train_iterator(test_config, meta, 0, 1))
  assert f'{data_dir}: shuffle_buffer=47 holds 98% of the 48 training clips' in caplog.text
  caplog.clear()
  test_config.input.shuffle_buffer = 48  # the whole split: order cannot matter
  with caplog.at_level('WARNING'):
    next(input_pipeline.train_iterator(test_config, meta, 0, 1))
  assert 'shuffle_buffer' not in caplog.text
