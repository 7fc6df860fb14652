"""The grain input pipeline on real shards: order, determinism, resumption, hosts, eval padding."""

import itertools

import numpy as np
import pytest

from lipjax import input_pipeline


def take(iterator, n):
  return list(itertools.islice(iterator, n))


def stored_examples(config, split='train'):
  """The split's examples as stored, by index (no augmentation anywhere in the pipeline)."""
  examples = input_pipeline.SplitExamples(config.data_dir, split, cache=True)
  return examples.batch(np.arange(len(examples)))


def positions(batches, stored):
  """The stored index of every clip in a list of batches [devices, B, ...], in order."""
  index = {clip.tobytes(): i for i, clip in enumerate(stored['landmarks'])}
  return [
    index[clip.tobytes()]
    for batch in batches
    for clip in batch['landmarks'].reshape((-1,) + batch['landmarks'].shape[2:])
  ]


@pytest.mark.parametrize(
  'cache, workers', [(True, 0), (False, 0), (False, 2)], ids=['cached', 'streamed', 'workers']
)
def test_train_batches_are_deterministic_resumable_and_device_shaped(
  test_config, dataset, cache, workers
):
  _, meta = dataset
  test_config.input.cache, test_config.input.workers = cache, workers
  first = take(input_pipeline.train_iterator(test_config, meta, 0, 2), 9)  # crosses an epoch
  again = take(input_pipeline.train_iterator(test_config, meta, 0, 2), 9)
  resumed = take(input_pipeline.train_iterator(test_config, meta, 7, 2), 2)
  assert first[0]['landmarks'].shape == (2, 4, 12, 88, 3)
  assert first[0]['example_mask'].shape == (2, 4) and np.all(first[0]['example_mask'] == 1)
  for a, b in zip(first, again):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  for a, b in zip(first[7:], resumed):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_every_process_reads_the_same_batches_however_they_are_read(test_config, dataset):
  _, meta = dataset
  test_config.input.cache = True
  cached = take(input_pipeline.train_iterator(test_config, meta, 0, 1), 7)
  test_config.input.cache, test_config.input.workers = False, 2
  streamed = take(input_pipeline.train_iterator(test_config, meta, 0, 1), 7)
  for a, b in zip(cached, streamed):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_each_epoch_is_the_whole_train_split_in_a_new_order(test_config, dataset):
  _, meta = dataset
  per_epoch = input_pipeline.steps_per_epoch(meta, test_config.batch_size)
  assert per_epoch == 6  # 48 clips, batch 8
  batches = take(input_pipeline.train_iterator(test_config, meta, 0, 1), 2 * per_epoch)
  order = positions(batches, stored_examples(test_config))
  first, second = order[:48], order[48:]
  assert sorted(first) == sorted(second) == list(range(48))
  assert first != second and first != list(range(48))


def test_the_order_depends_on_the_seed(test_config, dataset):
  _, meta = dataset
  stored = stored_examples(test_config)
  orders = []
  for seed in (0, 1):
    test_config.seed = seed
    orders.append(
      positions(take(input_pipeline.train_iterator(test_config, meta, 0, 1), 6), stored)
    )
  assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]


def test_hosts_read_their_rows_of_the_one_host_global_batches(test_config, dataset):
  _, meta = dataset
  one_host = take(input_pipeline.train_iterator(test_config, meta, 0, 2), 7)  # [2, 4, ...]
  hosts = [take(input_pipeline.train_iterator(test_config, meta, 0, 1, i, 2), 7) for i in (0, 1)]
  for step, batch in enumerate(one_host):
    for key, value in batch.items():
      for index in (0, 1):  # host i's one device gets what device i of one host got
        assert hosts[index][step][key].tobytes() == value[index : index + 1].tobytes(), key


def test_eval_batches_count_every_example_once_in_index_order(test_config, dataset):
  _, meta = dataset
  batches = list(input_pipeline.eval_iterator(test_config, 'val', 2))
  example_mask = np.concatenate([b['example_mask'].reshape(-1) for b in batches])
  assert example_mask.sum() == meta.split_sizes['val'] == 13
  assert len(example_mask) == 16 and batches[-1]['landmarks'].shape[:2] == (2, 4)
  assert np.all(batches[-1]['landmarks'].reshape(8, -1)[example_mask[8:] == 0] == 0)
  stored = stored_examples(test_config, 'val')
  clips = np.concatenate(
    [b['landmarks'].reshape((-1,) + b['landmarks'].shape[2:]) for b in batches]
  )
  np.testing.assert_array_equal(clips[:13], stored['landmarks'])  # index order


def test_eval_hosts_slice_the_one_host_batches(test_config, dataset):
  eval_one = list(input_pipeline.eval_iterator(test_config, 'val', 2))
  eval_hosts = [list(input_pipeline.eval_iterator(test_config, 'val', 1, i, 2)) for i in (0, 1)]
  assert len(eval_hosts[0]) == len(eval_hosts[1]) == len(eval_one) == 2
  for b, batch in enumerate(eval_one):
    for index in (0, 1):
      for key in batch:
        np.testing.assert_array_equal(eval_hosts[index][b][key][0], batch[key][index], key)


def test_a_batch_that_does_not_split_over_devices_is_refused(test_config, dataset):
  _, meta = dataset
  test_config.batch_size = 6
  with pytest.raises(ValueError, match='batch_size=6 is not divisible by 4 devices'):
    next(input_pipeline.train_iterator(test_config, meta, 0, 4))
