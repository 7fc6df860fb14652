"""lipjax: landmark-graph lip reading in JAX (shards -> batches -> model -> checkpoints -> evaluation)."""
