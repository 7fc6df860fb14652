"""Training configurations, one `get_config()` per file (ml_collections).

Installed with lipjax, so `from configs import small` works anywhere; the command
line loads them by path (`--config configs/small.py`), as ml_collections intends.
"""
