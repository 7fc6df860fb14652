"""How many different words a training batch holds: the whole-split shuffle against a bounded buffer.

  python experiments/batch_mix.py DATA_DIR [DATA_DIR ...] [--buffer_fraction 0.1] [--batches 100]

For each data set: the mean and least number of distinct labels per batch of
configs/small.py's training stream, cached with a buffer of the whole train split
(a full shuffle) and streamed with a buffer of --buffer_fraction of it, as
configs/lrw.py's 50,000 records are of LRW's 488,000 clips. Shards whose records
are sorted by word fill a bounded buffer with neighbouring words only.
"""

import argparse

import numpy as np

from configs import small
from extraction import schema
from lipjax import input_pipeline


def distinct_labels(data_dir: str, cache: bool, buffer: int, batches: int) -> list[int]:
  """Distinct labels in each of the first `batches` training batches."""
  config = small.get_config()
  config.data_dir, config.input.cache, config.input.shuffle_buffer = data_dir, cache, buffer
  stream = input_pipeline.train_iterator(config, schema.DatasetMeta.load(data_dir), 0, 1)
  return [len(np.unique(next(stream)['label'])) for _ in range(batches)]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('data_dirs', nargs='+')
  parser.add_argument('--buffer_fraction', type=float, default=0.1)
  parser.add_argument('--batches', type=int, default=100)
  args = parser.parse_args()
  print(
    '| data set | record order | pipeline | shuffle buffer | distinct words per batch of 32: mean | least |'
  )
  print('|---|---|---|---|---|---|')
  for data_dir in args.data_dirs:
    meta = schema.DatasetMeta.load(data_dir)
    size = int(meta.split_sizes['train'])
    order = meta.extraction.get('record_order', 'sorted by word (before record_order)')
    for cache, buffer in ((True, size), (False, max(1, int(size * args.buffer_fraction)))):
      counts = distinct_labels(data_dir, cache, buffer, args.batches)
      pipeline = 'cached' if cache else 'streamed'
      print(
        f'| {data_dir} | {order} | {pipeline} | {buffer:,} | {np.mean(counts):.1f} | {min(counts)} |',
        flush=True,
      )


if __name__ == '__main__':
  main()
